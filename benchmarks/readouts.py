"""Which readout identifies the physics? WARP-Phys on MSD with each readout of theta_t:
every cell trains the `warp-phys train` default WARP-Phys (`damped_oscillator`, root 8x2)
with hypernetwork 16 for the same steps with one `readout=`, scored on the VALIDATION
split only (this benchmark chooses a default): the forecast MSE from a 100-step context,
omega_0 and zeta read at its end against the truth, their spread over the forecast.
Cells run in worker processes, kept under `runs/bench_readouts/` (a rerun skips them).

    python -m benchmarks.readouts            # ~3 min per cell on 2 cores
    python -m benchmarks.readouts --render   # the table, from the committed JSON
    python -m benchmarks.readouts --cells NAME ... --out part.json --no-readme  # some cells
"""

from pathlib import Path

import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks.ood_breakdown import omega0_range, true_omega0
from warp_phys._identify import parameter_summary

HELD = dict(drive_features=64, time_reduction="log_mean", free_run="hold", forcing_prob=0.0)
HELD["train_context"] = 100
CELLS = {  # name: decoder options on top of the preset's
    "weights": {"readout": "weights"},
    "weights, no x_prev": {"readout": "weights", "input_prev": False},
    "latent 32": {"readout": "latent", "latent_size": 32},
    "latent 64, width 16": {"readout": "latent", "latent_size": 64, "width": 16},
    "latent_unit 32": {"readout": "latent_unit", "latent_size": 32},
    "direct": {"readout": "direct"},
    # memory in A (README: A needs modes that forget), learned from A = I
    "weights, diagonal A": {"readout": "weights", "transition": "diagonal"},
    "weights, diagonal A, A lr 1e-4": {"transition": "diagonal", "transition_lr": 1e-4},
    "weights, dense A lr 3e-4": {"readout": "weights", "transition_lr": 3e-4},
    "weights, feature drive 16": {"readout": "weights", "drive_features": 16},  # warp_phys._drive
    "latent 32, feature drive 16": {"readout": "latent", "latent_size": 32, "drive_features": 16},
    "weights, seed 1": {"readout": "weights", "seed": 1},  # seed-to-seed spread of the two
    "weights, feature drive 16, seed 1": {"readout": "weights", "drive_features": 16, "seed": 1},
    "weights, feature drive 64": {"readout": "weights", "drive_features": 64},
    "weights, feature drive 64, seed 1": {"readout": "weights", "drive_features": 64, "seed": 1},
    "weights, feature drive 128": {"readout": "weights", "drive_features": 128},
    "weights, feature drive 64, seed 2": {"readout": "weights", "drive_features": 64, "seed": 2},
    "weights, feature drive 64, scale-free": {"drive_features": 64, "drive_scale_free": True},
    "weights, feature drive 64, scale-free, seed 1": {
        "drive_features": 64,
        "drive_scale_free": True,
        "seed": 1,
    },
    "weights, feature drive 64, log_mean": {"drive_features": 64, "time_reduction": "log_mean"},
    "weights, feature drive 64, log_mean, seed 1": {
        "drive_features": 64,
        "time_reduction": "log_mean",
        "seed": 1,
    },
    # theta held after the context (warp_phys/_held_rollout.py), trained on the forecast
    "weights, drive 64, log_mean, hold": HELD,
    "weights, drive 64, log_mean, hold, seed 1": {**HELD, "seed": 1},
    "weights, drive 64, log_mean, hold, forcing 0.25 from step 1": {
        **HELD, "forcing_prob": 0.25, "train_context": 1
    },
    # extrapolation in omega_0 (the OOD-val trajectories above the training range)
    "hold, again": HELD,  # the same cell measured again, with the columns for omega_0 above
    "hold, again, seed 1": {**HELD, "seed": 1},
    "hold, log omega0": {**HELD, "log_omega0": True},  # seed 1: NaN at step 33 (exp overflow)
    "hold, no x_prev": {**HELD, "input_prev": False},
    "hold, no x_prev, seed 1": {**HELD, "input_prev": False, "seed": 1},
    "hold, again, seed 2": {**HELD, "seed": 2},
    "hold, again, seed 3": {**HELD, "seed": 3},
    "hold, no x_prev, seed 2": {**HELD, "input_prev": False, "seed": 2},
    "hold, no x_prev, seed 3": {**HELD, "input_prev": False, "seed": 3},
    "hold, scale-free": {**HELD, "drive_scale_free": True},
}
RUN_OPTIONS = ("transition", "transition_lr", "drive_features", "drive_scale_free", "seed")
RUN_OPTIONS += ("time_reduction", "free_run", "forcing_prob", "train_context")
CONTEXT = 100
PERCENT = (("omega0_median_rel_err", 1), ("zeta_median_rel_err", 0), ("omega0_forecast_rel_std", 1))
# on RunConfig's defaults (Adam 3e-3, cosine, batch 32, root depth 2, context 100, ...), but
# the difference drive and the plain mean loss: the table chose the feature drive and the
# log_mean loss (rows with drive_features, time_reduction)
SETTINGS = dict(system="msd", n_test=16, eval_protocol="forecast", model="warp")
SETTINGS.update(decoder="damped_oscillator", hyper_width=16, val_every=250, drive_features=0)
SETTINGS.update(time_reduction="mean", free_run="advance", forcing_prob=0.25, train_context=1)
OOD_SEED = 1000  # an out-of-distribution validation set: the OOD ranges, another data seed


def identification(run, count: int) -> dict:
    """Forecast MSE (raw) and identified parameters (`parameter_table`: read at the end
    of the context, spread over the forecast) on the first `count` validation trajectories."""
    table = wp.parameter_table(run, split="val", n=count, context=CONTEXT)["parameters"]
    out = {}
    for name in ("omega0", "zeta"):
        value, spread, true = (np.asarray(table[name][k]) for k in ("value", "std", "true"))
        out[f"{name}_median_rel_err"] = wp.median_relative_error(table[name])
        out[f"{name}_forecast_rel_std"] = float(np.median(spread / true))
        out[f"{name}_corr"] = float(np.corrcoef(value, true)[0, 1])
    ds, _ = wp.run_dataset(run, "val", count)
    xs = run.normalizer.apply(ds.y)
    ood = systems.generate("msd", count, split="ood", seed=OOD_SEED)
    for name, y in (("val", ds.y), ("ood_val", ood.y)):
        xs = run.normalizer.apply(y)
        pred = wp.reconstruct(run.model, xs[:, :CONTEXT], xs.shape[1] - CONTEXT)
        errors = np.mean((np.asarray(run.normalizer.invert(pred)) - y[:, CONTEXT:]) ** 2, (1, 2))
        out[f"{name}_forecast_mse"] = float(np.mean(errors))
        out[f"{name}_forecast_median_mse"] = float(np.median(errors))
    return out | above_range(run, ood, errors)


def above_range(run, ood, errors) -> dict:
    """On the OOD-val trajectories whose omega_0 lies above the training range: their
    share of the OOD-val MSE and the median relative error of the omega_0 read."""
    true = true_omega0(ood.params)
    above = true > omega0_range(systems.get_system("msd").param_ranges)[1]
    if not above.any():
        return dict(ood_val_above_n=0)
    xs = run.normalizer.apply(ood.y[above])
    read = parameter_summary(run.model, xs, CONTEXT)["omega0"]["value"]
    return dict(
        ood_val_above_n=int(above.sum()),
        ood_val_above_share=float(errors[above].sum() / errors.sum()),
        ood_val_above_omega0_median_rel_err=float(np.median(np.abs(read / true[above] - 1))),
    )


def cell(spec: dict) -> dict:
    """Worker: train one cell (the oscillator starts at the physics of the centre of
    MSD's ranges, as every run does) and score it."""
    # the rows before 2026-12-02 measured the readout reading x_prev, then the default
    options = {"activation": "swish", "input_prev": True, **spec["options"]}
    sizes = dict(n_train=spec["n_train"], n_val=spec["n_val"], steps=spec["steps"])
    sizes["root_width"] = options.pop("width", 8)
    sizes.update({k: options.pop(k) for k in RUN_OPTIONS if k in options})
    config = wp.RunConfig(**{**SETTINGS, **sizes}, decoder_options=options)  # a row sets the drive
    run, history = wp.train_run(config, Path(spec["folder"]), overwrite=True, progress=False)
    out = dict(steps=spec["steps"], seconds=float(history["seconds"][-1]))
    return dict(out, theta_size=int(run.model.theta_size), **identification(run, spec["n_val"]))


def measure(args) -> dict:
    cells, folder = {}, Path("runs/bench_readouts") / ("smoke" if args.smoke else f"{args.steps}")
    for name, options in CELLS.items():
        if args.cells and name not in args.cells:
            continue
        done = folder / (name.replace(" ", "_").replace(",", "") + ".json")
        if done.exists() and not args.smoke:
            cells[name] = harness.read_json(done)
            continue
        spec = dict(options=options, steps=args.steps, n_train=args.n_train, n_val=args.n_val)
        spec.update(dict(steps=4, n_train=64, n_val=4) if args.smoke else {})
        spec["folder"] = str(done.with_suffix(""))
        result = harness.checked(harness.run_worker("readouts", "cell", spec), name)
        cells[name] = dict(result, options=options)
        if not args.smoke:
            harness.write_json(done, cells[name])
        print(name, cells[name], flush=True)
    out = dict(smoke=args.smoke, steps=args.steps, n_train=args.n_train, n_val=args.n_val)
    return dict(out, cells=cells, device=harness.device(), date=harness.stamp())


def markdown(r: dict) -> str:
    def ood(c: dict) -> str:  # cells measured before the OOD column have none
        if "ood_val_forecast_mse" not in c:
            return "-"
        mean, median = c["ood_val_forecast_mse"], c["ood_val_forecast_median_mse"]
        return f"{harness.fmt(mean)} ({harness.fmt(median)})"

    def above(c: dict) -> str:  # cells measured before the column have none
        if not c.get("ood_val_above_n"):
            return "-"
        err, share = c["ood_val_above_omega0_median_rel_err"], c["ood_val_above_share"]
        return f"{100 * err:.1f} ({100 * share:.0f} %)"

    rows = [
        (name, c["theta_size"], f"{c['seconds']:.0f}", harness.fmt(c["val_forecast_mse"]), ood(c))
        + (above(c),)
        + tuple(f"{100 * c[k]:.{n}f}" for k, n in PERCENT)
        + (f"{c['omega0_corr']:.2f}",)
        for name, c in r["cells"].items()
    ]
    head = (
        "readout | D_theta | s | val forecast MSE (raw) | OOD-val MSE (median) | "
        "above range: omega0 err % (MSE share) | omega0 err % | "
        "zeta err % | omega0 spread over forecast % | corr(omega0, truth)"
    )
    return (
        f"WARP-Phys on MSD, {r['steps']} steps each (batch 32, {r['n_train']} training "
        f"trajectories), scored on {r['n_val']} VALIDATION trajectories; errors are medians "
        f"at the end of a {CONTEXT}-step context; s: training seconds on a shared machine "
        f"(load 4-6); {r['device']}, {r['date']}\n\n" + harness.table(head, rows)
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs the comparison (or `--render`s), prints the table, writes the JSON."""
    parser = harness.parser("readouts", __doc__)
    parser.add_argument("--steps", type=int, default=3000, help="training steps per cell")
    parser.add_argument("--n-train", type=int, default=20480)
    parser.add_argument("--n-val", type=int, default=256)
    what = "measure only these cells (with --out and --no-readme: parts run side by side; "
    parser.add_argument("--cells", nargs="+", help=what + "a full run then reads them back)")
    args = harness.parse(parser, argv)
    unknown = sorted(set(args.cells or ()) - set(CELLS))
    if unknown:
        parser.error(f"unknown cells {unknown}; the cells are {list(CELLS)}")
    return harness.report(args, lambda: measure(args), markdown, workers={"cell": cell})


if __name__ == "__main__":
    main()
