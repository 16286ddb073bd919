"""The `warp-phys` command line: argument parsing only; the work is done by the
library functions it calls.

    warp-phys train --system msd --model warp --decoder damped_oscillator --out runs/NAME
    warp-phys train --data FILE.csv [--val-data FILE.csv] --out runs/NAME
    warp-phys reconstruct --run runs/NAME --context 100 [--input FILE.npz|.npy|.csv]
    warp-phys evaluate --run runs/NAME [--split test|ood]
    warp-phys data --from FILE.csv --out FILE.npz
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np

import systems
from systems import atomic_write_json

from ._plot_command import add_plot_command
from ._train_flags import add_option_flags, config_from_args
from .baselines import count_parameters
from .decoders import list_decoders
from .training.evaluation import evaluate_run, read_input, reconstruct_run, write_reconstruction
from .training.models import MODEL_KINDS
from .training.run import load_dataset, load_run, train_run

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
    best = (
        f"best validation MSE {min(history['val_mse']):.4g} (normalised units)"
        if history["val_mse"]
        else f"no validation ran (every {config.val_every} steps)"
    )
    print(
        f"{type(run.model).__name__} trained on {run.config.data or run.config.system}: "
        f"step {history['step'][-1]} "
        f"({history['stopped']}), {best}"
    )
    print(f"run folder: {run.folder}/ (config.json, best.eqx, last.eqx, metrics.jsonl)")
    print(f"next: warp-phys evaluate --run {run.folder}")


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
    if "mse" in result:
        line += f", MSE {result['mse']:.6g} (raw units, {result['target'].shape[1]} steps)"
    print(line)
    print(f"predictions: {out}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    run = load_run(args.run, args.checkpoint)
    result = evaluate_run(
        run, split=args.split, n=args.n, context=args.context, refine=args.refine
    )
    result["checkpoint"] = args.checkpoint
    result["model"] = type(run.model).__name__
    result["parameters"] = count_parameters(run.model)
    out = args.json or f"{run.folder}/eval_{args.split}.json"
    # strict JSON has no NaN
    finite_only = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()
    }
    atomic_write_json(out, finite_only)
    first, last = result["scored_steps"]
    print(
        f"{result['model']} ({result['parameters']:,} parameters, {args.checkpoint} "
        f"checkpoint) on {result['n']} {args.split} trajectories: {result['protocol']} "
        f"protocol, {result['convention']} convention, steps {first}..{last} scored"
    )
    rows = {
        "mse": "MSE (raw units)",
        "mse_normalized": "MSE (normalised units)",
        "nll": "Gaussian NLL (raw units)",
        "mse_repeat_last": "MSE of repeat-last-value",
        "mse_finite": "MSE without diverged ones",
    }
    for key, label in rows.items():
        if key in result:
            print(f"  {label:<28} {result[key]:.6g}")
    if result.get("diverged"):
        print(
            f"  {result['diverged']} of {result['n']} forecasts diverged (NaN or inf); "
            "they count in the MSE, not in the 'without' row"
        )
    print(f"json: {out}")


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


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder written by `warp-phys train`")
    parser.add_argument(
        "--checkpoint", default="best", choices=["best", "last"], help="(default: best)"
    )
    parser.add_argument("--n", type=int, default=None, help="trajectories (default: n_test)")
    parser.add_argument(
        "--context", type=int, default=None, help="observed steps L (default: the run's)"
    )
    parser.add_argument(
        "--refine", type=int, default=0, metavar="K",
        help="fit a physical prior's parameters to each context by K Levenberg-Marquardt "
        "steps from WARP's read-out, then forecast with the prior (default: 0, none)",
    )


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

    rec = sub.add_parser("reconstruct", help="forecast trajectories from a context; writes .npz")
    _run_options(rec)
    rec.add_argument(
        "--input",
        help="trajectories in raw units: .npz, .npy, .csv or a folder of .csv (README "
        "'Your own data'); the output has the same format",
    )
    rec.add_argument(
        "--split",
        default="test",
        choices=["train", "val", "test", "ood"],
        help="generated split when no --input is given (default: test)",
    )
    rec.add_argument("--horizon", type=int, default=None, help="steps to forecast")
    rec.add_argument(
        "--out",
        help="output .npz, .npy, .csv or folder (default: RUN/reconstruction with the "
        "input's suffix; never the input)",
    )
    rec.set_defaults(func=_cmd_reconstruct)

    ev = sub.add_parser("evaluate", help="the paper's metrics on a split, as a table and JSON")
    _run_options(ev)
    ev.add_argument(
        "--split",
        default="test",
        choices=["val", "test", "ood"],
        help="(default: test; ood = the out-of-distribution ranges)",
    )
    ev.add_argument("--json", help="output JSON (default: RUN/eval_SPLIT.json)")
    ev.set_defaults(func=_cmd_evaluate)

    # the demo parses its own options (`warp-phys demo --help` lists them)
    demo = sub.add_parser(
        "demo", help="train WARP on a small MSD set and forecast (make demo)", add_help=False
    )
    demo.set_defaults(func=_cmd_demo)

    _add_data_command(sub)

    lst = sub.add_parser("list", help="list registered decoders, systems and models")
    lst.set_defaults(func=_cmd_list)

    add_plot_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `warp-phys` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "demo":
        args.demo_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        args.func(args)
    except (ValueError, OSError, FloatingPointError, TypeError) as err:
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
