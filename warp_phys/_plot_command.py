"""`warp-phys plot KIND --run DIR`: every figure of `warp_phys.plotting` from a run folder.

The run folder (of `warp-phys train` or `warp-phys demo`) is loaded by `load_run`; only
the first `index + 1` trajectories of the split are regenerated (`run_dataset`), or they
are read from `--data FILE.npz`.
"""

import argparse
from pathlib import Path

import matplotlib

from .training.run import Run, load_run, run_dataset

__all__ = ["KINDS", "add_plot_command", "default_output", "plot_run"]

KINDS = ("reconstruction", "weights", "belief", "trajectory", "physics", "transition")
_CHANNELS = {
    "msd": ["position x", "velocity v"],
    "msd_zero": ["position x", "velocity v"],
    "pendulum": ["angle", "angular velocity"],
    "lotka_volterra": ["prey", "predator"],
    "lotka_volterra_repeat": ["prey", "predator"],
    "lorenz63": ["x", "y", "z"],
    "sine": ["y"],
}


def plot_run(
    kind: str,
    run: Run,
    *,
    split: str = "test",
    data=None,
    index: list[int] | int | None = None,
    context: int | None = None,
    forecast: bool = False,
    feed: str = "data",
    gd_steps: int = 256,
):
    """Draw the figure `kind` (one of `KINDS`) of a loaded `Run`.

    **Arguments:**

    - `kind`: `"reconstruction"`, `"weights"`, `"belief"`, `"trajectory"`, `"physics"`
      or `"transition"`.
    - `run`: from `load_run`.
    - `split`: the data split to draw; `data`: a data file to draw instead (see
      `run_dataset`).
    - `index`: trajectory index (a list for `reconstruction`, default `[0, 1, 2]`).
    - `context`: the context length L (default: the run's).
    - `forecast`: for the state plots, let theta_t run free after the context (default:
      every step observed).
    - `feed`: see `plotting.belief_matrix`; `gd_steps`: see `plotting.plot_trajectory`.

    **Returns:** a matplotlib `Figure`. Bad requests are `ValueError`s.
    """
    from . import plotting
    from .plotting._common import check_index

    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; choose from {', '.join(KINDS)}")
    indices = [index] if isinstance(index, int) else list(index or [])
    count = 1 + max(indices or [2 if kind == "reconstruction" else 0])
    ds, size = run_dataset(run, split, count, data)
    model, norm = run.model, run.normalizer
    T, d = ds.y.shape[1:]
    L = run.config.context if context is None else context
    if isinstance(L, bool) or not isinstance(L, int) or not 1 <= L < T:
        raise ValueError(f"context must be an int in [1, {T - 1}], got {L!r}")
    if kind == "reconstruction":
        indices = indices or list(range(min(3, size)))
    elif len(indices) > 1:
        raise ValueError(f"the {kind!r} plot shows one trajectory; got indices {indices}")
    indices = [check_index(i, size) for i in indices or [0]]
    if max(indices) >= len(ds):
        raise ValueError(
            f"trajectory index {max(indices)} is beyond the {len(ds)} loaded; "
            "load the run with a larger count"
        )
    if kind != "reconstruction" and not hasattr(model, "weight_trajectory"):
        raise ValueError(
            f"the {kind!r} plot needs a WARP model; this run holds a {type(model).__name__}"
        )
    names = _CHANNELS.get(ds.name) if len(_CHANNELS.get(ds.name, [])) == d else None
    who = _describe(model)
    tag = f"{ds.name} {ds.split} trajectory {indices[0]}, {who}"
    i, y, t = indices[0], ds.y[indices[0]], ds.t
    own_times = ds.extras.get("t")  # an irregular grid: each trajectory's times (N, T)
    if own_times is not None:
        t = own_times[i]
    state_context = L if forecast else None
    if kind == "reconstruction":
        return plotting.plot_forecast(
            model, ds.y, L, t=ds.t if own_times is None else own_times, indices=indices,
            normalizer=norm, channel_names=names,
            convention=run.config.convention,
            title=f"{who} on {ds.name} ({ds.split}): forecast after {L} observed steps",
        )  # fmt: skip
    if kind == "weights":
        from .plotting._common import to_model_units

        ts = own_times[i] if own_times is not None and model.time_aware else None
        thetas, _ = plotting.state_trajectory(model, to_model_units(y, norm), state_context, ts)
        return plotting.plot_weights(
            thetas, decoder=model.decoder, t=t, context=L,
            title=r"$\theta_t$ along " + tag,
        )  # fmt: skip
    if kind == "belief":
        return plotting.plot_belief(
            model, y, t=t, normalizer=norm, feed=feed, context=state_context,
            channel_names=names, title=f"What each state believes about {tag}",
        )  # fmt: skip
    if kind == "trajectory":
        return plotting.plot_trajectory(
            model, y, normalizer=norm, context=state_context, gd_steps=gd_steps,
            title=f"Weight-space path along {tag} vs gradient descent",
        )  # fmt: skip
    if kind == "physics":
        params = {k: v[i] for k, v in ds.params.items()}
        return plotting.plot_physics(
            model, y, t=t, normalizer=norm, context=L if forecast else None,
            truth=plotting.true_physical_parameters(ds.name, params),
            title=r"Physical parameters read from $\theta_t$" + f" along {tag}",
        )  # fmt: skip
    return plotting.plot_transition(
        model, channel_names=names,
        title=r"Transition of the recurrence $\theta_t = A\theta_{t-1} + B\Delta x_t$, " + who,
    )  # fmt: skip


def _describe(model) -> str:
    """`"WARP (mlp root)"`, `"GRU"`, ...: the model as the figure titles name it."""
    decoder = getattr(model, "config", {}).get("decoder")
    name = type(model).__name__
    return f"{name} ({decoder} root)" if isinstance(decoder, str) and name == "WARP" else name


def default_output(run: Run, kind: str, index, fmt: str) -> Path:
    """`RUN/figures/KIND[_INDEX].FORMAT`."""
    suffix = "" if kind == "transition" else f"_{index[0] if index else 0}"
    return run.folder / "figures" / f"{kind}{suffix}.{fmt}"


def _cmd_plot(args: argparse.Namespace) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import FORMATS, save_figure

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
        "--index", type=int, nargs="+", default=None,
        help="trajectory index in the split (reconstruction: one or more, default 0 1 2; "
        "other kinds: one, default 0)",
    )  # fmt: skip
    plot.add_argument("--split", default="test", choices=["train", "val", "test", "ood"])
    plot.add_argument("--data", default=None, help="a .npz data set instead of regenerating")
    plot.add_argument("--context", type=int, default=None, help="context length (default: run's)")
    plot.add_argument(
        "--forecast", action="store_true",
        help="states run free after the context (weights, belief, trajectory, physics)",
    )  # fmt: skip
    plot.add_argument("--feed", default="data", choices=["data", "rollout"],
                      help="belief: x_prev from the data or from the decoder itself")
    plot.add_argument("--gd-steps", type=int, default=256,
                      help="trajectory: gradient-descent iterations (0: none)")
    plot.add_argument("--checkpoint", default="best", choices=["best", "last"])
    plot.add_argument("--out", default=None, help="output file (default RUN/figures/KIND_I.FMT)")
    plot.add_argument("--format", default="png", choices=["png", "pdf", "svg"],
                      action=_FormatAction, help="file format (default png)")
    plot.add_argument("--dpi", type=int, default=130)
    plot.set_defaults(func=_cmd_plot, format_given=False)
    return plot
