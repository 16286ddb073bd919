"""`warp-phys plot KIND --run DIR`: every figure of `warp_phys.plotting` from a run folder.

The run folder (of `warp-phys train` or `warp-phys demo`) is loaded by `load_run`; the
figure is drawn by `warp_phys.plotting.plot_run`, which regenerates only the first
`index + 1` trajectories of the split, or reads them from `--data FILE.npz`.
"""

import argparse
from pathlib import Path

import matplotlib

from ._run_commands import refine_steps
from .plotting import FORMATS, KINDS, plot_run, save_figure
from .training.run import Run, load_run

__all__ = ["add_plot_command", "default_output"]


def default_output(run: Run, kind: str, index, fmt: str) -> Path:
    """`RUN/figures/KIND[_INDEX].FORMAT`."""
    suffix = "" if kind == "transition" else f"_{index[0] if index else 0}"
    return run.folder / "figures" / f"{kind}{suffix}.{fmt}"


def _cmd_plot(args: argparse.Namespace) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {args.format!r}")
    out_format = Path(args.out).suffix.lstrip(".").lower() if args.out else ""
    if out_format and args.format_given and out_format != args.format:
        raise ValueError(f"--out {args.out} does not end in .{args.format} (--format)")
    run = load_run(args.run, args.checkpoint)
    fig = plot_run(
        args.kind,
        run,
        split=args.split,
        data=args.data,
        index=args.index,
        context=args.context,
        forecast=args.forecast,
        feed=args.feed,
        gd_steps=args.gd_steps,
        refine=args.refine,
    )
    out = Path(args.out) if args.out else default_output(run, args.kind, args.index, args.format)
    if not out.suffix:
        out = out.with_suffix(f".{args.format}")
    path = save_figure(fig, out, dpi=args.dpi)
    plt.close(fig)
    print(f"{args.kind}: {path}")


class _FormatAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.format = values
        namespace.format_given = True


def add_plot_command(subparsers) -> argparse.ArgumentParser:
    """Register `plot` on the `warp-phys` sub-parsers; returns its parser.

    The handler (`args.func`) loads the run's best checkpoint and data, draws the figure
    and saves it; bad requests raise `ValueError` / `FileNotFoundError`.
    """
    plot = subparsers.add_parser(
        "plot",
        help="draw a figure of a trained run (reconstruction, weights, belief, ...)",
        description=(
            "Draw one figure of a run folder: reconstruction (truth, context, forecast), "
            "weights (theta_t heat map and norms), belief (every theta_t decoded over the "
            "whole time grid), trajectory (PCA of theta_t vs gradient descent), physics "
            "(physical parameters read from theta_t vs the truth; physical decoders only), "
            "transition (spectrum and diagonal of A, A - I, B)."
        ),
    )
    plot.add_argument("kind", choices=KINDS, help="which figure")
    plot.add_argument("--run", required=True, help="run folder (with best.eqx)")
    plot.add_argument(
        "--index",
        type=int,
        nargs="+",
        default=None,
        help="trajectory index in the split (reconstruction: one or more, default 0 1 2; "
        "other kinds: one, default 0)",
    )
    plot.add_argument("--split", default="test", choices=["train", "val", "test", "ood"])
    plot.add_argument("--data", default=None, help="a .npz data set instead of regenerating")
    plot.add_argument("--context", type=int, default=None, help="context length (default: run's)")
    plot.add_argument(
        "--forecast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="weights, belief, trajectory, physics: the states run free after the context "
        "(--no-forecast: every step observed; default: auto, free for a model trained with "
        "the held state, --free-run hold)",
    )
    plot.add_argument(
        "--feed",
        default="data",
        choices=["data", "rollout"],
        help="belief: x_prev from the data or from the decoder itself",
    )
    plot.add_argument(
        "--gd-steps",
        type=int,
        default=256,
        help="trajectory: gradient-descent iterations (0: none)",
    )
    plot.add_argument("--checkpoint", default="best", choices=["best", "last"])
    plot.add_argument(
        "--refine",
        type=refine_steps,
        default="auto",
        metavar="K",
        help="reconstruction, physics: also fit a physical prior to the context by K "
        "Levenberg-Marquardt steps; 0: none (default: auto, as in evaluate)",
    )
    plot.add_argument("--out", default=None, help="output file (default RUN/figures/KIND_I.FMT)")
    plot.add_argument(
        "--format",
        default="png",
        choices=["png", "pdf", "svg"],
        action=_FormatAction,
        help="file format (default png)",
    )
    plot.add_argument("--dpi", type=int, default=130)
    plot.set_defaults(func=_cmd_plot, format_given=False)
    return plot
