"""Irregular time grids (issue 9, section 2): WARP on irregularly sampled MSD.

The reconstruction table's cpu-preset WARP-MLP (root 8-8, swish, hypernetwork 16) with
the time-aware `continuous` transition and two roots, `tau_x_prev` ([tau, x_prev], the
paper's) and `tau_only` ([tau]: theta must carry the trajectory as a function of time),
each trained for the same steps and seeds on `regular` MSD (256 steps), on
`irregular_plain` (`msd_irregular`: t = 0 and 255 random later points of a grid 4x
finer, its time stamps withheld, so equal steps are assumed) and on
`irregular_time_aware` (the same data with its times: tau from them, exp(h Lambda) per
step, the drive scaled by phi(h Lambda)). Scores on each setting's own test split: the
forecast MSE after L = 100 observed steps and the one-step teacher-forced MSE (raw
units). The JSON keeps the first seed's forecasts of test trajectory 0 for the figure.
About 25 minutes on 2 CPU cores.

    python -m benchmarks.irregular             # results/irregular.json, figure, README
    python -m benchmarks.irregular --render    # README block (and figure) from the JSON
"""

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import _harness as harness

SETTINGS = ("regular", "irregular_plain", "irregular_time_aware")
PLOTTED = ("irregular_time_aware", "irregular_plain")  # the forecasts in the figure
ROOTS = {"tau_x_prev": {"input_prev": True}, "tau_only": {"input_prev": False}}
FULL = {"n_train": 1024, "n_val": 64, "n_test": 512, "n_steps": 256, "context": 100,
        "steps": 2000, "seeds": (0, 1, 2), "val_every": 50}  # fmt: skip
SMOKE = {"n_train": 16, "n_val": 8, "n_test": 8, "n_steps": 24, "context": 8, "steps": 4,
         "seeds": (0,), "val_every": 2}  # fmt: skip
ROOT_LABELS = {"tau_x_prev": "[tau, x_prev]", "tau_only": "[tau]"}
SETTING_LABELS = {
    "regular": "regular grid (`msd`)",
    "irregular_plain": "irregular, equal steps assumed",
    "irregular_time_aware": "irregular, time-aware",
}


def _config(spec: dict, root: str, seed: int):
    from warp_phys import RunConfig

    root = dict(decoder_options={"activation": "swish", **ROOTS[root]}, root_width=8, root_depth=2)
    model = dict(root, transition="continuous", decoder="mlp", hyper_width=16, hyper_depth=1)
    optimiser = dict(lr=3e-3, optimizer="adam", clip="global_norm", clip_value=1.0)
    protocol = dict(context=spec["context"], forcing_prob=0.25, eval_protocol="forecast")
    budget = dict(steps=spec["steps"], batch_size=min(32, spec["n_train"]), seed=seed)
    options = dict(schedule="cosine", val_every=spec["val_every"])
    return RunConfig(**model, **optimiser, **protocol, **budget, **options)


def _data(spec: dict) -> dict:
    """`{setting: (train, val, test)}` Datasets; the plain setting's have no times."""
    import systems

    def splits(name):
        options = dict(seed=0, n_steps=spec["n_steps"], progress=False)
        return tuple(
            systems.generate(name, spec[f"n_{s}"], split=s, **options)
            for s in ("train", "val", "test")
        )

    irregular = splits("msd_irregular")
    plain = tuple(dataclasses.replace(d, extras={}) for d in irregular)
    return {"regular": splits("msd"), "irregular_plain": plain, "irregular_time_aware": irregular}


def _score(run, test, context: int) -> dict:
    """The forecast after `context` steps and the teacher-forced one-step MSE (the
    run's `full` protocol), raw units."""
    import warp_phys as wp

    forecast = wp.evaluate_run(run, data=test, context=context)
    full = dataclasses.replace(run, config=run.config.replace(eval_protocol="full"))
    one_step = wp.evaluate_run(full, data=test)["mse"]
    scores = dict(forecast_mse=forecast["mse"], repeat_last_mse=forecast["mse_repeat_last"])
    return dict(scores, one_step_mse=one_step, diverged=forecast["diverged"])


def measure(spec: dict, folder: Path) -> tuple[dict, dict]:
    """Train and score every root, setting and seed; returns `(results, example)`:
    `results[root][setting]`, and test trajectory 0 of the irregular set (position,
    with its times) with the first seed's forecasts of it."""
    import warp_phys as wp

    data, results = _data(spec), {root: {} for root in ROOTS}
    test = data["irregular_time_aware"][2]
    example = {"t": test.extras["t"][0].tolist(), "truth": test.y[0, :, 0].tolist()}
    for root in ROOTS:
        for setting in SETTINGS:
            (train, val, test), rows = data[setting], []
            for seed in spec["seeds"]:
                start, config = time.perf_counter(), _config(spec, root, seed)
                where, data_ = folder / f"{root}_{setting}_{seed}", dict(data=train, val_data=val)
                run, history = wp.train_run(config, where, **data_, progress=False)
                seconds = round(time.perf_counter() - start, 1)
                row = {"seed": seed, **_score(run, test, spec["context"])}
                rows.append(dict(row, steps=history["step"][-1], train_seconds=seconds))
                if seed == spec["seeds"][0] and setting in PLOTTED:
                    times = test.extras["t"][:1] if "t" in test.extras else None
                    out = wp.reconstruct_run(run, test.y[:1], context=spec["context"], times=times)
                    example.setdefault(root, {})[setting] = out["prediction"][0, :, 0].tolist()
            forecast = [r["forecast_mse"] for r in rows]
            cell = dict(forecast_mse=float(np.mean(forecast)), forecast_std=float(np.std(forecast)))
            cell["one_step_mse"] = float(np.mean([r["one_step_mse"] for r in rows]))
            cell.update(repeat_last_mse=rows[0]["repeat_last_mse"], seeds=rows)
            results[root][setting] = cell
    return results, example


def markdown(result: dict) -> str:
    """The README block: one row per root and setting, and the ratios they give."""
    r, spec = result["results"], result["spec"]
    repeat = r["tau_x_prev"]["irregular_plain"]["repeat_last_mse"]
    rows, ratios = [], []
    for root in ROOTS:
        for setting, x in ((s, r[root][s]) for s in SETTINGS):
            scores = f"{x['forecast_mse']:.4g} +- {x['forecast_std']:.2g} | {x['one_step_mse']:.4g}"
            rows.append(f"{ROOT_LABELS[root]} | {SETTING_LABELS[setting]} | {scores}")
        regular, plain, aware = (r[root][s]["forecast_mse"] for s in SETTINGS)
        ratios.append(
            f"- root {ROOT_LABELS[root]}: on the irregular grid the forecast MSE is {plain:.4g} "
            f"without the time stamps and {aware:.4g} with them ({plain / aware:.2f}x); the "
            f"time-aware model's is {aware / regular:.2f}x the regular grid's."
        )
    parts = [
        f"WARP with the time-aware `continuous` transition on MSD and `msd_irregular`, "
        f"{len(result['seeds'])} seeds x {spec['steps']} steps each (cpu-preset root MLP "
        f"8-8), test MSE in raw units (mean +- std over seeds), measured on "
        f"{result['device']} on {result['date'][:10]} in {result['wall_s'] / 60:.0f} min "
        f"(`{result['command']}`). Forecast after L = {spec['context']} observed samples "
        f"(repeat-last on the irregular test set: {repeat:.4g}); one-step: teacher-forced "
        "prediction of every next sample.",
        harness.table("root reads | training and test data | forecast MSE | one-step MSE", rows),
        "\n".join(ratios),
        "![irregular](figures/irregular.png)",
    ]
    return "\n\n".join(parts)


def plot(result: dict, path: Path) -> None:
    """One test trajectory (position) of the irregular set, one panel per root: truth at
    its own times and the forecasts with and without the time stamps. Results from
    before the JSON kept this example have nothing to draw (a note is printed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    example, L = result.get("example"), result["spec"]["context"]
    if example is None:
        print(f"no example forecasts in this JSON: {path} not drawn (rerun the benchmark)")
        return
    t = np.asarray(example["t"])
    fig, axes = plt.subplots(1, len(ROOTS), figsize=(11, 3.2), sharey=True, squeeze=False)
    for ax, root in zip(axes[0], ROOTS, strict=True):
        ax.plot(t, example["truth"], "k.", ms=3, label="test trajectory (irregular samples)")
        ax.axvline(t[L - 1], color="0.6", ls=":", lw=1)
        for setting, style in zip(PLOTTED, ("C0-", "C3--"), strict=True):
            label = SETTING_LABELS[setting].replace("irregular, ", "")
            ax.plot(t[L:], example[root][setting], style, lw=1.4, label=label)
        ax.set_xlabel("time t")
        ax.set_title(f"root reads {ROOT_LABELS[root]}", fontsize=10)
    axes[0, 0].set_ylabel("position x")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"MSD sampled irregularly: forecast after {L} observed samples")
    fig.tight_layout()
    harness.save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("irregular", __doc__, figure=True)
    parser.add_argument("--runs", type=Path, default=None, help="keep the run folders here")
    args = harness.parse(parser, argv)
    draw = lambda result: plot(result, args.figure)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown, draw)
    spec, start = dict(SMOKE if args.smoke else FULL), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results, example = measure(spec, args.runs or Path(tmp))
    command = "python -m benchmarks.irregular" + (" --smoke" if args.smoke else "")
    result = dict(device=harness.device(), date=harness.stamp(), command=command, smoke=args.smoke)
    result.update(seeds=list(spec["seeds"]), spec={k: v for k, v in spec.items() if k != "seeds"})
    result.update(results=results, wall_s=round(time.perf_counter() - start, 1), example=example)
    return harness.finish(args, result, markdown, draw)


if __name__ == "__main__":
    main()
