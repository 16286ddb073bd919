"""The oscillator's readout with and without x_prev after 15 minutes of the CLI defaults,
scored on VALIDATION data only: 512 validation trajectories and 512 OOD-val ones (the OOD
ranges drawn with data seed 1000, as in `benchmarks.readouts`), read-out forecast MSE in
raw units from the run's context. Train the pairs first, each pair side by side on its
own core (Linux `taskset`), then score the folders. `default` is the readout that was
the default when this ran (reading x_prev); since 2026-12-02 the CLI's default is the
other one, so both are given explicitly:

    for s in msd msd_zero; do
      taskset -c 0 warp-phys train --system $s --decoder damped_oscillator \\
          --max-seconds 900 --decoder-options '{"input_prev": true}' \\
          --out runs/readout_minutes/${s}_default --quiet &
      taskset -c 1 warp-phys train --system $s --decoder damped_oscillator \\
          --max-seconds 900 --decoder-options '{"input_prev": false}' \\
          --out runs/readout_minutes/${s}_no_x_prev --quiet; wait
    done
    python -m benchmarks.readout_minutes     # table + results/readout_minutes.json
"""

import argparse
from pathlib import Path

import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks.readouts import OOD_SEED
from warp_phys.training.metrics_log import read_metrics

RUNS = Path("runs/readout_minutes")
VARIANTS = ("default", "no_x_prev")
COUNT = 512


def score(folder: Path) -> dict:
    """Read-out forecast MSE (mean, median; raw) on validation and OOD-val, and steps."""
    run = wp.load_run(folder, "best")
    val, _ = wp.run_dataset(run, "val", COUNT)
    ood = systems.generate(run.config.system, COUNT, split="ood", seed=OOD_SEED)
    out = {"steps": max(r.get("step", 0) for r in read_metrics(folder / "metrics.jsonl"))}
    for name, y in (("val", val.y), ("ood_val", ood.y)):
        result = wp.reconstruct_run(run, y, context=run.config.context)
        errors = ((result["prediction"] - result["target"]) ** 2).mean(axis=(1, 2))
        out[name], out[f"{name}_median"] = float(errors.mean()), float(np.median(errors))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser("python -m benchmarks.readout_minutes", description=__doc__)
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--out", type=Path, default=harness.RESULTS / "readout_minutes.json")
    args = parser.parse_args(argv)
    results = {}
    for folder in sorted(p for p in args.runs.iterdir() if p.is_dir()):
        variant = next((v for v in VARIANTS if folder.name.endswith(f"_{v}")), None)
        if variant is None:
            continue
        system = folder.name.removesuffix(f"_{variant}")
        results.setdefault(system, {})[variant] = row = score(folder)
        print(f"{system:>9} {variant:>10}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()))
    report = dict(results=results, device=harness.device(), date=harness.stamp())
    harness.write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
