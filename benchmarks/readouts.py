"""Which readout identifies the physics? WARP-Phys on MSD with each readout of theta_t.

Every cell trains the `cpu`-preset WARP-Phys (`damped_oscillator`, root 8x2, 20,480
training trajectories, Adam 3e-3, cosine) for the same number of steps with one
`readout=` (see `warp_phys.decoders.list_readouts`), and is scored on the VALIDATION
split only (this benchmark chooses a default): the forecast MSE from a 100-step context
and the identified omega_0 and zeta at the end of the context against the truth, with
their spread over the forecast. Cells run in worker processes, one after the other, and
are kept under `runs/bench_readouts/` so a rerun skips the finished ones.

    python -m benchmarks.readouts            # ~3 min per cell on 2 cores
    python -m benchmarks.readouts --render   # the table, from the committed JSON
"""

from pathlib import Path

import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness

CELLS = {  # name: decoder options on top of the preset's
    "weights": {"readout": "weights"},
    "weights, no x_prev": {"readout": "weights", "input_prev": False},
    "latent 32": {"readout": "latent", "latent_size": 32},
    "latent 64, width 16": {"readout": "latent", "latent_size": 64, "width": 16},
    "latent_unit 32": {"readout": "latent_unit", "latent_size": 32},
    "direct": {"readout": "direct"},
}
CONTEXT = 100


def config(options: dict, steps: int, n_train: int, n_val: int) -> wp.RunConfig:
    """One cell's run; the oscillator starts at the physics of the centre of MSD's ranges,
    as every run does (`build_model`)."""
    width = options.get("width", 8)
    options = {"activation": "swish", **{k: v for k, v in options.items() if k != "width"}}
    return wp.RunConfig(
        system="msd",
        n_train=n_train,
        n_val=n_val,
        n_test=16,
        context=CONTEXT,
        forcing_prob=0.25,
        eval_protocol="forecast",
        normalize=True,
        model="warp",
        decoder="damped_oscillator",
        root_width=width,
        root_depth=2,
        hyper_width=16,
        decoder_options=options,
        optimizer="adam",
        lr=3e-3,
        clip="global_norm",
        clip_value=1.0,
        schedule="cosine",
        steps=steps,
        batch_size=32,
        val_every=250,
        seed=0,
    )


def identification(run, count: int) -> dict:
    """Forecast MSE (raw) and identified parameters on the first `count` validation
    trajectories."""
    ds, _ = wp.run_dataset(run, "val", count)
    mean, std = (np.asarray(v) for v in (run.normalizer.mean, run.normalizer.std))
    xs = (np.asarray(ds.y) - mean) / std
    truth = [
        systems.get_system("msd").physical_parameters(
            {n: float(ds.params[n][i]) for n in ds.params}
        )
        for i in range(len(ds))
    ]
    out = {}
    values = [wp.parameter_trajectory(run.model, x, context=CONTEXT) for x in xs]
    for name in ("omega0", "zeta"):
        series = np.stack([np.asarray(v[name]) for v in values])  # (N, T)
        true = np.array([t[name] for t in truth])[:, None]
        out[f"{name}_median_rel_err"] = float(
            np.median(np.abs(series[:, CONTEXT - 1] - true[:, 0]) / true[:, 0])
        )
        out[f"{name}_forecast_rel_std"] = float(
            np.median(series[:, CONTEXT:].std(axis=1) / true[:, 0])
        )
        out[f"{name}_corr"] = float(np.corrcoef(series[:, CONTEXT - 1], true[:, 0])[0, 1])
    pred = (
        np.asarray(wp.reconstruct(run.model, xs[:, :CONTEXT], xs.shape[1] - CONTEXT)) * std + mean
    )
    out["val_forecast_mse"] = float(np.mean((pred - np.asarray(ds.y)[:, CONTEXT:]) ** 2))
    return out


def cell(spec: dict) -> dict:
    folder = Path(spec["folder"])
    cfg = config(spec["options"], spec["steps"], spec["n_train"], spec["n_val"])
    run, history = wp.train_run(cfg, folder, overwrite=True, progress=False)
    out = dict(steps=spec["steps"], seconds=float(history["seconds"][-1]))
    out["theta_size"] = int(run.model.theta_size)
    return dict(out, **identification(run, spec["n_val"]))


WORKERS = {"cell": cell}


def measure(args) -> dict:
    cells = {}
    for name, options in CELLS.items():
        folder = Path("runs/bench_readouts") / ("smoke" if args.smoke else f"{args.steps}")
        done = folder / (name.replace(" ", "_").replace(",", "") + ".json")
        if done.exists() and not args.smoke:
            cells[name] = harness.read_json(done)
            continue
        spec = dict(
            options=options,
            steps=args.steps,
            n_train=args.n_train,
            n_val=args.n_val,
            folder=str(done.with_suffix("")),
        )
        if args.smoke:
            spec.update(steps=4, n_train=64, n_val=4)
        result = harness.checked(harness.run_worker("readouts", "cell", spec), name)
        cells[name] = dict(result, options=options)
        if not args.smoke:
            harness.write_json(done, cells[name])
        print(name, cells[name], flush=True)
    out = dict(smoke=args.smoke, steps=args.steps, n_train=args.n_train, n_val=args.n_val)
    return dict(out, cells=cells, device=harness.device(), date=harness.stamp())


def markdown(r: dict) -> str:
    rows = []
    for name, c in r["cells"].items():
        rows.append(
            (
                name,
                c["theta_size"],
                f"{c['seconds']:.0f}",
                harness.fmt(c["val_forecast_mse"]),
                f"{100 * c['omega0_median_rel_err']:.1f}",
                f"{100 * c['zeta_median_rel_err']:.0f}",
                f"{100 * c['omega0_forecast_rel_std']:.1f}",
                f"{c['omega0_corr']:.2f}",
            )
        )
    head = (
        "readout | D_theta | s | val forecast MSE (raw) | omega0 err % | zeta err % | "
        "omega0 spread over forecast % | corr(omega0, truth)"
    )
    return (
        f"WARP-Phys on MSD, {r['steps']} steps each (batch 32, {r['n_train']} training "
        f"trajectories), scored on {r['n_val']} VALIDATION trajectories; errors are medians "
        f"at the end of a {CONTEXT}-step context; s: training seconds on a shared machine "
            f"(load 4-6); {r['device']}, {r['date']}\n\n"
        + harness.table(head, rows)
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs the comparison (or `--render`s), prints the table, writes the JSON."""
    parser = harness.parser("readouts", __doc__)
    parser.add_argument("--steps", type=int, default=3000, help="training steps per cell")
    parser.add_argument("--n-train", type=int, default=20480)
    parser.add_argument("--n-val", type=int, default=256)
    args = harness.parse(parser, argv)
    if args.worker:
        return harness.serve(WORKERS, args.worker)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown)
    return harness.finish(args, measure(args), markdown)


if __name__ == "__main__":
    main()
