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
    python -m benchmarks.reconstruction --render          # README block from the JSON

The run is incremental: each finished (system, model, seed) is written atomically to
`results/reconstruction_runs.json` (beside the result JSON) and skipped when the
command is run again; `--report-only` trains nothing and summarises what is there.

WARP's structured transitions (issue 9: diagonal, lowrank r = 8, block) on MSD and LV,
each the table's `warp` cell with only the transition changed, are run apart and merged
into the committed JSON under its `transitions` key, leaving the rest as it is:

    python -m benchmarks.reconstruction --transitions     # 18 runs of the cpu preset
"""

import time
from pathlib import Path

import jax
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks._presets import (
    MODELS,
    PRESETS,
    SYSTEMS,
    TRANSITION_KINDS,
    TRANSITION_SYSTEMS,
    UNITS,
    models_for,
    run_config,
    transition_config,
)
from benchmarks._reconstruction_report import (
    markdown,
    summarise,
    summarise_transitions,
    targets,
)

__all__ = ["main", "markdown", "run_cell", "run_config", "summarise", "targets"]
RUNS = harness.ROOT / "runs" / "bench" / "reconstruction"  # run folders: PRESET/SYSTEM/MODEL/seedN
SEEDS = (0, 1, 2)


def run_cell(
    system: str,
    model: str,
    seed: int,
    preset: str,
    out: Path,
    transition: str = "dense",
    **overrides,
) -> dict:
    """Train (a run folder at `out`, replaced) and evaluate one table cell and seed, WARP
    with another `transition` for the structured-transition rows, with `RunConfig`
    `overrides`; the record stored per run: size, training time and steps, and the test
    (and OOD) MSE in table units. A forecast that diverged (NaN / inf) on some
    trajectories leaves the MSE non-finite; their count is kept as `{split}_diverged`
    and the MSE over the others as `{split}_finite`."""
    config = transition_config(preset, system, transition, seed)
    if transition == "dense":
        config = run_config(preset, system, model, seed)
    run, _ = wp.train_run(config.replace(**overrides), out, overwrite=True, progress=False)
    summary = harness.read_json(out / "summary.json")
    record = {
        "params": int(summary["parameters"]),
        "train_seconds": summary["train_seconds"],
        "steps": summary["steps_done"],
        "stopped": summary["stopped"],
        "best_val_mse_normalized": summary["best_val_mse_normalized"],
    }
    for split in ("test",) if system == "sine" else ("test", "ood"):  # SINE: no OOD ranges
        metrics = wp.evaluate_run(run, split=split, n=run.config.n_test)
        record[split] = metrics["mse"] / UNITS[system]
        if metrics["diverged"]:
            record[f"{split}_diverged"] = metrics["diverged"]
            record[f"{split}_finite"] = metrics.get("mse_finite", np.nan) / UNITS[system]
    return record


def repeat_last(preset: str, system: str) -> float | None:
    """Test MSE (table units) of repeating the last observed value after the context,
    for scale; None for LV, whose protocol has no free-running phase."""
    config = run_config(preset, system, "gru", 0)
    if config.eval_protocol != "forecast":
        return None
    y, L = np.asarray(wp.load_dataset(config, "test").y), config.context
    return float(np.mean((y[:, L:] - y[:, L - 1 : L]) ** 2)) / UNITS[system]


def abstract_model(config):
    """The config's model built abstractly (shapes only, no arrays allocated)."""
    import equinox as eqx

    system = systems.get_system(config.system)
    return eqx.filter_eval_shape(
        lambda: wp.build_model(config, system.state_size, system.n_steps, key=jax.random.PRNGKey(0))
    )


def _cells(args, seeds) -> list[tuple]:
    """`(record key, system, model, seed, transition, run folder)` of every run asked for."""
    root = args.runs / args.preset
    if args.transitions:  # (system, kind, seed) instead of (system, model, seed)
        return [
            (f"{s}/warp:{k}/{seed}", s, "warp", seed, k, root / s / f"warp_{k}" / f"seed{seed}")
            for s in args.systems
            if s in TRANSITION_SYSTEMS
            for seed in seeds
            for k in args.transition_kinds
        ]
    return [
        (f"{s}/{m}/{seed}", s, m, seed, "dense", root / s / m / f"seed{seed}")
        for s in args.systems
        for seed in seeds
        for m in args.models
        if m in models_for(s)
    ]


def _summary(args, records: dict, seeds, out: Path) -> dict:
    """The result JSON from the per-run records. `--transitions` changes only the
    committed JSON's `transitions` key; a table run keeps the rows other benchmarks
    merged in (anchors: sindy, oracle_fit) and the transitions."""
    previous = harness.read_json(out) if out.is_file() else {}
    if args.transitions and previous:
        summary = previous
    else:
        summary = summarise(records, args.preset, seeds, smoke=args.smoke)
        summary["repeat_last"] = (
            {} if args.smoke else {s: repeat_last(args.preset, s) for s in summary["results"]}
        )
        for system, row in summary["results"].items():
            row.update(
                {
                    k: v
                    for k, v in previous.get("results", {}).get(system, {}).items()
                    if k not in MODELS
                }
            )
        if "transitions" in previous:
            summary["transitions"] = previous["transitions"]
    for system, kinds in summarise_transitions(records, summary["results"], seeds).items():
        for kind, cell in kinds.items():  # per kind: rows not rerun stay
            cell["D_theta"] = abstract_model(
                transition_config(args.preset, system, kind, 0)
            ).theta_size
        summary.setdefault("transitions", {}).setdefault(system, {}).update(kinds)
    return summary


def _markdown(summary: dict) -> str:
    preset = summary["preset"]
    command = f".venv/bin/python -m benchmarks.reconstruction --preset {preset}"
    return markdown(summary, "make bench-table" if preset == "cpu" else command)


def main(argv: list[str] | None = None) -> dict:
    """Runs the (remaining) table, writes the JSON, splices the README; returns the JSON."""
    parser = harness.parser("reconstruction", __doc__)
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder of the run folders")
    parser.add_argument("--dry-run", action="store_true", help="only build the configs")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the JSON and README from the finished runs",
    )
    parser.add_argument(
        "--transitions",
        action="store_true",
        help="run only WARP's structured transitions (on --systems among "
        f"{', '.join(TRANSITION_SYSTEMS)}) and merge them into the JSON's "
        "'transitions' key, the rest of the JSON unchanged",
    )
    parser.add_argument(
        "--transition-kinds",
        nargs="+",
        choices=TRANSITION_KINDS,
        default=list(TRANSITION_KINDS),
        help="with --transitions",
    )
    args = harness.parse(parser, argv)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), _markdown)
    seeds = args.seeds[:1] if args.smoke else args.seeds
    out = args.out
    if args.preset != "cpu" and out == harness.RESULTS / "reconstruction.json":
        out = out.with_name(f"reconstruction_{args.preset}.json")
    cells = _cells(args, seeds)
    if args.dry_run:
        for _, system, model, seed, kind, _ in cells:
            if seed == seeds[0]:
                config = (
                    transition_config(args.preset, system, kind, seed)
                    if args.transitions
                    else run_config(args.preset, system, model, seed)
                )
                count = wp.count_parameters(abstract_model(config))
                print(f"{system}/{model if kind == 'dense' else kind}: {count} parameters")
        print(f"{len(cells)} configs of preset {args.preset} build")
        return {}
    partial = out.with_name(out.stem + "_runs.json")
    records = harness.read_json(partial) if partial.is_file() else {}
    smoke = dict(max_seconds=2.0, val_every=5, n_val=8, n_test=8) if args.smoke else {}
    for key, system, model, seed, kind, folder in cells:
        if key in records or args.report_only:
            continue
        overrides = dict(smoke, n_train=32) if smoke and system != "sine" else smoke
        start = time.perf_counter()
        r = records[key] = run_cell(
            system, model, seed, args.preset, folder, transition=kind, **overrides
        )
        r["wall_seconds"] = time.perf_counter() - start  # data, training, evaluation
        harness.write_json(partial, records, strict=False)  # a diverged MSE stays NaN here
        print(
            f"{key}: test {r['test']:.4g} ood {r.get('ood', np.nan):.4g} "
            f"({r['steps']} steps, {r['wall_seconds']:.0f} s)",
            flush=True,
        )
    summary = _summary(args, records, seeds, out)
    harness.write_json(out, summary)
    return harness.finish(args, summary, _markdown)


if __name__ == "__main__":
    main()
