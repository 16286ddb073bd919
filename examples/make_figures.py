"""Regenerate every figure in `figures/` (`make figures`).

Trains two small models on mass-spring-damper data (or loads them when their run
folders already exist), then draws each figure from the run folders exactly as
`warp-phys plot KIND --run DIR` does:

- WARP with the default MLP root network (`runs/figures/warp_mlp`);
- WARP-Phys, whose root is the damped-oscillator prior (`runs/figures/warp_phys`):
  theta_t gives (omega0, zeta) and the state moves by the exact transition.

Training is a fixed number of steps (so the figures do not depend on the machine's
speed), a few minutes on 2 CPU cores; loading existing runs takes under a minute:

    python examples/make_figures.py [--retrain] [--steps 400] [--figures figures]
"""

import argparse
import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import systems  # noqa: E402
import warp_phys as wp  # noqa: E402
from warp_phys._plot_command import load_run, plot_run  # noqa: E402
from warp_phys.plotting import save_figure  # noqa: E402

SYSTEM, SEED, CONTEXT = "msd", 0, 100
N_TRAIN, N_VAL, N_TEST = 256, 32, 16

# run name -> model options, in the keys of `warp-phys train`'s config.json
MODELS = {
    "warp_mlp": {"decoder": "mlp", "root_width": 16, "root_depth": 2, "hyper_width": 16,
                 "hyper_depth": 1, "decoder_options": {"final_activation": 5.0}},
    "warp_phys": {"decoder": "damped_oscillator", "root_width": 16, "root_depth": 2,
                  "hyper_width": 16, "hyper_depth": 1, "decoder_options": {"omega0_init": 17.0}},
}  # fmt: skip

# output file -> (run, kind, plot options); every file in figures/ except the demo's
FIGURES = {
    "warp_reconstruction.png": ("warp_mlp", "reconstruction", {}),
    "warp_weights.png": ("warp_mlp", "weights", {}),
    "warp_belief.png": ("warp_mlp", "belief", {}),
    "warp_trajectory.png": ("warp_mlp", "trajectory", {}),
    "warp_transition.png": ("warp_mlp", "transition", {}),
    "phys_reconstruction.png": ("warp_phys", "reconstruction", {}),
    "phys_physics.png": ("warp_phys", "physics", {}),
    "phys_belief.png": ("warp_phys", "belief", {"feed": "rollout"}),
}


def train_run(name: str, folder: Path, data, normalizer, steps: int, seconds: float) -> None:
    """Train one model and write its run folder as `warp-phys train` does: `config.json`,
    `normalizer.json`, `best.eqx`, `last.eqx`, `metrics.jsonl`, `summary.json`."""
    train_set, val_set = data
    options = json.loads(json.dumps(MODELS[name]))
    decoder_options = dict(options["decoder_options"])
    if options["decoder"] == "damped_oscillator":
        # the prior computes in physical units: give it the data normalisation
        decoder_options["scale"] = np.asarray(normalizer.std).tolist()
        decoder_options["shift"] = np.asarray(normalizer.mean).tolist()
    model = wp.WARP(
        2, decoder=options["decoder"], root_width=options["root_width"],
        root_depth=options["root_depth"], decoder_options=decoder_options,
        hyper_width=options["hyper_width"], hyper_depth=options["hyper_depth"],
        seq_len=train_set.y.shape[1], key=jax.random.PRNGKey(SEED),
    )  # fmt: skip
    print(f"training {name} (D_theta = {model.theta_size}) for {steps} steps")
    settings = dict(steps=steps, batch_size=16, lr=2e-3)
    start = time.perf_counter()
    _, history = wp.train(
        model,
        normalizer.apply(train_set.y),
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        learning_rate=settings["lr"],
        val_data=normalizer.apply(val_set.y),
        val_context=CONTEXT,
        val_every=50,
        max_seconds=seconds,
        checkpoint_dir=folder,
        key=jax.random.PRNGKey(SEED + 1),
        progress=False,
    )
    config = {
        "system": SYSTEM, "seed": SEED, "data_seed": SEED, "n_train": N_TRAIN, "n_val": N_VAL,
        "n_test": N_TEST, "normalize": True, "model": "warp", "context": CONTEXT,
        "max_seconds": seconds, **options, **settings,
    }  # fmt: skip
    summary = {
        "model_config": model.config,
        "steps_done": history["step"][-1],
        "train_seconds": round(time.perf_counter() - start, 1),
        "best_val_mse_normalized": min(history["val_mse"], default=None),
    }
    for filename, value in [("config.json", config), ("normalizer.json", normalizer.to_dict()),
                            ("summary.json", summary)]:  # fmt: skip
        (folder / filename).write_text(json.dumps(value, indent=2) + "\n")
    print(f"  {summary['steps_done']} steps in {summary['train_seconds']:.0f} s, best "
          f"validation MSE (normalised units) {summary['best_val_mse_normalized']:.4g}")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/figures", help="where the run folders live")
    parser.add_argument("--figures", default="figures", help="where the PNGs go")
    parser.add_argument("--steps", type=int, default=400, help="training steps per model")
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="wall-clock cap per model (a safety net; steps decide)")
    parser.add_argument("--retrain", action="store_true", help="train even if a run exists")
    args = parser.parse_args(argv)
    runs, figures = Path(args.runs), Path(args.figures)

    missing = [n for n in MODELS if args.retrain or not (runs / n / "best.eqx").is_file()]
    if missing:
        train_set = systems.generate(SYSTEM, N_TRAIN, split="train", seed=SEED)
        val_set = systems.generate(SYSTEM, N_VAL, split="val", seed=SEED)
        normalizer = wp.Normalizer.fit(train_set.y)
        for name in missing:
            train_run(name, runs / name, (train_set, val_set), normalizer, args.steps, args.seconds)

    loaded = {name: load_run(runs / name, count=3) for name in MODELS}
    written = []
    for filename, (name, kind, options) in FIGURES.items():
        fig = plot_run(kind, loaded[name], index=None, **options)
        written.append(save_figure(fig, figures / filename, dpi=110, palette=True))
        plt.close(fig)
        print(f"{kind:>15} ({name}): {written[-1]} ({written[-1].stat().st_size // 1024} KB)")
    return written


if __name__ == "__main__":
    main()
