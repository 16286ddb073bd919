"""The main job (`make demo`): train WARP on a small MSD set and forecast from a context.

Generates mass-spring-damper trajectories with diffrax, trains WARP with
autoregressive teacher forcing on a wall-clock budget, reconstructs held-out test
trajectories from their first `--context` steps and compares the forecast MSE (raw
units) with the "repeat the last context value" baseline. Writes the run (checkpoints,
summary) and two figures.
"""

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import systems
from systems import atomic_write_bytes

from ._forecast import reconstruct
from ._model import WARP
from .plotting import plot_reconstruction, plot_weights, save_figure
from .training.data import Normalizer
from .training.loop import train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warp-phys demo", description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="msd", help="registered system (default: msd)")
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-val", type=int, default=64)
    parser.add_argument("--n-test", type=int, default=128)
    parser.add_argument("--context", type=int, default=100, help="observed steps L")
    parser.add_argument("--seconds", type=float, default=150.0, help="training budget (s)")
    parser.add_argument("--steps", type=int, default=3000, help="maximum training steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--root-width", type=int, default=16)
    parser.add_argument("--root-depth", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/demo", help="run folder")
    parser.add_argument("--figures", default="figures", help="where the PNGs go")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    out, figures = Path(args.out), Path(args.figures)
    print(
        f"generating {args.system}: {args.n_train} train / {args.n_val} val / "
        f"{args.n_test} test trajectories"
    )
    train_set = systems.generate(args.system, args.n_train, split="train", seed=args.seed)
    val_set = systems.generate(args.system, args.n_val, split="val", seed=args.seed)
    test_set = systems.generate(args.system, args.n_test, split="test", seed=args.seed)
    T, d = train_set.y.shape[1:]
    if not 1 <= args.context < T:
        raise SystemExit(f"--context must be in [1, {T - 1}], got {args.context}")

    normalizer = Normalizer.fit(train_set.y)
    model = WARP(
        d,
        root_width=args.root_width,
        root_depth=args.root_depth,
        hyper_width=16,
        # clip to [-5, 5] normalised units (the data span about +-3): keeps the
        # free-running rollouts of an untrained model finite
        decoder_options={"final_activation": 5.0},
        seq_len=T,
        key=jax.random.PRNGKey(args.seed),
    )
    print(
        f"WARP: D_theta = {model.theta_size}, A has {model.theta_size**2:,} entries; "
        f"training for up to {args.seconds:.0f} s"
    )
    start = time.perf_counter()
    model, history = train(
        model,
        normalizer.apply(train_set.y),
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        val_data=normalizer.apply(val_set.y),
        val_context=args.context,
        val_every=50,
        max_seconds=args.seconds,
        checkpoint_dir=out,
        key=jax.random.PRNGKey(args.seed + 1),
        progress=not args.quiet,
    )
    train_seconds = time.perf_counter() - start

    truth = jnp.asarray(test_set.y)
    context = normalizer.apply(truth[:, : args.context])
    forecast = normalizer.invert(
        jax.jit(lambda c: reconstruct(model, c, T - args.context))(context)
    )
    future = truth[:, args.context :]
    repeat_last = jnp.broadcast_to(truth[:, args.context - 1 : args.context], future.shape)
    warp_mse = float(jnp.mean((forecast - future) ** 2))
    baseline_mse = float(jnp.mean((repeat_last - future) ** 2))

    summary = {
        "system": args.system,
        "context": args.context,
        "horizon": T - args.context,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "theta_size": model.theta_size,
        "train_steps": history["step"][-1],
        "train_seconds": round(train_seconds, 1),
        "test_mse_warp": warp_mse,
        "test_mse_repeat_last": baseline_mse,
        "normalizer": {
            "mean": np.asarray(normalizer.mean).tolist(),
            "std": np.asarray(normalizer.std).tolist(),
        },
    }
    for path in (out / "summary.json", figures / "demo_summary.json"):
        atomic_write_bytes(path, json.dumps(summary, indent=2).encode())

    show = slice(0, 3)
    fig = plot_reconstruction(
        test_set.t,
        truth[show],
        forecast[show],
        args.context,
        baseline=repeat_last[show],
        channel_names=["position x", "velocity v"],
        title=f"WARP on held-out {args.system.upper()} trajectories "
        f"(context {args.context} steps, test MSE {warp_mse:.3g})",
    )
    recon_path = save_figure(fig, figures / "demo_reconstruction.png")
    plt.close(fig)
    thetas = model.weight_trajectory(normalizer.apply(truth[0]))
    fig = plot_weights(
        thetas,
        decoder=model.decoder,
        t=test_set.t,
        context=args.context,
        title="theta_t of WARP along a held-out MSD trajectory",
    )
    weights_path = save_figure(fig, figures / "demo_weights.png")
    plt.close(fig)

    print(
        f"\ntest MSE over steps {args.context}..{T - 1} ({args.n_test} held-out trajectories, "
        "raw units):"
    )
    print(f"  WARP                    {warp_mse:10.4f}")
    print(f"  repeat last value       {baseline_mse:10.4f}")
    print(f"  ratio                   {baseline_mse / warp_mse:10.1f}x lower with WARP")
    print(f"\nrun folder:   {out}/ (best.eqx, last.eqx, summary.json)")
    print(f"figures:      {recon_path}, {weights_path}")
    return summary


if __name__ == "__main__":
    main()
