"""Time to accuracy (issue 20): validation and test MSE against training wall-clock for
WARP-Phys, WARP, GRU, LSTM and the Transformer on MSD, MSD-Zero and SINE, each at its
`cpu`-preset size with the same budget and tuning: per (system, model) a learning-rate
sweep scored on VALIDATION (`--lrs`, `--sweep-seconds` each), then the best rate for
`--final-seconds` (the MSD pair WARP-Phys / WARP also for `--headline-seconds`), scored on
the test split (raw units; WARP-Phys also with its prior refined on each context, and on
MSD the omega_0 and zeta it identifies). Budgets count from the first step, compilation
included; `--scale` multiplies them. Each (phase, system, model, lr) cell runs in its own
process and keeps its record (committed by default: the run may span sessions) under `--runs`.

    python -m benchmarks.time_to_accuracy               # ~2.8 h on 2 cores; JSON, figure, README
    python -m benchmarks.time_to_accuracy --scale 0.2   # ~1 h: every budget x 0.2
    python -m benchmarks.time_to_accuracy --render      # README block and figure from the JSON

`--protocol forecast` trains every model as WARP-Phys's default is trained: the first L
(validation context) inputs observed, then free-running (`train_context` L, `forcing_prob`
0) instead of the paper's teacher forcing 0.25 over the whole sequence; its cells live
beside the default ones (`<phase>_<seconds>s_forecast/`), so the two protocols compare.
"""

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import _harness as harness
from benchmarks import _presets as presets
from benchmarks._time_report import MODELS, SYSTEMS, draw, markdown, summarise
from warp_phys.training.config import stored_config

HEADLINE = ("msd", ("warp_phys", "warp"))  # the pair given the headline budget
LRS = (3e-4, 1e-3, 3e-3)
BUDGETS = {"sweep": 45.0, "final": 300.0, "headline": 900.0}  # seconds of training
PROTOCOLS = ("default", "forecast")
SMOKE = dict(n_val=8, n_test=8, val_every=5)  # and 32 training trajectories (SINE: its 10)
RUNS = harness.ROOT / "benchmarks" / "results" / "time_cells"


def cell_config(spec: dict):
    """The cpu preset's `RunConfig` (seed 0) with the cell's learning rate and time budget,
    no step count (the schedule sized to the time), trained on the forecast for the
    `"forecast"` protocol; smoke: the smoke sizes."""
    config = presets.run_config("cpu", spec["system"], spec["model"], 0)
    config = config.replace(lr=spec["lr"], steps=None, max_seconds=spec["seconds"])
    if spec.get("protocol", "default") == "forecast":
        config = config.replace(train_context=config.context, forcing_prob=0.0)
    return config.replace(**SMOKE, n_train=min(32, config.n_train)) if spec["smoke"] else config


def curve(folder: Path) -> dict:
    """Validation MSE (model units) against training seconds from `metrics.jsonl`, and the
    steps and seconds trained; a validation's time is interpolated between the logged
    times (every 10 steps; after the last one: at the mean step time)."""
    from warp_phys.training.metrics_log import read_metrics

    records = read_metrics(folder / "metrics.jsonl")
    logged = [(0, 0.0)] + [(r["step"], r["seconds"]) for r in records if "seconds" in r]
    steps, seconds = map(np.asarray, zip(*logged, strict=True))
    val = [(r["step"], r["val_mse"]) for r in records if "val_mse" in r]
    done = max((r["step"] for r in records), default=0)
    rate = seconds[-1] / max(steps[-1], 1)
    at = lambda step: float(np.interp(step, steps, seconds) + max(step - steps[-1], 0) * rate)
    values = [v if math.isfinite(v) else None for _, v in val]
    curve = dict(seconds=[round(at(step), 2) for step, _ in val], val_mse=values)
    return dict(curve=curve, steps=done, train_seconds=round(at(done), 2))


def identification(run, context: int) -> dict:
    """How well the WARP-Phys `run` identifies omega_0 and zeta on its test split: median
    relative errors read at the end of `context` and refined, spread over the forecast."""
    import warp_phys as wp

    table = wp.parameter_table(run, split="test", context=context, refine="auto")
    result = dict(n=len(table["ids"]), context=context)
    for name in ("omega0", "zeta"):
        row = table["parameters"][name]
        result[f"{name}_median_rel_err"] = wp.median_relative_error(row)
        spread = np.asarray(row["std"]) / np.abs(np.asarray(row["true"]))
        result[f"{name}_forecast_rel_std"] = float(np.median(spread))
        if "refined" in row:
            result[f"{name}_refined_median_rel_err"] = wp.median_relative_error(row, "refined")
    return result


def score(record: dict, folder: Path, spec: dict) -> dict:
    """`record` with the test MSE (raw units) of the best model in `folder`, for a physical
    prior also refined (`test_mse_refined`, K: `refine`), for MSD's WARP-Phys identified."""
    import warp_phys as wp

    run = wp.load_run(folder, "best")
    metrics = wp.evaluate_run(run, split="test", n=run.config.n_test, refine="auto")
    record = dict(record, test_mse=metrics.get("mse_readout", metrics["mse"]))
    if "refine" in metrics:
        record.update(test_mse_refined=metrics["mse"], refine=metrics["refine"])
    record.update(repeat_last_mse=metrics.get("mse_repeat_last"))
    record.update(test_diverged=metrics["diverged"], params=wp.count_parameters(run.model))
    if spec["model"] == "warp_phys" and spec["system"] == "msd":
        record["identification"] = identification(run, run.config.context)
    return record


def train_cell(spec: dict) -> dict:
    """Worker: one cell trained in `spec["folder"]` (replaced; a non-finite loss keeps the
    best validated model): its curve, `train_seconds` (compilation included), final: `score`."""
    import warp_phys as wp

    start, folder, config = time.perf_counter(), Path(spec["folder"]), cell_config(spec)
    summary = None
    try:
        _, history = wp.train_run(config, folder, overwrite=True, progress=False)
        stopped, summary = history["stopped"], harness.read_json(folder / "summary.json")
    except FloatingPointError:
        stopped = "non-finite"
    record = dict(curve(folder), lr=spec["lr"], budget_s=spec["seconds"], stopped=stopped)
    record["config"] = harness.read_json(folder / "config.json")
    if summary is not None:
        record["train_seconds"] = summary["train_seconds"]
    finite = [v for v in record["curve"]["val_mse"] if v is not None]
    record["best_val_mse"] = min(finite, default=None)
    if spec["phase"] != "sweep":
        record = score(record, folder, spec)
    return dict(record, wall_seconds=round(time.perf_counter() - start, 1))


WORKERS = {"cell": train_cell}


def cell_path(runs: Path, spec: dict) -> Path:
    """Where the cell `spec` (phase, seconds, system, model, lr, protocol) keeps its record
    (its run folder: the same path without `.json`); budget and protocol are part of the
    name, so runs at another `--scale` or protocol never mix."""
    protocol = "" if spec["protocol"] == "default" else f"_{spec['protocol']}"
    phase = f"{spec['phase']}_{spec['seconds']:g}s{protocol}"
    folder = runs / phase / spec["system"] / spec["model"]
    return folder / f"lr{spec['lr']:g}.json"


def stale(folder: Path, spec: dict) -> bool:
    """Whether the cell was trained with another config than `spec`'s is now (the preset
    changed since: it is trained again): its run folder's config, else its record's."""
    stored, record = folder / "config.json", folder.parent / f"{folder.name}.json"
    if stored.is_file():
        config = harness.read_json(stored)
    else:
        config = harness.read_json(record).get("config") if record.is_file() else None
    return config is not None and stored_config(config) != stored_config(cell_config(spec))


def run_cell(args, phase: str, system: str, model: str, lr: float) -> dict:
    """The record of one cell: read when it exists and is not `stale`, else trained (in a
    worker process; smoke: in this one) and written unless the worker failed."""
    seconds = args.budgets[phase]
    spec = dict(phase=phase, system=system, model=model, lr=lr, seconds=seconds)
    spec.update(protocol=args.protocol, smoke=args.smoke)
    path = cell_path(args.runs, spec)
    spec["folder"] = str(path.with_suffix(""))
    if path.is_file() and not stale(path.with_suffix(""), spec):
        return harness.read_json(path)
    workers = WORKERS if args.smoke else None
    record = harness.run_worker("time_to_accuracy", "cell", spec, workers=workers)
    if "error" not in record:
        harness.write_json(path, record)
    best = record.get("test_mse", record.get("best_val_mse"))
    print(f"{phase} {system}/{model} lr {lr:g}: {record.get('error') or best}", flush=True)
    return record


def best_lr(sweep: dict) -> float | None:
    """The rate with the lowest best validation MSE (None when every sweep run failed)."""
    scores = {lr: r.get("best_val_mse") for lr, r in sweep.items()}
    scores = {lr: s for lr, s in scores.items() if s is not None and math.isfinite(s)}
    return min(scores, key=scores.get) if scores else None


def measure(args) -> dict:
    """Every cell (the finished ones read back), `{"sweep": {system: {model: {lr:
    record}}}, "final": ..., "headline": ..., "errors": [...]}`, summarised."""
    print(f"time to accuracy: cells in {args.runs}", flush=True)
    start, cells = time.perf_counter(), {"sweep": {}, "final": {}, "headline": {}, "errors": []}
    for system in args.systems:
        for model in args.models:
            lr = args.lrs[0]  # --no-sweep: the first rate for every model
            if not args.no_sweep:
                sweep = {lr: run_cell(args, "sweep", system, model, lr) for lr in args.lrs}
                cells["sweep"].setdefault(system, {})[model] = sweep
                failed = [(lr, r["error"]) for lr, r in sweep.items() if "error" in r]
                cells["errors"] += [f"sweep {system}/{model} lr {lr:g}: {e}" for lr, e in failed]
                lr = best_lr(sweep)
            headline = system == HEADLINE[0] and model in HEADLINE[1]
            headline &= args.protocol == "default"  # the other protocol: equal budgets only
            for phase in ("final", "headline") if headline else ("final",):
                record = {"error": "every sweep run failed"}
                record = record if lr is None else run_cell(args, phase, system, model, lr)
                if "error" in record:
                    cells["errors"].append(f"{phase} {system}/{model}: {record['error']}")
                else:
                    cells[phase].setdefault(system, {})[model] = record
    return summarise(cells, args, wall_s=round(time.perf_counter() - start, 1))


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("time_to_accuracy", __doc__, figure=True)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--lrs", nargs="+", type=float, default=LRS, help="the sweep's rates")
    for phase, seconds in BUDGETS.items():
        what = f"training seconds of each {phase} run (default {seconds:g})"
        parser.add_argument(f"--{phase}-seconds", type=float, default=seconds, help=what)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget")
    what = "no sweep: every model at the first --lrs rate"
    parser.add_argument("--no-sweep", action="store_true", help=what)
    parser.add_argument("--runs", type=Path, help="cell records and run folders")
    what = "forecast: every model trained on the forecast (see above; default: each its own)"
    parser.add_argument("--protocol", choices=PROTOCOLS, default="default", help=what)
    args = harness.parse(parser, argv)
    if args.protocol != "default":  # its own JSON and README block
        default_out = args.out == harness.RESULTS / f"{args.name}.json"
        args.name = f"{args.name}_{args.protocol}"
        args.out = harness.RESULTS / f"{args.name}.json" if default_out else args.out
    budgets = {p: getattr(args, f"{p}_seconds") * args.scale for p in BUDGETS}
    args.budgets = {p: 1.0 for p in BUDGETS} if args.smoke else budgets
    args.runs = args.runs or (Path(tempfile.gettempdir()) / "bench_time" if args.smoke else RUNS)
    figure = (lambda r: draw(r, args.figure)) if args.protocol == "default" else None
    return harness.report(args, lambda: measure(args), markdown, figure, WORKERS)


if __name__ == "__main__":
    main()
