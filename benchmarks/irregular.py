"""Irregular time grids (issue 9, section 2): WARP on irregularly sampled MSD.

The same WARP (the reconstruction table's cpu-preset WARP-MLP: root MLP 8-8, swish,
hypernetwork width 16, autoregressive training with teacher forcing 0.25, Adam 3e-3 with
a cosine schedule, normalised data, the best validated model kept) with the time-aware
`continuous` transition, with two roots: `tau_x_prev` reads [tau, x_prev] (the paper's
root; the last observation gives it a shortcut past the time) and `tau_only` reads tau
alone (theta must encode the trajectory as a function of time: the WARP idea in its
purest form). Each is trained three ways for the same steps and seeds:

- `regular`: `msd` on its regular grid of 256 steps (the reference setting);
- `irregular_plain`: `msd_irregular` (each trajectory keeps t = 0 and 255 random later
  points of a grid 4x finer) with its time stamps withheld, so the model assumes equal
  steps: the plain formulation;
- `irregular_time_aware`: the same data and the time stamps: tau from the real times,
  exp(h Lambda) per step, the drive scaled by phi(h Lambda).

Each is scored on its own test split (512 trajectories): the forecast MSE after L = 100
observed steps (raw units, no 1/2; the forecast is made at the test trajectory's own
times when the model has them) and the one-step teacher-forced MSE over all steps.
Writes `results/irregular.json`, `figures/irregular.png` (one test trajectory) and the
README block. About 25 minutes on 2 CPU cores; `--smoke` runs tiny sizes in a minute.

    python -m benchmarks.irregular
    python -m benchmarks.irregular --smoke --out /tmp/irregular.json --figure /tmp/irr.png
"""

import argparse
import dataclasses
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks._readme import splice_readme
from benchmarks.reconstruction import _device

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "irregular.json"
DEFAULT_FIGURE = ROOT / "figures" / "irregular.png"
SETTINGS = ("regular", "irregular_plain", "irregular_time_aware")
ROOTS = {"tau_x_prev": {"input_prev": True}, "tau_only": {"input_prev": False}}
FULL = dict(n_train=1024, n_val=64, n_test=512, n_steps=256, context=100, steps=2000,
            seeds=(0, 1, 2), val_every=50)  # fmt: skip
SMOKE = dict(n_train=16, n_val=8, n_test=8, n_steps=24, context=8, steps=4, seeds=(0,),
             val_every=2)  # fmt: skip


def _config(spec: dict, root: str, seed: int):
    from warp_phys import RunConfig

    return RunConfig(
        transition="continuous", decoder="mlp",
        decoder_options={"activation": "swish", **ROOTS[root]},
        root_width=8, root_depth=2, hyper_width=16, hyper_depth=1, steps=spec["steps"],
        batch_size=min(32, spec["n_train"]), lr=3e-3, optimizer="adam", clip="global_norm",
        clip_value=1.0, schedule="cosine", val_every=spec["val_every"],
        context=spec["context"], forcing_prob=0.25, eval_protocol="forecast", seed=seed,
    )  # fmt: skip


def _data(spec: dict) -> dict:
    """`{setting: (train, val, test)}` Datasets; the plain setting's have no times."""
    import systems

    def splits(name):
        return tuple(
            systems.generate(name, spec[f"n_{split}"], split=split, seed=0,
                             n_steps=spec["n_steps"], progress=False)
            for split in ("train", "val", "test")
        )  # fmt: skip

    irregular = splits("msd_irregular")
    plain = tuple(dataclasses.replace(d, extras={}) for d in irregular)
    return {"regular": splits("msd"), "irregular_plain": plain,
            "irregular_time_aware": irregular}  # fmt: skip


def _one_step_mse(run, test) -> float:
    """Teacher-forced one-step MSE over every predicted step, raw units."""
    from warp_phys.training.data import grid_times
    from warp_phys.training.protocol import predict

    ts = grid_times(test, run.model, "test")
    mean, start = predict(run.model, run.normalizer.apply(test.y), protocol="full", ts=ts)
    return float(np.mean((np.asarray(run.normalizer.invert(mean)) - test.y[:, start:]) ** 2))


def measure(spec: dict, folder: Path) -> tuple[dict, dict]:
    """Train and score every root, setting and seed; returns `(results, examples)`:
    `results[root][setting]` and the first seed's forecast of test trajectory 0."""
    data = _data(spec)
    results, examples = {}, {}
    for root in ROOTS:
        results[root], examples[root] = _measure_root(spec, root, data, folder)
    irregular = data["irregular_time_aware"][2]
    examples["truth_irregular"] = irregular.y[0]
    examples["t_irregular"] = irregular.extras["t"][0]
    return results, examples


def _measure_root(spec, root, data, folder) -> tuple[dict, dict]:
    from warp_phys import evaluate_run, reconstruct_run, train_run

    results, examples = {}, {}
    for setting in SETTINGS:
        train, val, test = data[setting]
        rows = []
        for seed in spec["seeds"]:
            start = time.perf_counter()
            run, history = train_run(_config(spec, root, seed), folder / f"{root}_{setting}_{seed}",
                                     data=train, val_data=val, progress=False)  # fmt: skip
            seconds = time.perf_counter() - start
            scored = evaluate_run(run, data=test, context=spec["context"])
            rows.append({"seed": seed, "forecast_mse": scored["mse"],
                         "repeat_last_mse": scored["mse_repeat_last"],
                         "one_step_mse": _one_step_mse(run, test),
                         "diverged": scored["diverged"], "steps": history["step"][-1],
                         "train_seconds": round(seconds, 1)})  # fmt: skip
            if seed == spec["seeds"][0]:
                times = test.extras["t"][:1] if "t" in test.extras else None
                out = reconstruct_run(run, test.y[:1], context=spec["context"], times=times)
                examples[setting] = out["prediction"][0]
        forecast = [r["forecast_mse"] for r in rows]
        results[setting] = {
            "forecast_mse": float(np.mean(forecast)), "forecast_std": float(np.std(forecast)),
            "one_step_mse": float(np.mean([r["one_step_mse"] for r in rows])),
            "repeat_last_mse": rows[0]["repeat_last_mse"], "seeds": rows,
        }  # fmt: skip
    return results, examples


ROOT_LABELS = {"tau_x_prev": "[tau, x_prev]", "tau_only": "[tau]"}
SETTING_LABELS = {"regular": "regular grid (`msd`)",
                  "irregular_plain": "irregular, equal steps assumed",
                  "irregular_time_aware": "irregular, time-aware"}  # fmt: skip


def markdown(result: dict) -> str:
    """The README block: one row per root and setting, and the ratios they give."""
    r, spec = result["results"], result["spec"]
    repeat = r["tau_x_prev"]["irregular_plain"]["repeat_last_mse"]
    lines = [
        f"WARP with the time-aware `continuous` transition on MSD and `msd_irregular`, "
        f"{len(result['seeds'])} seeds x {spec['steps']} steps each (cpu-preset root MLP "
        f"8-8), test MSE in raw units (mean +- std over seeds), measured on "
        f"{result['device']} on {result['date'][:10]} in {result['wall_s'] / 60:.0f} min "
        f"(`{result['command']}`). Forecast after L = {spec['context']} observed samples "
        f"(repeat-last on the irregular test set: {repeat:.4g}); one-step: teacher-forced "
        "prediction of every next sample.",
        "",
        "| root reads | training and test data | forecast MSE | one-step MSE |",
        "|---|---|---|---|",
    ]
    for root in ROOTS:
        for setting in SETTINGS:
            row = r[root][setting]
            lines.append(
                f"| {ROOT_LABELS[root]} | {SETTING_LABELS[setting]} | "
                f"{row['forecast_mse']:.4g} +- {row['forecast_std']:.2g} | "
                f"{row['one_step_mse']:.4g} |"
            )
    lines.append("")
    for root in ROOTS:
        plain = r[root]["irregular_plain"]["forecast_mse"]
        aware = r[root]["irregular_time_aware"]["forecast_mse"]
        regular = r[root]["regular"]["forecast_mse"]
        lines.append(
            f"- root {ROOT_LABELS[root]}: on the irregular grid the forecast MSE is "
            f"{plain:.4g} without the time stamps and {aware:.4g} with them "
            f"({plain / aware:.2f}x); the time-aware model's is {aware / regular:.2f}x the "
            "regular grid's."
        )
    lines += ["", "![irregular](figures/irregular.png)"]
    return "\n".join(lines)


def plot(result: dict, examples: dict, path: Path) -> None:
    """One test trajectory (position) of the irregular set, one panel per root: truth at
    its own times and the forecasts with and without the time stamps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from systems import atomic_path

    L = result["spec"]["context"]
    t, truth = examples["t_irregular"], examples["truth_irregular"]
    fig, axes = plt.subplots(1, len(ROOTS), figsize=(11, 3.2), sharey=True, squeeze=False)
    for ax, root in zip(axes[0], ROOTS, strict=True):
        ax.plot(t, truth[:, 0], "k.", ms=3, label="test trajectory (irregular samples)")
        ax.axvline(t[L - 1], color="0.6", ls=":", lw=1)
        for setting, style in (("irregular_time_aware", "C0-"), ("irregular_plain", "C3--")):
            ax.plot(t[L:], examples[root][setting][:, 0], style, lw=1.4,
                    label=SETTING_LABELS[setting].replace("irregular, ", ""))  # fmt: skip
        ax.set_xlabel("time t")
        ax.set_title(f"root reads {ROOT_LABELS[root]}", fontsize=10)
    axes[0, 0].set_ylabel("position x")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"MSD sampled irregularly: forecast after {L} observed samples")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--out", type=Path, default=None, help="result JSON")
    parser.add_argument("--figure", type=Path, default=None, help="figure PNG")
    parser.add_argument("--runs", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args(argv)
    spec = dict(SMOKE if args.smoke else FULL)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results, examples = measure(spec, args.runs or Path(tmp))
    result = {
        "device": _device(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.irregular" + (" --smoke" if args.smoke else ""),
        "smoke": args.smoke, "seeds": list(spec["seeds"]),
        "spec": {k: v for k, v in spec.items() if k != "seeds"}, "results": results,
        "wall_s": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    out = args.out or (Path(tempfile.gettempdir()) / "irregular.json" if args.smoke
                       else DEFAULT_OUT)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    from systems import atomic_path

    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    plot(result, examples, args.figure or (out.with_suffix(".png") if args.smoke
                                           else DEFAULT_FIGURE))  # fmt: skip
    text = markdown(result)
    print(text)
    if not args.smoke:
        splice_readme("irregular", text)
    return result


if __name__ == "__main__":
    main()
