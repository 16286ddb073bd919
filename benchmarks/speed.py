"""Speed and memory of WARP on CPU: parallel vs sequential recurrence, FLOP/s, inference.

Measured in one run (issue 8, section 2), each configuration in its own subprocess so
that its peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`) is its own:

- training-step time (teacher-forced, non-autoregressive: forward + backward + Adam
  update, jitted and compiled ahead of time) of WARP in `mode="parallel"` vs
  `mode="sequential"` for T in {64, 256, 1024, 4096}, D_theta ~1k and ~5k (root MLP
  [tau, x_prev] -> 2 with two hidden layers of width 28 or 67: D_theta 982 and 4960),
  data_size 2, batch 64, hypernetwork width r = 32 (the package default);
- the sequential recurrence's achieved FLOP/s (FLOP model 6 N (T-1) D^2 per training
  step: 2 forward, 4 backward), as a fraction of a dense float32 (D x D) @ (D x 64)
  GEMM timed in the same worker just before and after the row;
- inference: trajectories per second of `reconstruct` (context 100, horizon 156) for the
  demo's trained MSD model (`runs/demo/best.eqx`; the same architecture untrained if
  `make demo` has not been run, which the JSON says);
- WARP vs a GRU of equal parameter count, seconds per training step (T 256, batch 64);
- peak memory vs D_theta (sequential, T 64, batch 64), with the dense A's training state
  (A, its gradient, two Adam moments: 16 D^2 bytes) against the machine's memory;
- structured transitions (issue 9): peak RSS and step time per kind (dense, diagonal,
  lowrank r = 8, block, and any other kind the package has) for D_theta ~5k to ~100k
  (sequential, T 16, batch 8: small, so that A's training state, not the activations,
  dominates and dense can run up to ~20k), dense only where its estimate fits; block on
  roots of many 32 x 32 layers (its memory is sum_b D_b^2 over the root's tensors, so
  a wide layer would make it as big as dense). And the training step per kind at D_theta
  ~5k, T 256, batch 64, both modes (dense from the rows above; block on a root of
  16-wide layers). These rows time one step after a warm-up, or the first step alone
  when it takes 2 s or more (about 5 minutes in all on 2 idle cores);
- the paper-MSD rows (scan vs kernel autoregressive training, issue 11) are copied from
  `benchmarks/results/paper_speed.json` (its source and date recorded); `--paper-msd`
  re-measures them with `benchmarks.paper_speed` first (batch 1024 takes ~15 min more).

Timings are medians of the steps that ran after compilation: the first call is a
warm-up when it takes under 15 s, and timed steps stop after `--reps` or once
`--rep-budget` seconds have been spent (at least one); the counts are in the JSON. A
configuration whose estimated memory exceeds 70 % of the memory available when it starts
is skipped with the reason recorded, never extrapolated.

Budget: about 45 minutes on 2 shared CPU cores (`make bench-speed`; the structured-
transition rows about 5 of them); `--smoke` runs tiny sizes in seconds for the test
suite. The workers, timing helpers and FLOP/memory models are in `_speed_workers.py`,
the JSON result and its merges in `_speed_results.py`, the README block and the figure
in `_speed_report.py`.

    python -m benchmarks.speed    # writes results/speed.json, figures/speed.png, README
    python -m benchmarks.speed --smoke --out /tmp/speed.json --figure /tmp/speed.png
    python -m benchmarks.speed --render benchmarks/results/speed.json   # redraw only
"""

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks._speed_report import markdown, plot
from benchmarks._speed_results import (
    _assemble,
    _row,
    _write_json,
    merge_rows,
    merge_side,
    merge_structured,
    paper_msd_rows,
    structured_memory_row,
    structured_plan,
    transition_kinds,
    transition_speed,
)
from benchmarks._speed_workers import (
    DATA_SIZE,
    MODES,
    ROOT,
    WORKERS,
    _count,
    _run_worker,
    _warp,
    flop_model,
    gemm_gflops,
    memory_estimate_gb,
    theta_size,
)

__all__ = [
    "DATA_SIZE",
    "FULL",
    "MODES",
    "SMOKE",
    "WORKERS",
    "flop_model",
    "gemm_gflops",
    "main",
    "markdown",
    "memory_estimate_gb",
    "merge_rows",
    "merge_side",
    "merge_structured",
    "paper_msd_rows",
    "plot",
    "structured_plan",
    "theta_size",
    "transition_kinds",
]

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "speed.json"
DEFAULT_FIGURE = ROOT / "figures" / "speed.png"
DEMO_MODEL = ROOT / "runs" / "demo" / "best.eqx"

# root MLP (width, depth) with [tau, x_prev] input and 2 outputs: D = w^2 + 7 w + 2
FULL = {
    "sizes": {"1k": (28, 2), "5k": (67, 2)},
    "lengths": (64, 256, 1024, 4096),
    "batch": 64,
    "hyper_width": 32,
    "memory_sizes": ((13, 2), (28, 2), (47, 2), (67, 2), (97, 2)),
    "memory_length": 64,
    "gru_length": 256,
    "inference": {"batch": 256, "context": 100, "horizon": 156},
    "structured": {
        "T": 16,
        "batch": 8,
        "rank": 8,
        # root MLPs of width w, depth 2: D = w^2 + 7 w + 2 (4960, 20012, 100162); the
        # memory rows above have dense at ~1k already
        "roots": ((67, 2), (138, 2), (313, 2)),
        # many 32 x 32 layers: D = 194 + 1056 (depth - 1) (5474, 20258, 100514)
        "block_roots": ((32, 6), (32, 20), (32, 96)),
        "speed": {
            "T": 256,
            "batch": 64,
            "rank": 8,
            "root": (67, 2),
            "block_root": (16, 19),
            "reps": 1,
        },
    },
}
SMOKE = {
    "sizes": {"tiny": (4, 1)},
    "lengths": (8,),
    "batch": 4,
    "hyper_width": 4,
    "memory_sizes": ((4, 1),),
    "memory_length": 8,
    "gru_length": 8,
    "inference": {"batch": 8, "context": 6, "horizon": 10},
    # the same sizes as "speed" below: its sequential entries reuse the memory rows
    "structured": {
        "T": 8,
        "batch": 4,
        "rank": 2,
        "roots": ((4, 1),),
        "block_roots": ((3, 2),),
        "speed": {"T": 8, "batch": 4, "rank": 2, "root": (4, 1), "block_root": (3, 2), "reps": 1},
    },
}


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, prints tables, writes the JSON, figure and README block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--reps", type=int, default=3, help="timed steps at most")
    parser.add_argument(
        "--rep-budget",
        type=float,
        default=60.0,
        help="stop timing a configuration once this many seconds were spent",
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument(
        "--paper-msd",
        action="store_true",
        help="re-measure the paper-MSD rows with benchmarks.paper_speed",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--part",
        choices=("all", "rows", "side", "structured"),
        default="all",
        help="side: only inference, GRU and memory (to run beside a rows-only run); "
        "structured: only the structured-transition rows (memory.structured, transitions)",
    )
    parser.add_argument(
        "--merge-structured",
        type=Path,
        default=None,
        help="with --render: take memory.structured and transitions from this "
        "--part structured JSON",
    )
    parser.add_argument(
        "--merge-rows",
        type=Path,
        nargs="+",
        default=None,
        help="with --render: replace the rows of the same (T, D_theta) by this run's",
    )
    parser.add_argument(
        "--merge-side",
        type=Path,
        default=None,
        help="with --render: take inference, GRU and memory from this --part side JSON",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="minutes: start no configuration after this (recorded as not run)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the workers in this process (default with --smoke)",
    )
    parser.add_argument(
        "--render", type=Path, default=None, help="redraw figure and README from this JSON only"
    )
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        result = WORKERS[kind](json.loads(spec))
        print(json.dumps(result))
        return result

    if args.render:
        result = json.loads(args.render.read_text())
        for path in args.merge_rows or []:
            result = merge_rows(result, json.loads(path.read_text()))
            _write_json(args.render, result)
        if args.merge_side:
            result = merge_side(result, json.loads(args.merge_side.read_text()))
            _write_json(args.render, result)
        if args.merge_structured:
            result = merge_structured(result, json.loads(args.merge_structured.read_text()))
            _write_json(args.render, result)
        plot(result, args.figure or DEFAULT_FIGURE)
        print(markdown(result))
        if not args.no_readme and not result["smoke"]:
            from benchmarks._harness import splice_readme

            splice_readme("speed", markdown(result))
        return result

    cfg = SMOKE if args.smoke else FULL
    out = args.out or DEFAULT_OUT
    figure = args.figure or DEFAULT_FIGURE
    lengths = args.lengths or cfg["lengths"]
    N, r = cfg["batch"], cfg["hyper_width"]
    started = time.perf_counter()
    isolate = not (args.in_process or args.smoke)
    limit_s = None if args.time_limit is None else 60.0 * args.time_limit

    def log(*parts):
        print(*parts, flush=True)

    def out_of_time() -> str | None:
        if limit_s is not None and time.perf_counter() - started > limit_s:
            return (
                f"not run: the --time-limit of {args.time_limit:g} min was spent "
                f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
            )
        return None

    big = max(cfg["sizes"].values(), key=lambda s: theta_size(*s))
    matmul_D = theta_size(*big)
    gemm = _run_worker("gemm", {"D": matmul_D}, isolate)
    log(f"dense GEMM ({matmul_D} x {matmul_D}) @ ({matmul_D} x 64): {gemm['gflops']:.1f} GFLOP/s")
    state = {"gemm": gemm, "rows": [], "warp_vs_gru": [], "memory_rows": [], "inference": None}

    def save(complete: bool) -> dict:
        result = _assemble(state, cfg, args, matmul_D, complete, time.perf_counter() - started)
        _write_json(out, result)
        return result

    log(
        f"{'T':>5} {'D':>6} {'mode':>10} {'step_s':>9} {'reps':>4} {'peak_GB':>7} "
        f"{'GEMM_GF/s':>9} {'load':>5}"
    )
    sizes = [(theta_size(w, d), w, d) for w, d in cfg["sizes"].values()]
    # the rows up to T = 1024 first (the targets), then the side measurements, then the
    # longest sequences, so a time limit cuts the least informative rows
    short = [(D, w, d, T) for D, w, d in sizes for T in lengths if T <= 1024]
    long = [(D, w, d, T) for D, w, d in sizes for T in lengths if T > 1024]
    if args.part in ("side", "structured"):
        short, long = [], []
    for D, width, depth, T in short:
        state["rows"].append(_row(D, width, depth, T, N, r, cfg, args, isolate, out_of_time, log))
        save(False)

    structured = args.part in ("all", "side", "structured")
    if args.part in ("rows", "structured"):
        sizes, cfg = [], dict(cfg, memory_sizes=())
    log("inference")
    reason = out_of_time() or (
        f"not run: --part {args.part}" if args.part in ("rows", "structured") else None
    )
    spec = dict(cfg["inference"], reps=args.reps)
    spec["model_path"] = None if args.smoke else str(DEMO_MODEL)
    state["inference"] = {"error": reason} if reason else _run_worker("inference", spec, isolate)
    log(f"  {state['inference']}")
    save(False)

    log("WARP vs GRU of equal parameter count")
    for D, _, _ in sizes:
        match = next(
            (r_ for r_ in state["rows"] if r_["D_theta"] == D and r_["T"] == cfg["gru_length"]),
            None,
        )
        if match is None:  # --part side: the WARP times come from the rows at --merge-side
            width, depth = next(s_ for s_ in cfg["sizes"].values() if theta_size(*s_) == D)
            ref = {"params": _count(_warp(width, depth, cfg["gru_length"], r))}
            match = {"parallel_s": None, "sequential_s": None}
        else:
            ref = match.get("sequential") or match.get("parallel") or {}
        entry = {
            "D_theta": D,
            "T": cfg["gru_length"],
            "batch": N,
            "params": ref.get("params"),
            "warp_parallel_s": match["parallel_s"],
            "warp_sequential_s": match["sequential_s"],
        }
        reason = out_of_time()
        if entry["params"] and not reason:
            spec = {"params": entry["params"], "T": cfg["gru_length"], "batch": N}
            spec.update(reps=args.reps, budget_s=args.rep_budget)
            res = _run_worker("gru_step", spec, isolate)
            if "error" in res:
                entry["gru_error"] = res["error"]
            else:
                entry.update(
                    gru_hidden=res["hidden_size"],
                    gru_params=res["params"],
                    gru_s=res["median_s"],
                    gru_reps=res["reps"],
                    gru_peak_rss_gb=res["peak_rss_gb"],
                    gru_load_average=res["load_average"],
                )
        elif reason:
            entry["gru_error"] = reason
        log(
            f"  D {D}: params {entry['params']:,}  WARP par {entry['warp_parallel_s']}  "
            f"seq {entry['warp_sequential_s']}  GRU {entry.get('gru_s')}"
        )
        state["warp_vs_gru"].append(entry)
        save(False)

    log("peak memory vs D_theta")
    T_mem = cfg["memory_length"]
    for width, depth in cfg["memory_sizes"]:
        D = theta_size(width, depth)
        entry = {
            "D_theta": D,
            "dense_A_gb": 4 * D * D / 2**30,
            "dense_state_gb": 16 * D * D / 2**30,
        }
        reuse = next(
            (
                r_
                for r_ in state["rows"]
                if r_["D_theta"] == D and r_["T"] == T_mem and r_.get("sequential_s")
            ),
            None,
        )
        reason = None if reuse else out_of_time()
        if reuse:
            res = reuse["sequential"]
        elif reason:
            res = {"error": reason}
        else:
            spec = {"width": width, "depth": depth, "T": T_mem, "batch": N}
            spec.update(mode="sequential", hyper_width=r, reps=1, budget_s=0.0)
            res = _run_worker("warp_step", spec, isolate)
        if "error" in res:
            entry["error"] = res["error"]
        else:
            entry.update(
                peak_rss_gb=res["peak_rss_gb"],
                rss_start_gb=res["rss_start_gb"],
                step_s=res["median_s"],
            )
        log(
            f"  D {D}: peak RSS {entry.get('peak_rss_gb')} GB, "
            f"dense state {entry['dense_state_gb']:.3f} GB"
        )
        state["memory_rows"].append(entry)
        save(False)

    if structured:
        log(f"structured transitions: peak memory vs D_theta (sequential, T "
            f"{cfg['structured']['T']}, batch {cfg['structured']['batch']})")  # fmt: skip
        state["structured"], cache = [], {}
        for entry in structured_plan(cfg):
            row = structured_memory_row(entry, r, isolate, out_of_time, log, cache)
            state["structured"].append(row)
            save(False)
        sp = cfg["structured"]["speed"]
        log(f"structured transitions: training step (T {sp['T']}, batch {sp['batch']})")
        state["transitions"] = transition_speed(
            cfg, state["rows"], r, args, isolate, out_of_time, log, cache
        )
        save(False)

    for D, width, depth, T in long:
        state["rows"].append(_row(D, width, depth, T, N, r, cfg, args, isolate, out_of_time, log))
        save(False)

    result = save(True)
    plot(result, figure)
    log(markdown(result))
    if not args.smoke and not args.no_readme and out == DEFAULT_OUT:
        from benchmarks._harness import splice_readme

        splice_readme("speed", markdown(result))
    log(f"wrote {out}, {figure} in {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
