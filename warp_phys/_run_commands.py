"""The commands on a trained run folder: `reconstruct`, `evaluate` and `params`
(argument parsing and printing; the work is done by the library functions they call)."""

import argparse
import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np

from systems import atomic_write_bytes, atomic_write_json

from ._refine import DEFAULT_REFINE_STEPS, check_steps
from .baselines import count_parameters
from .training.evaluation import evaluate_run, read_input, reconstruct_run
from .training.parameters import median_relative_error, parameter_table, table_rows
from .training.reconstruction_files import write_reconstruction
from .training.run import load_dataset, load_run

SPLITS = ["train", "val", "test", "ood"]


def _cmd_reconstruct(args: argparse.Namespace) -> None:
    run = load_run(args.run, args.checkpoint)
    context = args.context or run.config.context
    dataset = None
    if args.input:
        dataset, y = read_input(run, args.input)
        times = dataset.extras.get("t")
        source, path = args.input, Path(args.input)
        suffix = "" if path.is_dir() else path.suffix.lower()
    else:
        split = load_dataset(run.config, args.split, args.n)
        y, times, source, suffix = split.y, split.extras.get("t"), args.split, ".npz"
    result = reconstruct_run(
        run, y, context=context, horizon=args.horizon, times=times, refine=args.refine
    )
    out = args.out or f"{run.folder}/reconstruction{suffix}"
    out = write_reconstruction(
        result, out, dataset=dataset, channels=run.channels, input_path=args.input
    )
    n, horizon = result["prediction"].shape[:2]
    line = f"reconstructed {n} trajectories of {source}: context {context}, horizon {horizon}"
    if result.get("refine"):
        line += f", refined by {result['refine']} Levenberg-Marquardt steps"
    if "mse" in result:
        line += f", MSE {result['mse']:.6g} (raw units, {result['target'].shape[1]} steps)"
    print(line)
    print(f"predictions: {out}")


def _default_split(run, split: str | None) -> str:
    """The split a command reads by default: `test`, or `val` for a run on a file (which
    has no test split)."""
    return split or ("val" if run.config.data is not None else "test")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    run = load_run(args.run, args.checkpoint)
    if args.input:
        dataset, y = read_input(run, args.input)
        data, split, name = dataclasses.replace(dataset, y=y), "input", Path(args.input).stem
    else:
        data, split = None, _default_split(run, args.split)
        name = split
    result = evaluate_run(
        run, split=split, n=args.n, context=args.context, data=data, refine=args.refine
    )
    if args.input:
        result["input"] = str(args.input)
    result["checkpoint"] = args.checkpoint
    result["model"] = type(run.model).__name__
    result["parameters"] = count_parameters(run.model)
    out = args.json or f"{run.folder}/eval_{name}.json"
    # strict JSON has no NaN
    finite_only = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()
    }
    atomic_write_json(out, finite_only)
    first, last = result["scored_steps"]
    refined = f", prior refined by {result['refine']} steps" if "refine" in result else ""
    print(
        f"{result['model']} ({result['parameters']:,} parameters, {args.checkpoint} "
        f"checkpoint) on {result['n']} {args.input or split} trajectories: "
        f"{result['protocol']} protocol, {result['convention']} convention, steps "
        f"{first}..{last} scored{refined}"
    )
    rows = {
        "mse": "MSE (raw units)",
        "mse_normalized": "MSE (normalised units)" if run.config.normalize else None,
        "mse_readout": "MSE of the read-out alone",
        "nll": "Gaussian NLL (raw units)",
        "mse_repeat_last": "MSE of repeat-last-value",
        "mse_finite": "MSE without diverged ones",
    }
    for key, label in rows.items():
        if key in result and label:
            print(f"  {label:<28} {result[key]:.6g}")
    if result.get("diverged"):
        print(
            f"  {result['diverged']} of {result['n']} forecasts diverged (NaN or inf); "
            "they count in the MSE, not in the 'without' row"
        )
    print(f"json: {out}")


def _params_text(table: dict, fmt: str) -> str:
    """`parameter_table`'s result as CSV or JSON text."""
    if fmt == "json":
        return json.dumps(table, indent=1) + "\n"
    header, rows = table_rows(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row[0], *(f"{v:.6g}" for v in row[1:])] for row in rows)
    return buffer.getvalue()


def _cmd_params(args: argparse.Namespace) -> None:
    run = load_run(args.run, args.checkpoint)
    split = None if args.input else _default_split(run, args.split)
    table = parameter_table(
        run, data=args.input, split=split, n=args.n, context=args.context, refine=args.refine
    )
    fmt = args.format or ("json" if args.out and Path(args.out).suffix == ".json" else "csv")
    text = _params_text(table, fmt)
    if not args.out:
        print(text, end="")
        return
    path = atomic_write_bytes(args.out, text.encode())
    n = len(table["ids"])
    print(
        f"parameters of {n} trajectories of {table['source']} (context {table['context']}, "
        f"forecast {table['steps'] - table['context']} steps): {path}"
    )
    for name, row in table["parameters"].items():
        unit = table["units"].get(name.split("[")[0]) or ""
        line = f"  {name}: median {np.median(row['value']):.4g}{' ' + unit if unit else ''}"
        for key, what in (("value", "read"), ("refined", "refined")):
            error = median_relative_error(row, key)
            if error is not None:
                line += f", {what}: median error {100 * error:.2g}% from the truth"
        print(line)


def _run_options(parser: argparse.ArgumentParser, splits: list[str], split_help: str) -> None:
    parser.add_argument("--run", required=True, help="run folder written by `warp-phys train`")
    parser.add_argument(
        "--checkpoint", default="best", choices=["best", "last"], help="(default: best)"
    )
    parser.add_argument("--n", type=int, default=None, help="trajectories (default: n_test)")
    parser.add_argument(
        "--context", type=int, default=None, help="observed steps L (default: the run's)"
    )
    parser.add_argument(
        "--input",
        help="trajectories in raw units: .npz, .npy, .csv or a folder of .csv (README "
        "'Your own data'), instead of a split",
    )
    parser.add_argument("--split", default=None, choices=splits, help=split_help)
    parser.add_argument(
        "--refine",
        type=refine_steps,
        default="auto",
        metavar="K",
        help="fit a physical prior's parameters to each context by K Levenberg-Marquardt "
        f"steps from WARP's read-out, then forecast with the prior; 0: none (default: auto, "
        f"{DEFAULT_REFINE_STEPS} for a physical prior on a regular grid and a context "
        "longer than the fit's unknowns, else 0)",
    )


def refine_steps(text: str) -> int | str:
    """`--refine`: `auto` or a non-negative int."""
    if text == "auto":
        return text
    try:
        return check_steps(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or K >= 0, got {text!r}") from None


def add_run_commands(sub) -> None:
    """Register `reconstruct`, `evaluate` and `params` on the `warp-phys` sub-parsers."""
    rec = sub.add_parser("reconstruct", help="forecast trajectories from a context; writes .npz")
    _run_options(rec, SPLITS, "generated split when no --input is given (default: test)")
    rec.add_argument("--horizon", type=int, default=None, help="steps to forecast")
    rec.add_argument(
        "--out",
        help="output .npz, .npy, .csv or folder (default: RUN/reconstruction with the "
        "input's suffix; never the input)",
    )
    rec.set_defaults(func=_cmd_reconstruct, split="test")

    default = "(default: test; val for a run trained on a file)"
    ev = sub.add_parser("evaluate", help="the paper's metrics on a split or a file, table + JSON")
    _run_options(ev, ["val", "test", "ood"], f"ood = the out-of-distribution ranges {default}")
    ev.add_argument("--json", help="output JSON (default: RUN/eval_SPLIT.json or eval_STEM.json)")
    ev.set_defaults(func=_cmd_evaluate)

    par = sub.add_parser(
        "params",
        help="the physical parameters the prior identifies, per trajectory, with the truth",
        description="Per trajectory: each named parameter of the run's prior at the end of "
        "the context, its std and max-min over the forecast, and the true value where the "
        "data know it (a system's parameters, a file's params/<name> arrays).",
    )
    _run_options(par, SPLITS, default)
    par.add_argument("--format", choices=["csv", "json"], default=None, help="(default: csv)")
    par.add_argument("--out", default=None, help="output file (default: print to stdout)")
    par.set_defaults(func=_cmd_params)
