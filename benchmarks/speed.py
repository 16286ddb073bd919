"""Speed and memory of WARP on CPU: parallel vs sequential recurrence, FLOP/s, inference.

Each configuration runs in its own worker process, so that its peak RSS is its own:

- the training step (teacher-forced, forward + backward + Adam, compiled ahead of time)
  in `mode="parallel"` and `"sequential"`, T 64 to 4096, D_theta 982 and 4960, batch 64,
  r = 32, with the recurrence's FLOP/s against a dense GEMM timed beside each row;
- inference (`reconstruct` with the demo's trained model), WARP vs a GRU of equal
  parameter count, peak memory vs D_theta against the dense A's training state;
- structured transitions (issue 9): memory per kind up to D_theta ~100k and the training
  step per kind at D_theta ~5k (`_speed_workers.FULL` has every size);
- the paper-MSD rows, copied from `results/paper_speed.json` (`benchmarks.paper_speed`).

Timings are medians of steps after compilation (`harness.timed`); a configuration whose
estimated memory exceeds 70 % of the memory available is skipped with the reason
recorded. About 30 minutes on 2 idle CPU cores; `--smoke` runs tiny sizes in-process.

    python -m benchmarks.speed            # results/speed.json, figures/speed.png, README
    python -m benchmarks.speed --smoke --out /tmp/speed.json --figure /tmp/speed.png
    python -m benchmarks.speed --render   # figure and README block from the JSON
"""

import json
import statistics
import subprocess
import time
from datetime import UTC, datetime

from benchmarks import _harness as harness
from benchmarks import _speed_workers as work
from benchmarks._speed_report import markdown, plot, targets

MEMORY_FRACTION = 0.7  # skip a configuration estimated to need more of the available memory


class Bench:
    """One run's settings and what it has measured so far (saved after every row)."""

    def __init__(self, args):
        self.args, self.started = args, time.perf_counter()
        self.cfg = work.SMOKE if args.smoke else work.FULL
        self.N, self.r = self.cfg["batch"], self.cfg["hyper_width"]
        self.runs: dict = {}  # by spec: the smoke sizes repeat some configurations
        self.state = {
            "rows": [],
            "warp_vs_gru": [],
            "memory_rows": [],
            "structured": [],
            "transitions": [],
            "inference": {"error": "not reached"},
        }

    def worker(self, kind: str, spec: dict) -> dict:
        """A worker in its own process (a smoke run: in this one), its progress printed."""
        key = json.dumps([kind, spec], sort_keys=True)
        if key not in self.runs:
            workers = work.WORKERS if self.args.smoke else None
            res = self.runs[key] = harness.run_worker("speed", kind, spec, workers=workers)
            shown = ("transition", "mode", "T", "width", "depth", "batch", "params", "D")
            what = ", ".join(f"{k} {spec[k]}" for k in shown if k in spec)
            took = f"{res['median_s']:.3g} s" if "median_s" in res else res.get("error", "done")
            print(f"{kind} ({what}): {took[:120]}", flush=True)
        return self.runs[key]

    def step(self, width, depth, T, batch, mode, kind=None, rank=None, **extra) -> dict:
        """A WARP training step; with a transition `kind` (structured-transition rows,
        dense too) timed once, after a warm-up under 2 s, without the GEMM rate."""
        spec = dict(
            width=width,
            depth=depth,
            T=T,
            batch=batch,
            mode=mode,
            hyper_width=self.r,
            reps=self.args.reps,
            budget_s=self.args.rep_budget,
        )
        if kind is not None:
            spec.update(transition=kind, gemm=False, warmup_s=2.0, reps=1, budget_s=0.0)
        spec.update({"rank": rank} if kind == "lowrank" else {}, **extra)
        return self.worker("warp_step", spec)

    def save(self, complete: bool = False) -> dict:
        result = _result(self, complete)
        harness.write_json(self.args.out, result)
        return result


def too_big(need_gb: float) -> str | None:
    """Why a configuration estimated to need `need_gb` is skipped, if it is."""
    have = work.available_gb()
    if need_gb > MEMORY_FRACTION * have:
        return (
            f"skipped: estimated {need_gb:.1f} GB > {100 * MEMORY_FRACTION:.0f} % of the "
            f"{have:.1f} GB available"
        )
    return None


def row(bench: Bench, D: int, width: int, depth: int, T: int) -> dict:
    """Both modes of one (T, D_theta) configuration, each in its own worker."""
    N, r = bench.N, bench.r
    out = {
        "T": T,
        "D_theta": D,
        "batch": N,
        "parallel_s": None,
        "sequential_s": None,
        "recurrence_gflops": None,
        "flops": work.flop_model(T, D, N, r),
        "skipped": [],
    }
    for mode in work.MODES:
        reason = too_big(work.memory_estimate_gb(T, D, N, r, mode))
        if reason is None:
            forward = mode == "sequential" and T == bench.cfg["gru_length"]
            res = out[mode] = bench.step(width, depth, T, N, mode, forward=forward)
            reason = "error" in res and f"failed: {res['error']}"
        if reason:
            out["skipped"].append(f"{mode} {reason}")
        else:
            out[f"{mode}_s"], out[f"{mode}_reps"] = res["median_s"], res["reps"]
    if out["sequential_s"]:
        seq = out["sequential"]
        gemm = statistics.mean(seq["gemm_gflops"])
        out["recurrence_gflops"] = out["flops"]["sequential"] / out["sequential_s"] / 1e9
        out["recurrence_fraction"] = out["recurrence_gflops"] / gemm
        if "forward_s" in seq:
            out["recurrence_forward_gflops"] = 2.0 * N * (T - 1) * D * D / seq["forward_s"] / 1e9
            out["recurrence_forward_fraction"] = out["recurrence_forward_gflops"] / gemm
    return out


def warp_vs_gru(bench: Bench, D: int) -> dict:
    """A GRU of the parameter count of the WARP row at (`gru_length`, D)."""
    T = bench.cfg["gru_length"]
    match = next(r for r in bench.state["rows"] if (r["D_theta"], r["T"]) == (D, T))
    params = (match.get("sequential") or match.get("parallel") or {}).get("params")
    entry = {
        "D_theta": D,
        "T": T,
        "batch": bench.N,
        "params": params,
        "warp_parallel_s": match["parallel_s"],
        "warp_sequential_s": match["sequential_s"],
    }
    if not params:
        return entry
    res = bench.worker(
        "gru_step",
        dict(
            params=params, T=T, batch=bench.N, reps=bench.args.reps, budget_s=bench.args.rep_budget
        ),
    )
    if "error" in res:
        return dict(entry, gru_error=res["error"])
    return dict(
        entry,
        gru_hidden=res["hidden_size"],
        gru_params=res["params"],
        gru_s=res["median_s"],
        gru_reps=res["reps"],
        gru_peak_rss_gb=res["peak_rss_gb"],
        gru_load_average=res["load_average"],
    )


def memory_row(bench: Bench, width: int, depth: int) -> dict:
    """Peak RSS of a sequential step at (`memory_length`, D) (a row of that size is reused)."""
    D, T = work.theta_size(width, depth), bench.cfg["memory_length"]
    entry = {"D_theta": D, "dense_A_gb": 4 * D * D / 2**30, "dense_state_gb": 16 * D * D / 2**30}
    same = [r for r in bench.state["rows"] if (r["D_theta"], r["T"]) == (D, T)]
    if same and same[0]["sequential_s"]:
        res = same[0]["sequential"]
    else:
        res = bench.step(width, depth, T, bench.N, "sequential", reps=1, budget_s=0.0)
    if "error" in res:
        return dict(entry, error=res["error"])
    return dict(
        entry,
        peak_rss_gb=res["peak_rss_gb"],
        rss_start_gb=res["rss_start_gb"],
        step_s=res["median_s"],
    )


def structured_memory_row(bench: Bench, entry: dict) -> dict:
    """One planned memory row (see `structured_plan`), or why it was skipped."""
    T, N, D, kind = entry["T"], entry["batch"], entry["D_theta"], entry["kind"]
    need = work.memory_estimate_gb(T, D, N, bench.r, "sequential", entry["A_entries"])
    reason = too_big(need)
    res = {} if reason else bench.step(*entry["root"], T, N, "sequential", kind, entry.get("rank"))
    out = dict(entry, estimate_gb=need)
    if reason or "error" in res:
        return dict(out, error=reason or f"failed: {res['error']}")
    return dict(
        out,
        peak_rss_gb=res["peak_rss_gb"],
        rss_start_gb=res["rss_start_gb"],
        step_s=res["median_s"],
        reps=res["reps"],
        compile_s=res["compile_s"],
        load_average=res["load_average"],
    )


def transition_speed(bench: Bench, kind: str) -> dict:
    """Both modes of the training step of `kind` at D_theta ~5k; dense from the rows."""
    import equinox as eqx
    import jax.numpy as jnp

    import warp_phys as wp

    sp = bench.cfg["structured"]["speed"]
    (width, depth), T, N = sp["block_root" if kind == "block" else "root"], sp["T"], sp["batch"]
    D = work.theta_size(width, depth)
    entry = {
        "kind": kind,
        "root": [width, depth],
        "D_theta": D,
        "T": T,
        "batch": N,
        "A_entries": work.transition_entries(kind, width, depth, sp["rank"]),
        "parallel_s": None,
        "sequential_s": None,
        "skipped": [],
    }
    if kind == "lowrank":
        entry["rank"] = sp["rank"]
    if kind == "dense":
        dense = eqx.filter_eval_shape(wp.DenseTransition, D, jnp.float32)  # no D x D array
        ref = next(r for r in bench.state["rows"] if (r["T"], r["D_theta"]) == (T, D))
        return dict(
            entry,
            source="the rows of this run (same T, D_theta, batch)",
            preferred_mode=dense.preferred_mode(T, 2),
            parallel_s=ref["parallel_s"],
            sequential_s=ref["sequential_s"],
        )
    for mode in work.MODES:
        res = bench.step(width, depth, T, N, mode, kind, sp["rank"])
        if "error" in res:
            entry["skipped"].append(f"{mode} failed: {res['error']}")
            continue
        entry.update(
            {
                f"{mode}_s": res["median_s"],
                f"{mode}_reps": res["reps"],
                f"{mode}_peak_rss_gb": res["peak_rss_gb"],
                f"{mode}_load_average": res["load_average"],
                "preferred_mode": res["preferred_mode"],
            }
        )
    return entry


def paper_msd() -> dict:
    """The paper-MSD rows of `paper_speed.json` and where they come from."""
    path = harness.RESULTS / "paper_speed.json"
    if not path.exists():
        return {"rows": [], "source": None, "note": f"{path} not found"}
    paper = harness.read_json(path)
    keys = (
        "batch",
        "algorithm",
        "step_s",
        "peak_rss_gb",
        "cpu_s",
        "theta_size",
        "feature_size",
        "seq_len",
        "steps_s",
        "gemm_gflops",
    )
    rows = [
        {k: r[k] for k in keys if k in r} | {"reps": len(r["steps_s"])} for r in paper["paper_msd"]
    ]
    # older results have no date of their own: their last commit's
    git = ["git", "log", "-1", "--format=%cI", "--", str(path)]
    measured = (
        paper.get("date")
        or subprocess.run(git, capture_output=True, text=True, cwd=harness.ROOT).stdout.strip()
    )
    return {
        "rows": rows,
        "source": str(path.relative_to(harness.ROOT)),
        "measured": measured,
        "device": paper.get("device"),
        "smoke": paper.get("smoke", False),
    }


def _result(bench: Bench, complete: bool) -> dict:
    """The JSON result from what has been measured so far."""
    cfg, state, args = bench.cfg, bench.state, bench.args
    rows = sorted(state["rows"], key=lambda r: (r["D_theta"], r["T"]))
    machine_gb = work.total_gb()
    dense_limit = int((machine_gb * 2**30 / 16) ** 0.5)  # 16 D^2 bytes fill the memory
    paper = paper_msd()
    sp = cfg["structured"]["speed"]
    return {
        "device": harness.device(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.speed" + " --smoke" * args.smoke,
        "smoke": args.smoke,
        "complete": complete,
        "budget": "about 45 min on 2 otherwise idle CPU cores",
        "note": "Absolute times depend on the machine's load (the load average beside each "
        "configuration is in the JSON): compare within a row; each row's GEMM rate "
        "was measured beside it.",
        "matmul_gflops": state["gemm"]["gflops"],
        "matmul_D": state["gemm"]["D"],
        "hyper_width": bench.r,
        "rows": rows,
        "targets": targets(rows),
        "warp_vs_gru": state["warp_vs_gru"],
        "gru_length": cfg["gru_length"],
        "memory": {
            "T": cfg["memory_length"],
            "batch": bench.N,
            "mode": "sequential",
            "machine_gb": machine_gb,
            "dense_A_limit_D": dense_limit,
            "structured": state["structured"],
            "rows": state["memory_rows"],
        },
        "transitions": {"T": sp["T"], "batch": sp["batch"], "rows": state["transitions"]},
        "inference": state["inference"],
        "paper_msd": paper.pop("rows"),
        "paper_msd_source": paper,
        "wall_s": time.perf_counter() - bench.started,
    }


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes the JSON, figure and README block; returns the result."""
    parser = harness.parser("speed", __doc__, figure=True)
    parser.add_argument("--reps", type=int, default=3, help="timed steps at most")
    parser.add_argument(
        "--rep-budget",
        type=float,
        default=60.0,
        help="stop timing a configuration once this many seconds were spent",
    )
    args = harness.parse(parser, argv)
    if args.worker:
        return harness.serve(work.WORKERS, args.worker)

    def draw(result):
        plot(result, args.figure)

    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown, draw)
    bench = Bench(args)
    cfg, state = bench.cfg, bench.state
    sizes = sorted((work.theta_size(w, d), w, d) for w, d in cfg["sizes"].values())
    state["gemm"] = bench.worker("gemm", {"D": sizes[-1][0]})
    print(f"dense GEMM at D = {sizes[-1][0]}: {state['gemm']['gflops']:.1f} GFLOP/s", flush=True)
    # the rows up to T = 1024 first (the targets), the longest sequences last
    plan = [(D, w, d, T) for D, w, d in sizes for T in cfg["lengths"]]
    for D, width, depth, T in [p for p in plan if p[3] <= 1024]:
        state["rows"].append(row(bench, D, width, depth, T))
        bench.save()
    demo = None if args.smoke else "runs/demo/best.eqx"  # the demo's trained model
    state["inference"] = bench.worker(
        "inference", dict(cfg["inference"], reps=args.reps, model_path=demo)
    )
    state["warp_vs_gru"] = [warp_vs_gru(bench, D) for D, _, _ in sizes]
    state["memory_rows"] = [memory_row(bench, w, d) for w, d in cfg["memory_sizes"]]
    bench.save()
    for entry in work.structured_plan(cfg):
        state["structured"].append(structured_memory_row(bench, entry))
        bench.save()
    state["transitions"] = [transition_speed(bench, kind) for kind in work.KINDS]
    for D, width, depth, T in [p for p in plan if p[3] > 1024]:
        state["rows"].append(row(bench, D, width, depth, T))
        bench.save()
    return harness.finish(args, bench.save(complete=True), markdown, draw)


if __name__ == "__main__":
    main()
