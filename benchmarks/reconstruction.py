"""The paper's reconstruction table (Table 3): GRU, LSTM, Transformer, WARP and WARP-Phys
on MSD, MSD-Zero, LV (repeat-copy, no WARP-Phys) and SINE (10 trajectories), 3 seeds.

Every cell is trained and evaluated through `train_run` / `evaluate_run` (model
selection on the validation split); test (and OOD) MSE in the paper's units beside the
paper's numbers. Presets in `_presets.py`: `cpu` (63 minutes on 2 idle cores) and
`paper` (the spec's sizes, for an accelerator). Each finished (system, model, seed) is
kept in `results/reconstruction_runs.json` and skipped when the command is run again.
`--transitions` runs WARP's structured transitions (the `warp` cell with only A
changed) on MSD and LV and merges them into the JSON's `transitions` key.

    python -m benchmarks.reconstruction --preset cpu      # writes results/reconstruction.json
    python -m benchmarks.reconstruction --preset paper --dry-run   # the configs build
    python -m benchmarks.reconstruction --render          # README block from the JSON
"""

import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks import _presets as presets
from benchmarks._presets import run_config, targets, transition_config
from benchmarks._reconstruction_report import markdown, summarise, summarise_transitions

__all__ = ["main", "markdown", "run_cell", "run_config", "summarise", "targets"]
RUNS = harness.ROOT / "runs" / "bench" / "reconstruction"  # run folders: PRESET/SYSTEM/MODEL/seedN


def cell_config(preset: str, system: str, model: str, seed: int, kind: str) -> wp.RunConfig:
    """A table cell's config, or (`kind` not dense) the `warp` cell's with another A."""
    if kind == "dense":
        return run_config(preset, system, model, seed)
    return transition_config(preset, system, kind, seed)


def run_cell(system: str, model: str, seed: int, preset: str, out: Path, **overrides) -> dict:
    """Train (a run folder at `out`, replaced) and evaluate one table cell and seed, WARP
    with another `transition` for the structured-transition rows, with `RunConfig`
    `overrides`; the record stored per run: size, training time and steps, and the test
    (and OOD) MSE in table units, for a physical prior also refined on each context
    (`{split}_refined`). A forecast that diverged (NaN / inf) on some
    trajectories leaves the MSE non-finite; their count is kept as `{split}_diverged`
    and the MSE over the others as `{split}_finite`."""
    config = cell_config(preset, system, model, seed, overrides.pop("transition", "dense"))
    run, _ = wp.train_run(config.replace(**overrides), out, overwrite=True, progress=False)
    summary, unit = harness.read_json(out / "summary.json"), presets.UNITS[system]
    record = dict(params=int(summary["parameters"]), steps=summary["steps_done"])
    keys = ("train_seconds", "stopped", "best_val_mse_normalized")
    record |= {k: summary[k] for k in keys}
    for split in ("test",) if system == "sine" else ("test", "ood"):  # SINE: no OOD ranges
        # a physical prior: also refined on each context, as `warp-phys evaluate` does
        metrics = wp.evaluate_run(run, split=split, n=run.config.n_test, refine="auto")
        record[split] = metrics.get("mse_readout", metrics["mse"]) / unit
        if "refine" in metrics:
            record[f"{split}_refined"] = metrics["mse"] / unit
        if metrics["diverged"]:
            record[f"{split}_diverged"] = metrics["diverged"]
            record[f"{split}_finite"] = metrics.get("mse_finite", np.nan) / unit
    return record


def repeat_last(preset: str, system: str) -> float | None:
    """Test MSE (table units) of repeating the last observed value after the context,
    for scale; None for LV, whose protocol has no free-running phase."""
    config = run_config(preset, system, "gru", 0)
    if config.eval_protocol != "forecast":
        return None
    y, L = np.asarray(wp.load_dataset(config, "test").y), config.context
    return float(np.mean((y[:, L:] - y[:, L - 1 : L]) ** 2)) / presets.UNITS[system]


def abstract_model(config):
    """The config's model built abstractly (shapes only, no arrays allocated)."""
    system, key = systems.get_system(config.system), jax.random.PRNGKey(0)
    build = lambda: wp.build_model(config, system.state_size, system.n_steps, key=key)
    return eqx.filter_eval_shape(build)


def _cells(args, seeds) -> list[tuple]:
    """`(record key, system, model, seed, transition, run folder)` of every run asked for."""

    def cell(system, model, seed, kind="dense"):
        name, key = (model, model) if kind == "dense" else (f"warp_{kind}", f"warp:{kind}")
        folder = args.runs / args.preset / system / name / f"seed{seed}"
        return f"{system}/{key}/{seed}", system, model, seed, kind, folder

    cells = []
    for s in args.systems:
        for seed in seeds:
            if not args.transitions:
                cells += [cell(s, m, seed) for m in args.models if m in presets.models_for(s)]
            elif s in presets.TRANSITION_SYSTEMS:
                cells += [cell(s, "warp", seed, k) for k in args.transition_kinds]
    return cells


def _summary(args, records: dict, seeds) -> dict:
    """The result JSON from the per-run records. `--transitions` changes only the
    committed JSON's `transitions` key; a table run keeps the transitions."""
    previous = harness.read_json(args.out) if args.out.is_file() else {}
    if args.transitions and previous:
        summary = previous
    else:
        summary = summarise(records, args.preset, seeds, smoke=args.smoke)
        naive = {s: repeat_last(args.preset, s) for s in summary["results"]}
        summary["repeat_last"] = {} if args.smoke else naive
        if "transitions" in previous:
            summary["transitions"] = previous["transitions"]
    for system, kinds in summarise_transitions(records, summary["results"], seeds).items():
        for kind, cell in kinds.items():  # per kind: rows not rerun stay
            config = transition_config(args.preset, system, kind, 0)
            cell["D_theta"] = abstract_model(config).theta_size
        summary.setdefault("transitions", {}).setdefault(system, {}).update(kinds)
    return summary


def _markdown(summary: dict) -> str:
    preset = summary["preset"]
    command = f".venv/bin/python -m benchmarks.reconstruction --preset {preset}"
    return markdown(summary, "make bench-table" if preset == "cpu" else command)


def main(argv: list[str] | None = None) -> dict:
    """Runs the (remaining) table, writes the JSON, splices the README; returns the JSON."""
    parser = harness.parser("reconstruction", __doc__)
    parser.add_argument("--preset", choices=presets.PRESETS, default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--systems", nargs="+", choices=presets.SYSTEMS, default=presets.SYSTEMS)
    parser.add_argument("--models", nargs="+", choices=presets.MODELS, default=presets.MODELS)
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder of the run folders")
    parser.add_argument("--dry-run", action="store_true", help="only build the configs")
    parser.add_argument("--report-only", action="store_true", help="train nothing")
    what = "run WARP's structured transitions and merge them into the JSON's 'transitions'"
    parser.add_argument("--transitions", action="store_true", help=what)
    kinds = presets.TRANSITION_KINDS
    parser.add_argument("--transition-kinds", nargs="+", choices=kinds, default=kinds)
    args = harness.parse(parser, argv)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), _markdown)
    seeds = args.seeds[:1] if args.smoke else args.seeds
    if args.preset != "cpu" and args.out == harness.RESULTS / "reconstruction.json":
        args.out = args.out.with_name(f"reconstruction_{args.preset}.json")
    cells = _cells(args, seeds)
    if args.dry_run:
        for _, system, model, seed, kind, _ in cells:
            if seed != seeds[0]:
                continue
            config = cell_config(args.preset, system, model, seed, kind)
            count = wp.count_parameters(abstract_model(config))
            print(f"{system}/{model if kind == 'dense' else kind}: {count} parameters")
        print(f"{len(cells)} configs of preset {args.preset} build")
        return {}
    partial = args.out.with_name(args.out.stem + "_runs.json")
    records = harness.read_json(partial) if partial.is_file() else {}
    smoke = dict(max_seconds=2.0, val_every=5, n_val=8, n_test=8) if args.smoke else {}
    for key, system, model, seed, kind, folder in cells:
        if key in records or args.report_only:
            continue
        overrides = dict(smoke, n_train=32) if smoke and system != "sine" else smoke
        start = time.perf_counter()
        r = run_cell(system, model, seed, args.preset, folder, transition=kind, **overrides)
        r["wall_seconds"] = time.perf_counter() - start  # data, training, evaluation
        records[key] = r
        harness.write_json(partial, records, strict=False)  # a diverged MSE stays NaN here
        ood = r.get("ood", np.nan)
        print(f"{key}: test {r['test']:.4g} ood {ood:.4g} ({r['wall_seconds']:.0f} s)", flush=True)
    summary = _summary(args, records, seeds)
    return harness.finish(args, summary, _markdown)


if __name__ == "__main__":
    main()
