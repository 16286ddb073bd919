"""`warp-phys task`: train and test WARP or a baseline on a task beyond forecasting
(UEA classification, digit completion, in-context regression); one flag per field of
`TaskOptions` (argument parsing and printing only)."""

import argparse
import dataclasses
import typing
from pathlib import Path

from systems import atomic_write_json

from ._train_flags import _parsing
from .tasks import TaskOptions, run_task


def _cmd_task(args: argparse.Namespace) -> None:
    names = {f.name for f in dataclasses.fields(TaskOptions)}
    options = TaskOptions(**{k: v for k, v in vars(args).items() if k in names})
    _, history, result = run_task(options, checkpoint_dir=args.out)
    metric = result["metric"]
    also = "".join(f", {k} {result[k]:.4g}" for k in ("bpd", "least_squares") if k in result)
    print(
        f"{options.model} on {options.task}: test {metric} {result[metric]:.4g}{also} "
        f"after {options.steps} steps (best validation {min(history['val']):.4g})"
    )
    if args.out:
        scalars = {k: v for k, v in result.items() if isinstance(v, str | int | float | list)}
        path = Path(args.out) / "result.json"
        atomic_write_json(path, {"options": dataclasses.asdict(options), "result": scalars})
        print(f"run folder: {args.out}/ (best.eqx, result.json)")


def add_task_command(sub) -> None:
    """`warp-phys task --task NAME --model KIND [options] [--out FOLDER]`."""
    task = sub.add_parser(
        "task",
        help="classification, digit completion or in-context regression (needs the "
        "tasks extra: pip install 'warp-phys[tasks]')",
        description=TaskOptions.__doc__.split("\n\n")[0],
    )
    task.add_argument("--out", default=None, help="folder for best.eqx and result.json")
    hints = typing.get_type_hints(TaskOptions)
    for f in dataclasses.fields(TaskOptions):
        task.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=f.default,
            help=f"{f.metadata['help']} (default: {f.default})",
            **_parsing(hints[f.name], f),
        )
    task.set_defaults(func=_cmd_task)
