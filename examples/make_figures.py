"""Regenerate every figure in `figures/` (`make figures`).

Trains two models on mass-spring-damper data exactly as `warp-phys train` does with its
defaults (or loads them when their run folders already exist), then draws each figure
from the run folders exactly as `warp-phys plot KIND --run DIR` does (the WARP-Phys
forecast and parameters also refined on the context, as the CLI does by default):

- WARP with the default MLP root network (`runs/figures/warp_mlp`);
- WARP-Phys, whose root is the damped-oscillator prior (`runs/figures/warp_phys`):
  theta_t gives (omega0, zeta) and the state moves by the exact transition.

Training is a fixed number of steps (so the figures do not depend on the machine's
speed), about 5 minutes on 2 idle CPU cores; loading existing runs takes under a minute:

    python examples/make_figures.py [--retrain] [--steps 3000] [--figures figures]
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from warp_phys import RunConfig, load_run, train_run  # noqa: E402
from warp_phys.plotting import plot_run, save_figure  # noqa: E402

# what both runs share: the CLI defaults on MSD (root 8x2, 20,480 training trajectories,
# batch 32, Adam 3e-3, cosine) for a fixed number of steps, so that the figures do not
# depend on the machine's speed
COMMON = dict(system="msd", n_test=16, seed=0, steps=3000)
# run name -> its own options (`warp-phys train` flags)
MODELS = {
    "warp_mlp": dict(decoder="mlp"),
    # the oscillator gets dt, the normaliser's scale/shift and its start (the physics at
    # the centre of the system's ranges) from `warp-phys train`
    "warp_phys": dict(decoder="damped_oscillator"),
}

# output file -> (run, kind, plot options); every file in figures/ except the demo's
FIGURES = {
    "warp_reconstruction.png": ("warp_mlp", "reconstruction", {}),
    "warp_weights.png": ("warp_mlp", "weights", {}),
    "warp_belief.png": ("warp_mlp", "belief", {}),
    "warp_trajectory.png": ("warp_mlp", "trajectory", {}),
    "warp_transition.png": ("warp_mlp", "transition", {}),
    "phys_reconstruction.png": ("warp_phys", "reconstruction", {"refine": "auto"}),
    # the states of a forecast: observed for the context, then running on its own outputs
    "phys_physics.png": ("warp_phys", "physics", {"refine": "auto", "forecast": True}),
    "phys_belief.png": ("warp_phys", "belief", {"feed": "rollout"}),
}


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/figures", help="where the run folders live")
    parser.add_argument("--figures", default="figures", help="where the PNGs go")
    parser.add_argument("--steps", type=int, default=COMMON["steps"],
                        help="training steps per model")  # fmt: skip
    parser.add_argument("--retrain", action="store_true", help="train even if a run exists")
    args = parser.parse_args(argv)
    runs, figures = Path(args.runs), Path(args.figures)

    for name, options in MODELS.items():
        folder = runs / name
        if args.retrain or not (folder / "best.eqx").is_file():
            config = RunConfig(**{**COMMON, **options, "steps": args.steps})
            print(f"training {name}: warp-phys train {_flags(options)} ... --out {folder}")
            _, history = train_run(config, folder, overwrite=True, progress=False)
            print(f"  {history['step'][-1]} steps in {history['seconds'][-1]:.0f} s, best "
                  f"validation MSE (normalised units) {min(history['val_mse']):.4g}")  # fmt: skip

    loaded = {name: load_run(runs / name) for name in MODELS}
    written = []
    for filename, (name, kind, options) in FIGURES.items():
        fig = plot_run(kind, loaded[name], index=None, **options)
        written.append(save_figure(fig, figures / filename, dpi=110, palette=True))
        plt.close(fig)
        print(f"{kind:>15} ({name}): {written[-1]} ({written[-1].stat().st_size // 1024} KB)")
    return written


def _flags(options: dict) -> str:
    """The `warp-phys train` flags of `options`, for the log."""
    return " ".join(
        f"--{k.replace('_', '-')} " + (f"'{json.dumps(v)}'" if isinstance(v, dict) else str(v))
        for k, v in options.items()
    )


if __name__ == "__main__":
    main()
