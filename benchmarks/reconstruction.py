"""The paper's reconstruction table (Table 3): GRU, LSTM, Transformer, WARP and WARP-Phys
on MSD, MSD-Zero, LV (repeat-copy, no WARP-Phys) and SINE (10 trajectories), 3 seeds,
each cell through `train_run` / `evaluate_run`; test (and OOD) MSE in the paper's units
beside the paper's. Presets in `_presets.py`: `cpu` (~77 min of runs, one at a time) and `paper`
(for an accelerator). Each finished (system, model, seed) is kept in
`results/reconstruction_runs.json` and skipped when the command is run again;
`--rescore` evaluates the kept run folders of the asked-for cells again without training
(after a change to evaluation alone, e.g. the refinement).

    python -m benchmarks.reconstruction --preset cpu      # writes results/reconstruction.json
    python -m benchmarks.reconstruction --render          # README block from the JSON
"""

import time
from pathlib import Path

import numpy as np

import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks import _presets as presets
from benchmarks._presets import run_config, targets
from benchmarks._reconstruction_report import markdown, summarise
from warp_phys.training.config import stored_config
from warp_phys.training.options import LEGACY_VALUES

__all__ = ["main", "markdown", "run_cell", "run_config", "summarise", "targets"]
RUNS = harness.ROOT / "runs" / "bench" / "reconstruction"  # run folders: PRESET/SYSTEM/MODEL/seedN


def run_cell(system: str, model: str, seed: int, preset: str, out: Path, **overrides) -> dict:
    """Train (a run folder at `out`, replaced) and evaluate one table cell and seed, with
    `RunConfig` `overrides`: size, training time and steps, and the test (and OOD) MSE in
    table units (NaN where a forecast diverged), for a physical prior also refined on each
    context (`{split}_refined`)."""
    config = run_config(preset, system, model, seed).replace(**overrides)
    run, _ = wp.train_run(config, out, overwrite=True, progress=False)
    summary = harness.read_json(out / "summary.json")
    record = dict(params=int(summary["parameters"]), steps=summary["steps_done"])
    record["config"] = config.to_dict()
    keys = ("train_seconds", "stopped", "best_val_mse_normalized")
    return record | {k: summary[k] for k in keys} | evaluate_cell(run, system)


def evaluate_cell(run, system: str) -> dict:
    """The test (and OOD) MSE of a trained cell's `run` in table units."""
    record, unit = {}, presets.UNITS[system]
    for split in ("test",) if system == "sine" else ("test", "ood"):  # SINE: no OOD ranges
        # a physical prior: also refined on each context, as `warp-phys evaluate` does
        metrics = wp.evaluate_run(run, split=split, n=run.config.n_test, refine="auto")
        record[split] = metrics.get("mse_readout", metrics["mse"]) / unit
        if "refine" in metrics:
            record[f"{split}_refined"] = metrics["mse"] / unit
    return record


def _measured_with(record: dict | None, config) -> bool:
    """Whether `record` (None: not run) was measured with `config`; a record older than
    the records' `config` key is taken for today's config at the options it predates."""
    now = stored_config(config)
    return record is not None and stored_config(record.get("config", now | LEGACY_VALUES)) == now


def _markdown(summary: dict) -> str:
    preset = summary["preset"]
    command = f".venv/bin/python -m benchmarks.reconstruction --preset {preset}"
    return markdown(summary, "make bench-table" if preset == "cpu" else command)


def measure(args) -> dict:
    """Every asked-for run not in the per-run file yet, then the summary of them all."""
    seeds = args.seeds[:1] if args.smoke else args.seeds
    partial = args.out.with_name(args.out.stem + "_runs.json")
    records = harness.read_json(partial) if partial.is_file() else {}
    smoke = dict(max_seconds=2.0, val_every=5, n_val=8, n_test=8) if args.smoke else {}
    for system in args.systems:
        models = [m for m in args.models if m in presets.models_for(system)]
        for model, seed in [(m, s) for s in seeds for m in models]:
            overrides = dict(smoke, n_train=32) if smoke and system != "sine" else smoke
            config = run_config(args.preset, system, model, seed).replace(**overrides)
            folder = args.runs / args.preset / system / model / f"seed{seed}"
            if _measured_with(records.get(key := f"{system}/{model}/{seed}"), config):
                if args.rescore:  # the kept model, evaluated again
                    run = wp.load_run(folder, "best")
                    records[key] = records[key] | evaluate_cell(run, system)
                    harness.write_json(partial, records, strict=False)
                continue
            start = time.perf_counter()
            r = records[key] = run_cell(system, model, seed, args.preset, folder, **overrides)
            r["wall_seconds"] = time.perf_counter() - start  # data, training, evaluation
            harness.write_json(partial, records, strict=False)  # a diverged MSE stays NaN
            ood, took = r.get("ood", np.nan), r["wall_seconds"]
            print(f"{key}: test {r['test']:.4g} ood {ood:.4g} ({took:.0f} s)", flush=True)
    return summarise(records, args.preset, seeds, smoke=args.smoke)


def main(argv: list[str] | None = None) -> dict:
    """Runs the (remaining) table, writes the JSON, splices the README; returns the JSON."""
    parser = harness.parser("reconstruction", __doc__)
    parser.add_argument("--preset", choices=presets.PRESETS, default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--systems", nargs="+", choices=presets.SYSTEMS, default=presets.SYSTEMS)
    parser.add_argument("--models", nargs="+", choices=presets.MODELS, default=presets.MODELS)
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder of the run folders")
    what = "evaluate the finished cells' run folders again (no training)"
    parser.add_argument("--rescore", action="store_true", help=what)
    args = harness.parse(parser, argv)
    if args.preset != "cpu" and args.out == harness.RESULTS / "reconstruction.json":
        args.out = args.out.with_name(f"reconstruction_{args.preset}.json")
    return harness.report(args, lambda: measure(args), _markdown)


if __name__ == "__main__":
    main()
