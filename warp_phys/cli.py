"""The `warp-phys` command line: argument parsing only; the work is done by the
library functions it calls.

    warp-phys train --system msd --model warp --decoder damped_oscillator --out runs/NAME
    warp-phys train --data FILE.csv [--val-data FILE.csv] --out runs/NAME
    warp-phys reconstruct --run runs/NAME --context 100 [--input FILE.npz|.npy|.csv]
    warp-phys train --data FILE.npz --decoder mypriors:duffing --out runs/NAME  (your prior)
    warp-phys evaluate --run runs/NAME [--split test|ood | --input FILE]
    warp-phys params --run runs/NAME [--input FILE] [--format csv|json] [--out FILE]
    warp-phys data --from FILE.csv --out FILE.npz
    warp-phys task --task basic_motions|japanese_vowels|digits|icl --model warp [--out DIR]
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

import systems

from ._plot_command import add_plot_command
from ._run_commands import add_run_commands
from ._task_command import add_task_command
from ._train_flags import add_option_flags, config_from_args
from .decoders import list_decoders
from .training.models import MODEL_KINDS
from .training.run import train_run

MAX_MESSAGE = 500  # characters of an error line


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (`warp-phys: error: ...`), exit status 2."""

    def error(self, message):
        print(f"warp-phys: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def _cmd_train(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    run, history = train_run(
        config, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    units = "normalised units" if config.normalize else "raw units"
    best = (
        f"best validation MSE {min(history['val_mse']):.4g} ({units})"
        if history["val_mse"]
        else f"no validation ran (every {config.val_every} steps)"
    )
    print(
        f"{type(run.model).__name__} trained on {run.config.data or run.config.system}: "
        f"step {history['step'][-1]} "
        f"({history['stopped']}), {best}"
    )
    print(f"run folder: {run.folder}/ (config.json, best.eqx, last.eqx, metrics.jsonl)")
    physics = hasattr(getattr(run.model, "decoder", None), "physical_parameters")
    also = f"; warp-phys params --run {run.folder}" if physics else ""
    print(f"next: warp-phys evaluate --run {run.folder}{also}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import main as demo_main  # matplotlib and the plots: only for the demo

    demo_main(args.demo_args)


def _cmd_data(args: argparse.Namespace) -> None:
    if args.source:
        if not args.out or Path(args.out).suffix.lower() != ".npz":
            raise ValueError("data --from FILE needs --out FILE.npz (the converted data set)")
        if Path(args.out).resolve() == Path(args.source).resolve():
            raise ValueError(f"refusing to overwrite the input {args.source}; choose another --out")
        if args.system is not None:
            raise ValueError("give either --system or --from, not both")
        dataset = systems.load(args.source)
        path = systems.save(dataset, args.out)
        n, T, d = dataset.y.shape
        dt = np.diff(systems.trajectory_times(dataset), axis=1)
        print(
            f"{args.source}: {n} trajectories x {T} steps x {d} channels "
            f"({', '.join(dataset.config.get('channels', []))}) -> {path}"
        )
        if dt.size and not np.allclose(dt, dt.flat[0], rtol=1e-3, atol=0):
            print(
                f"note: time steps vary ({dt.min():g} to {dt.max():g}); train a time-aware "
                "WARP on it (--transition continuous), other models assume equal steps"
            )
        return
    args.system = args.system or "msd"
    options = dict(split=args.split, seed=args.seed)
    if args.out:
        dataset = systems.generate(args.system, args.n, **options)
        path = systems.save(dataset, args.out)
    else:
        dataset = systems.generate_cached(args.system, args.n, cache_dir=args.cache_dir, **options)
        path = systems.cache_path(args.system, args.n, cache_dir=args.cache_dir, **options)
    print(f"{dataset.name} [{dataset.split}]: y {tuple(dataset.y.shape)} -> {path}")


def _cmd_list(args: argparse.Namespace) -> None:
    print("decoders:", ", ".join(list_decoders()))
    print("systems: ", ", ".join(systems.list_systems()))
    print("models:  ", ", ".join(MODEL_KINDS))


def _add_data_command(sub) -> None:
    """`warp-phys data`: generate or convert a data set."""
    data = sub.add_parser(
        "data", help="generate a system's data set, or validate and convert your file, as .npz"
    )
    data.add_argument("--system", default=None, help="registered system name (default: msd)")
    data.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="FILE",
        help="convert this .csv/.npy/.npz file or folder of .csv (validated) to a data set "
        "--out FILE.npz",
    )
    data.add_argument("--split", default="train", choices=["train", "val", "test", "ood"])
    data.add_argument("--n", type=int, default=None, help="trajectories (default: the system's)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", default=None, help="output .npz (default: the cache folder)")
    data.add_argument(
        "--cache-dir", default="data_cache", help="cache folder (default: data_cache)"
    )
    data.set_defaults(func=_cmd_data)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="warp-phys",
        description="WARP: weight-space linear recurrent networks with physical root decoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train WARP or a baseline on a system; writes a run folder",
        description="Train a model; options come from defaults < --config FILE < flags.",
    )
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument("--config", help="TOML, YAML or JSON file of options (flat or sectioned)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_option_flags(train)
    train.set_defaults(func=_cmd_train)

    add_run_commands(sub)

    # the demo parses its own options (`warp-phys demo --help` lists them)
    demo = sub.add_parser(
        "demo", help="train WARP on a small MSD set and forecast (make demo)", add_help=False
    )
    demo.set_defaults(func=_cmd_demo)

    _add_data_command(sub)

    lst = sub.add_parser("list", help="list registered decoders, systems and models")
    lst.set_defaults(func=_cmd_list)

    add_plot_command(sub)
    add_task_command(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warp-phys: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `warp-phys` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "demo":
        args.demo_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            args.func(args)
    except (ValueError, OSError, FloatingPointError, TypeError, ImportError) as err:
        # OSError: a missing, unreadable or unwritable path, a file where a folder
        # belongs, a run folder locked by another process
        message = " ".join(str(err).split()) or type(err).__name__  # always one line
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        print(f"warp-phys: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
