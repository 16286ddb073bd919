"""The main job (`make demo`): train WARP-Phys on MSD and forecast from a context.

Generates mass-spring-damper trajectories with diffrax, trains WARP with the exact
damped-oscillator root (`--decoder mlp` for the plain WARP) and autoregressive teacher
forcing on a wall-clock budget, the learning-rate schedule sized to it (an ordinary run
folder, as `warp-phys train` writes it), reconstructs held-out test trajectories from
their first `--context` steps and compares the forecast MSE (raw units) with the
"repeat the last context value" baseline. Writes the run, the comparison and the
figures (the forecast, theta_t, and for a physical prior the parameters it reads).
"""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import systems
from systems import atomic_write_json

from .decoders import PhysicalPrior
from .plotting import plot_reconstruction, plot_run, plot_weights, save_figure
from .training.config import RunConfig
from .training.evaluation import evaluate_run, reconstruct_run
from .training.parameters import median_relative_error, parameter_table
from .training.run import load_dataset, train_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warp-phys demo", description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="msd", help="registered system (default: msd)")
    parser.add_argument(
        "--decoder", default="damped_oscillator", help="root decoder (default: damped_oscillator)"
    )
    parser.add_argument("--n-train", type=int, default=20480)
    parser.add_argument("--n-val", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=128)
    parser.add_argument("--context", type=int, default=100, help="observed steps L")
    parser.add_argument("--seconds", type=float, default=150.0, help="training budget (s)")
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps (default: what --seconds allows)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--root-width", type=int, default=8)
    parser.add_argument("--root-depth", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/demo", help="run folder")
    parser.add_argument("--figures", default="figures", help="where the PNGs go")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def demo_config(args: argparse.Namespace) -> RunConfig:
    """The demo's run: WARP-Phys with the damped oscillator (started, as every run, at the
    physics of the centre of the system's parameter ranges), or WARP with an MLP root
    clipped to [-5, 5] normalised units (the data span about +-3, so free rollouts stay
    finite)."""
    options = {"final_activation": 5.0} if args.decoder == "mlp" else {"activation": "swish"}
    return RunConfig(
        system=args.system,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        model="warp",
        decoder=args.decoder,
        root_width=args.root_width,
        root_depth=args.root_depth,
        decoder_options=options,
        hyper_width=16,
        context=args.context,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_every=100,
        max_seconds=args.seconds,
        seed=args.seed,
    )


def channel_names(system: str, size: int) -> list[str] | None:
    """The system's channel names where it has one per channel."""
    names = systems.get_system(system).channel_names
    return list(names) if names is not None and len(names) == size else None


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    out, figures = Path(args.out), Path(args.figures)
    config = demo_config(args)
    T = systems.get_system(args.system).n_steps
    if not 1 <= args.context < T:
        raise SystemExit(f"--context must be in [1, {T - 1}], got {args.context}")
    print(
        f"{args.system}: {args.n_train} train / {args.n_val} val / {args.n_test} test "
        f"trajectories; training WARP ({args.decoder} root) for {args.seconds:.0f} s"
    )
    run, history = train_run(config, out, overwrite=True, progress=not args.quiet)
    scores = evaluate_run(run, split="test", n=args.n_test, refine="auto")
    summary = {
        "system": args.system,
        "decoder": args.decoder,
        "context": args.context,
        "horizon": T - args.context,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "theta_size": run.model.theta_size,
        "train_steps": history["step"][-1],
        "train_seconds": round(history["seconds"][-1], 1),
        "test_mse_warp": scores.get("mse_readout", scores["mse"]),
        "test_mse_repeat_last": scores["mse_repeat_last"],
    }
    if "refine" in scores:
        summary.update(refine=scores["refine"], test_mse_refined=scores["mse"])
    physical = isinstance(run.model.decoder, PhysicalPrior)
    if physical:
        read, refined = _identification(run, args.n_test)
        summary["identification_median_rel_err"] = read
        summary["identification_refined_median_rel_err"] = refined
    paths = [atomic_write_json(figures / "demo_summary.json", summary)]
    mse = f"test MSE {summary['test_mse_warp']:.3g}"
    if "refine" in summary:
        mse += f" read-out, {summary['test_mse_refined']:.2g} refined"
    paths += _figures(run, args, figures, mse)
    warp_mse, baseline_mse = summary["test_mse_warp"], summary["test_mse_repeat_last"]
    print(
        f"\ntest MSE over steps {args.context}..{T - 1} ({args.n_test} held-out trajectories, "
        "raw units):"
    )
    label = "WARP-Phys" if physical else "WARP"
    print(f"  {label + ' (read-out)' if physical else label:<24}{warp_mse:10.4g}")
    if "refine" in summary:
        refined = f"refined ({summary['refine']} steps)"
        print(f"  {refined:<24}{summary['test_mse_refined']:10.4g}")
    print(f"  repeat last value       {baseline_mse:10.4g}")
    print(f"  ratio                   {baseline_mse / warp_mse:10.1f}x lower with {label}")
    for name, err in summary.get("identification_median_rel_err", {}).items():
        fitted = summary["identification_refined_median_rel_err"].get(name)
        line = f"  {name} read at the end of the context: median error {100 * err:.2g} %"
        print(line + ("" if fitted is None else f", refined: {100 * fitted:.2g} %"))
    print(f"\nrun folder:   {out}/ (config.json, best.eqx, last.eqx, summary.json)")
    print(f"WARP:         D_theta = {run.model.theta_size}, {history['step'][-1]} steps")
    print(f"figures:      {', '.join(str(p) for p in paths)}")
    return summary


def _figures(run, args, figures: Path, mse: str) -> list[Path]:
    """The forecast of three held-out trajectories next to repeat-last (`mse`: the test
    MSE for the title), theta_t along the first one and, for a physical prior, the
    parameters read from it and refined on the context."""
    test = load_dataset(run.config, "test", 3)
    truth, L = np.asarray(test.y), args.context
    forecast = reconstruct_run(run, truth, context=L, refine="auto")
    others = {}
    if forecast.get("refine"):
        others["read-out alone"] = reconstruct_run(run, truth, context=L)["prediction"]
    label = f"forecast, prior refined ({forecast['refine']} steps)" if others else "WARP forecast"
    forecast = forecast["prediction"]
    repeat_last = np.broadcast_to(truth[:, L - 1 : L], forecast.shape)
    fig = plot_reconstruction(
        test.t,
        truth,
        forecast,
        L,
        baseline=repeat_last,
        others=others,
        label=label,
        channel_names=channel_names(args.system, truth.shape[2]),
        title=f"WARP on held-out {args.system.upper()} trajectories "
        f"(context {L} steps, {mse})",
    )
    paths = [save_figure(fig, figures / "demo_reconstruction.png")]
    plt.close(fig)
    thetas = run.model.weight_trajectory(run.normalizer.apply(truth[0]))
    fig = plot_weights(
        thetas,
        decoder=run.model.decoder,
        t=test.t,
        context=L,
        title=f"theta_t of WARP along a held-out {args.system.upper()} trajectory",
    )
    paths.append(save_figure(fig, figures / "demo_weights.png"))
    plt.close(fig)
    if isinstance(run.model.decoder, PhysicalPrior):
        fig = plot_run("physics", run, index=0, forecast=True, refine="auto")
        paths.append(save_figure(fig, figures / "demo_physics.png"))
        plt.close(fig)
    return paths


def _identification(run, n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median relative error, over `n` test trajectories, of each physical parameter read
    at the end of the context and refined on it, where the data know the truth."""
    table = parameter_table(run, split="test", n=n, refine="auto")
    rows = table["parameters"].items()
    return tuple(
        {n: e for n, row in rows if (e := median_relative_error(row, key)) is not None}
        for key in ("value", "refined")
    )


if __name__ == "__main__":
    main()
