"""The paper's reconstruction table (Table 3): GRU, LSTM, Transformer, WARP and WARP-Phys
on MSD, MSD-Zero, LV (repeat-copy, no WARP-Phys) and SINE (10 trajectories), 3 seeds.

Every model is trained and evaluated through the package's own `train_run` /
`evaluate_run` (one protocol for all, model selection on the validation split); the
test MSE (and the OOD split's, where the system has one) is reported in the paper's
units (x1e-2, SINE x1e-4) beside the paper's numbers. Presets and their sizes are in
`benchmarks/_presets.py`: `cpu` (a fixed number of optimiser steps per system, each run
capped at 5 minutes of training on 2 CPU cores; the whole table took 63 minutes on 2
idle cores) and `paper` (the spec's sizes, for an accelerator).

    python -m benchmarks.reconstruction --preset cpu      # writes results/reconstruction.json
    python -m benchmarks.reconstruction --smoke           # seconds; for the test suite

The run is incremental: each finished (system, model, seed) is written atomically to
`results/reconstruction_runs_PRESET.json` and skipped when the command is run again.

WARP's structured transitions (issue 9: diagonal, lowrank r = 8, block) on MSD and LV,
each the table's `warp` cell with only the transition changed, are run apart and merged
into the committed JSON under its `transitions` key, leaving the rest as it is:

    python -m benchmarks.reconstruction --transitions     # 18 runs of the cpu preset
"""

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks._presets import (
    MODELS,
    PAPER,
    PRESETS,
    SYSTEMS,
    TRANSITION_KINDS,
    TRANSITION_SYSTEMS,
    UNITS,
    models_for,
    run_config,
    transition_config,
)
from benchmarks._readme import splice_readme
from benchmarks._reconstruction_report import (
    json_number,
    markdown,
    seed_cell,
    summarise_transitions,
    targets,
)
from systems import atomic_write_bytes
from warp_phys.training.evaluation import evaluate_run
from warp_phys.training.run import train_run

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parents[1] / "runs" / "bench" / "reconstruction"
SEEDS = (0, 1, 2)


def train_model(system: str, model: str, *, seed: int = 0, preset: str = "cpu", out=None,
                transition: str = "dense", **overrides):  # fmt: skip
    """Train one table cell (one seed) under a preset; reusable by other benchmarks.

    **Arguments:**

    - `system`: `"msd"`, `"msd_zero"`, `"sine"` or `"lotka_volterra"` (the repeat-copy task).
    - `model`: `"gru"`, `"lstm"`, `"transformer"`, `"warp"` or `"warp_phys"`.
    - `seed`: model / shuffling seed; `preset`: `"cpu"` or `"paper"`.
    - `out`: run folder (default `runs/bench/reconstruction/PRESET/SYSTEM/MODEL/seedN`);
      an existing run there is replaced.
    - `transition`: WARP's transition kind (`model="warp"` only; see
      `benchmarks._presets.transition_config`); `"dense"` is the table's cell.
    - `overrides`: `RunConfig` fields to change (e.g. `max_seconds=20`).

    **Returns:** `(run, history)` from `warp_phys.training.run.train_run`; the run's
    model is the best on the validation split. Evaluate it with
    `warp_phys.training.evaluation.evaluate_run(run, split="test")`.
    """
    if transition != "dense":
        if model != "warp":
            raise ValueError(f"transition {transition!r} is a variant of model 'warp' only")
        config = transition_config(preset, system, transition, seed)
    else:
        config = run_config(preset, system, model, seed)
    if overrides:
        config = config.replace(**overrides)
    out = Path(out) if out is not None else RUNS / preset / system / model / f"seed{seed}"
    return train_run(config, out, overwrite=True, progress=False)


def transition_key(system: str, kind: str, seed: int) -> str:
    """The per-run record key of a structured-transition WARP run (beside `sys/model/seed`)."""
    return f"{system}/warp:{kind}/{seed}"


def run_cell(system: str, model: str, seed: int, preset: str, out: Path, **overrides) -> dict:
    """Train and evaluate one (system, model, seed); the record stored per run."""
    run, history = train_model(system, model, seed=seed, preset=preset, out=out, **overrides)
    summary = json.loads((out / "summary.json").read_text())
    record = {
        "params": int(summary["parameters"]),
        "train_seconds": float(summary["train_seconds"]),
        "steps": summary["steps_done"],
        "stopped": summary["stopped"],
        "best_val_mse_normalized": summary["best_val_mse_normalized"],
    }
    record.update(evaluate_cell(run, system))
    return record


def evaluate_cell(run, system: str) -> dict:
    """Test (and OOD) MSE of a trained run in table units, `{split: mse}`. A forecast
    that diverged (NaN / inf) on some trajectories leaves `mse` non-finite; their count
    is kept as `{split}_diverged` and the MSE over the others as `{split}_finite`."""
    out = {}
    for split in ("test", "ood") if system != "sine" else ("test",):  # SINE: no OOD ranges
        metrics = evaluate_run(run, split=split, n=run.config.n_test)
        out[split] = metrics["mse"] / UNITS[system]
        if metrics["diverged"]:
            out[f"{split}_diverged"] = metrics["diverged"]
            out[f"{split}_finite"] = metrics.get("mse_finite", float("nan")) / UNITS[system]
    return out


def repeat_last(preset: str, system: str) -> float | None:
    """Test MSE (table units) of repeating the last observed value after the context,
    for scale; None for LV, whose protocol has no free-running phase."""
    from warp_phys.training.run import load_dataset

    config = run_config(preset, system, "gru", 0)
    if config.eval_protocol != "forecast":
        return None
    y = np.asarray(load_dataset(config, "test").y)
    L = config.context
    return float(np.mean((y[:, L:] - y[:, L - 1 : L]) ** 2)) / UNITS[system]


def _shape_check(config) -> int:
    """Builds the config's model abstractly (no arrays allocated); its parameter count."""
    import equinox as eqx
    import jax

    import systems
    from warp_phys.baselines import count_parameters
    from warp_phys.training.models import build_model

    system = systems.get_system(config.system)
    size = system.state_size
    model = eqx.filter_eval_shape(
        lambda: build_model(config, size, system.n_steps, key=jax.random.PRNGKey(0))
    )
    return count_parameters(model)


def _theta_size(config) -> int:
    """D_theta of the config's WARP, built abstractly."""
    import equinox as eqx
    import jax

    import systems
    from warp_phys.training.models import build_model

    system = systems.get_system(config.system)
    return eqx.filter_eval_shape(
        lambda: build_model(config, system.state_size, system.n_steps, key=jax.random.PRNGKey(0))
    ).theta_size


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(value, indent=2) + "\n").encode())


def summarise(records: dict, preset: str, seeds, *, smoke: bool = False) -> dict:
    """The result JSON (keys of issue 8) from the per-run records `{"sys/model/seed": rec}`."""
    results, missing, table = {}, [], []
    for system in SYSTEMS:
        row = {}
        for model in models_for(system):
            runs = [records.get(f"{system}/{model}/{s}") for s in seeds]
            missing += [f"{system}/{model}/{s}" for s, r in zip(seeds, runs, strict=True)
                        if r is None]
            runs = [r for r in runs if r is not None]
            table += runs
            if not runs:
                continue
            row[model] = {
                **seed_cell(runs), "paper": PAPER[system][model],
                "seeds": [s for s in seeds if f"{system}/{model}/{s}" in records],
                "per_seed_ood": [json_number(r.get("ood")) for r in runs],
            }  # fmt: skip
        if row:
            results[system] = row
    return {
        "preset": preset,
        "smoke": smoke,
        # the table's runs, one after another (data, training and evaluation); None for
        # records written before the wall clock was recorded
        "wall_seconds": (sum(r["wall_seconds"] for r in table)
                         if all("wall_seconds" in r for r in table) else None),  # fmt: skip
        "complete": not missing,
        "missing": missing,
        "device": _device(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "units": {s: UNITS[s] for s in SYSTEMS},
        "results": results,
        "targets": targets(results),
    }


def _device() -> str:
    import jax

    dev = jax.devices()[0]
    if dev.platform != "cpu":
        return f"{dev.platform}: {dev.device_kind}"
    kind = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        kind = next(x.split(":", 1)[1].strip() for x in lines if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu: {kind}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> dict:
    """Runs the (remaining) table, writes the JSON, splices the README; returns the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--out", type=Path, default=None, help="result JSON")
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder of the run folders")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny data, 2 s per model, one seed, no README (for tests)")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--dry-run", action="store_true", help="only build the configs")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the JSON and README from the finished runs")
    parser.add_argument("--transitions", action="store_true",
                        help="run only WARP's structured transitions (on --systems among "
                             f"{', '.join(TRANSITION_SYSTEMS)}) and merge them into the JSON's "
                             "'transitions' key, the rest of the JSON unchanged")
    parser.add_argument("--transition-kinds", nargs="+", choices=TRANSITION_KINDS,
                        default=list(TRANSITION_KINDS), help="with --transitions")
    args = parser.parse_args(argv)
    seeds = args.seeds[:1] if args.smoke else args.seeds
    name = "reconstruction_smoke" if args.smoke else "reconstruction"
    if args.preset != "cpu" and not args.smoke:
        name += f"_{args.preset}"
    out = args.out or RESULTS / f"{name}.json"
    partial = out.with_name(out.stem + "_runs.json")
    if args.transitions:  # (system, kind, seed) instead of (system, model, seed)
        cells = [(s, kind, seed) for s in args.systems if s in TRANSITION_SYSTEMS
                 for seed in seeds for kind in args.transition_kinds]  # fmt: skip
    else:
        cells = [(s, m, seed) for s in args.systems for seed in seeds for m in args.models
                 if m in models_for(s)]  # fmt: skip
    if args.dry_run:
        for s, m, seed in cells:
            if seed == seeds[0]:
                config = (transition_config(args.preset, s, m, seed) if args.transitions
                          else run_config(args.preset, s, m, seed))  # fmt: skip
                print(f"{s}/{m}: {_shape_check(config)} parameters")
        print(f"{len(cells)} configs of preset {args.preset} build")
        return {}
    overrides = {}
    if args.smoke:
        overrides = dict(max_seconds=2.0, val_every=5, n_val=8, n_test=8)
    records = json.loads(partial.read_text()) if partial.is_file() else {}
    for system, model, seed in cells:
        key = f"{system}/{model}/{seed}"
        if key in records or args.report_only:
            continue
        cell_overrides = dict(overrides)
        if args.smoke and system != "sine":
            cell_overrides["n_train"] = 32
        start = time.perf_counter()
        folder = args.runs / args.preset / system / model / f"seed{seed}"
        if args.transitions:
            key, cell_overrides["transition"] = transition_key(system, model, seed), model
            if key in records:
                continue
            folder = args.runs / args.preset / system / f"warp_{model}" / f"seed{seed}"
            model = "warp"
        r = records[key] = run_cell(system, model, seed, args.preset, folder, **cell_overrides)
        r["wall_seconds"] = time.perf_counter() - start  # data, training, evaluation
        _write_json(partial, records)
        print(f"{key}: test {r['test']:.4g} ood {r.get('ood', float('nan')):.4g} "
              f"({r['steps']} steps, {r['wall_seconds']:.0f} s)", flush=True)  # fmt: skip
    if args.transitions and out.is_file():  # the table as committed, new transitions rows
        summary = json.loads(out.read_text())
    else:
        summary = summarise(records, args.preset, seeds, smoke=args.smoke)
        summary["repeat_last"] = {s: repeat_last(args.preset, s) for s in summary["results"]
                                  if not args.smoke}  # fmt: skip
        if out.is_file():  # keep rows other benchmarks merged in (anchors: sindy, oracle_fit)
            previous = json.loads(out.read_text())
            for system, row in summary["results"].items():
                row.update({k: v for k, v in previous.get("results", {}).get(system, {}).items()
                            if k not in MODELS})  # fmt: skip
            if "transitions" in previous:
                summary["transitions"] = previous["transitions"]
    transitions = summarise_transitions(records, summary["results"], seeds)
    for system, kinds in transitions.items():  # per kind: rows not rerun stay
        for kind, cell in kinds.items():
            cell["D_theta"] = _theta_size(transition_config(args.preset, system, kind, 0))
        summary.setdefault("transitions", {}).setdefault(system, {}).update(kinds)
    _write_json(out, summary)
    command = f".venv/bin/python -m benchmarks.reconstruction --preset {args.preset}"
    text = markdown(summary, "make bench-table" if args.preset == "cpu" else command)
    print(text)
    if not (args.smoke or args.no_readme):
        splice_readme("reconstruction", text)
    return summary


if __name__ == "__main__":
    main()
