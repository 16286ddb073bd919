"""Speed and memory of WARP on CPU (issue 8; structured transitions: issue 9).

Each configuration runs in its own worker process, so that its peak RSS is its own
(sizes in `_speed_workers.FULL`): the training step (teacher-forced, forward + backward
+ Adam, compiled ahead of time) in both recurrence modes, T 64 to 4096, D_theta 982 and
4960, with the recurrence's FLOP/s against a GEMM timed beside each row; inference with
the demo's trained model; a GRU of equal parameter count; peak memory vs D_theta, dense
and per structured transition kind up to D_theta ~100k; the step per kind at D_theta ~5k.
The paper-MSD rows (scan vs kernel rollout, batch 64 and 1024) are measured by `--paper`
into `results/paper_speed.json` and copied from there. A configuration estimated to need
over 70 % of the available memory is skipped with the reason recorded. About 30 minutes
on 2 idle CPU cores (`--paper`: about 20 more); `--smoke` runs tiny sizes in this process.

    python -m benchmarks.speed            # results/speed.json, figures/speed.png, README
    python -m benchmarks.speed --paper    # results/paper_speed.json only
    python -m benchmarks.speed --render   # figure and README block from the JSON
"""

import json
import statistics
import time

from benchmarks import _harness as harness
from benchmarks import _speed_workers as work
from benchmarks._speed_report import markdown, plot, targets

MEMORY_FRACTION = 0.7  # skip a configuration estimated to need more of the available memory
BUDGET = "about 45 min on 2 otherwise idle CPU cores"
NOTE = (
    "Absolute times depend on the machine's load (the load average beside each configuration "
    "is in the JSON): compare within a row; each row's GEMM rate was measured beside it."
)
PAPER = harness.RESULTS / "paper_speed.json"


class Bench:
    """One run: its sizes, its workers' results by spec, and what it has measured so far."""

    def __init__(self, args):
        self.args, self.started = args, time.perf_counter()
        self.cfg = work.SMOKE if args.smoke else work.FULL
        self.N, self.r = self.cfg["batch"], self.cfg["hyper_width"]
        self.base = dict(hyper_width=self.r, reps=args.reps, budget_s=args.rep_budget)
        self.runs: dict = {}  # by spec: the smoke sizes repeat some configurations
        self.rows, self.gru, self.memory, self.structured, self.transitions = [], [], [], [], []
        self.gemm, self.inference = {}, {"error": "not reached"}

    def worker(self, kind: str, spec: dict) -> dict:
        """A worker in its own process (a smoke run: in this one), its progress printed."""
        key = json.dumps([kind, spec], sort_keys=True)
        if key not in self.runs:
            workers = work.WORKERS if self.args.smoke else None
            res = self.runs[key] = harness.run_worker("speed", kind, spec, workers=workers)
            took = f"{res['median_s']:.3g} s" if "median_s" in res else res.get("error", "done")
            print(f"{kind} {json.dumps(spec)}: {took[:120]}", flush=True)
        return self.runs[key]

    def step(self, root, T: int, batch: int, mode: str, kind=None, rank=None, **extra) -> dict:
        """A WARP training step; with a transition `kind` (structured-transition rows,
        dense too) timed once, after a warm-up under 2 s, without the GEMM rate."""
        spec = dict(self.base, width=root[0], depth=root[1], T=T, batch=batch, mode=mode)
        if kind is not None:
            spec.update(transition=kind, gemm=False, warmup_s=2.0, reps=1, budget_s=0.0)
            spec.update({"rank": rank} if kind == "lowrank" else {})
        return self.worker("warp_step", dict(spec, **extra))

    def save(self, complete: bool = False) -> dict:
        """The JSON result of what was measured so far, written to `--out`."""
        cfg, sp, machine_gb = self.cfg, self.cfg["structured"]["speed"], work.total_gb()
        rows = sorted(self.rows, key=lambda r: (r["D_theta"], r["T"]))
        memory = dict(T=cfg["memory_length"], batch=self.N, mode="sequential")
        memory.update(machine_gb=machine_gb, dense_A_limit_D=int((machine_gb * 2**30 / 16) ** 0.5))
        command = "python -m benchmarks.speed" + " --smoke" * self.args.smoke
        result = dict(device=harness.device(), date=harness.stamp(), command=command)
        result.update(smoke=self.args.smoke, complete=complete, budget=BUDGET, note=NOTE)
        result.update(hyper_width=self.r, matmul_gflops=self.gemm["gflops"])
        result.update(matmul_D=self.gemm["D"], rows=rows, targets=targets(rows))
        result.update(warp_vs_gru=self.gru, gru_length=cfg["gru_length"], inference=self.inference)
        result["memory"] = dict(memory, structured=self.structured, rows=self.memory)
        result["transitions"] = dict(T=sp["T"], batch=sp["batch"], rows=self.transitions)
        result.update(paper_msd_rows(), wall_s=time.perf_counter() - self.started)
        harness.write_json(self.args.out, result)
        return result


def too_big(need_gb: float) -> str | None:
    """Why a configuration estimated to need `need_gb` is skipped, if it is."""
    have = work.available_gb()
    if need_gb > MEMORY_FRACTION * have:
        limit = f"{100 * MEMORY_FRACTION:.0f} % of the {have:.1f} GB available"
        return f"skipped: estimated {need_gb:.1f} GB > {limit}"
    return None


def measured(res: dict, reason=None) -> str | None:
    """Why a worker's result `res` has no timing (skipped or failed), if it has none."""
    return reason or ("error" in res and f"failed: {res['error']}") or None


def row(bench: Bench, D: int, root, T: int) -> dict:
    """Both modes of one (T, D_theta) configuration, each in its own worker."""
    N = bench.N
    out = dict(T=T, D_theta=D, batch=N, parallel_s=None, sequential_s=None)
    out.update(recurrence_gflops=None, flops=work.flop_model(T, D, N, bench.r), skipped=[])
    for mode in work.MODES:
        reason = too_big(work.memory_estimate_gb(T, D, N, bench.r, mode))
        forward = mode == "sequential" and T == bench.cfg["gru_length"]
        res = {} if reason else bench.step(root, T, N, mode, forward=forward)
        if reason := measured(res, reason):
            out["skipped"].append(f"{mode} {reason}")
        else:
            out[mode], out[f"{mode}_s"], out[f"{mode}_reps"] = res, res["median_s"], res["reps"]
    if out["sequential_s"]:
        seq, flops = out["sequential"], 2.0 * N * (T - 1) * D * D
        gemm = statistics.mean(seq["gemm_gflops"])
        out["recurrence_gflops"] = out["flops"]["sequential"] / out["sequential_s"] / 1e9
        out["recurrence_fraction"] = out["recurrence_gflops"] / gemm
        if "forward_s" in seq:
            out["recurrence_forward_gflops"] = flops / seq["forward_s"] / 1e9
            out["recurrence_forward_fraction"] = out["recurrence_forward_gflops"] / gemm
    return out


def warp_vs_gru(bench: Bench, D: int) -> dict:
    """A GRU of the parameter count of the WARP row at (`gru_length`, D)."""
    T = bench.cfg["gru_length"]
    match = next(r for r in bench.rows if (r["D_theta"], r["T"]) == (D, T))
    params = (match.get("sequential") or match.get("parallel") or {}).get("params")
    entry = dict(D_theta=D, T=T, batch=bench.N, params=params)
    entry.update(warp_parallel_s=match["parallel_s"], warp_sequential_s=match["sequential_s"])
    res = bench.worker("gru_step", dict(bench.base, params=params, T=T, batch=bench.N))
    if "error" in res:
        return dict(entry, gru_error=res["error"])
    names = dict(hidden="hidden_size", params="params", s="median_s", reps="reps")
    names.update(peak_rss_gb="peak_rss_gb", load_average="load_average")
    return entry | {f"gru_{name}": res[key] for name, key in names.items()}


def memory_row(bench: Bench, root) -> dict:
    """Peak RSS of a sequential step at (`memory_length`, D) (a row of that size is reused)."""
    D, T = work.theta_size(*root), bench.cfg["memory_length"]
    entry = {"D_theta": D, "dense_A_gb": 4 * D * D / 2**30, "dense_state_gb": 16 * D * D / 2**30}
    same = [r for r in bench.rows if (r["D_theta"], r["T"]) == (D, T) and r["sequential_s"]]
    res = same[0]["sequential"] if same else bench.step(root, T, bench.N, "sequential", reps=1)
    if "error" in res:
        return dict(entry, error=res["error"])
    keys = ("peak_rss_gb", "rss_start_gb")
    return entry | {k: res[k] for k in keys} | {"step_s": res["median_s"]}


def structured_memory_row(bench: Bench, entry: dict) -> dict:
    """One planned memory row (see `work.structured_plan`), or why it was skipped."""
    T, N, D, kind = entry["T"], entry["batch"], entry["D_theta"], entry["kind"]
    need = work.memory_estimate_gb(T, D, N, bench.r, "sequential", entry["A_entries"])
    reason = too_big(need)
    res = {} if reason else bench.step(entry["root"], T, N, "sequential", kind, entry.get("rank"))
    if reason := measured(res, reason):
        return dict(entry, estimate_gb=need, error=reason)
    keys = ("peak_rss_gb", "rss_start_gb", "reps", "compile_s", "load_average")
    return dict(entry, estimate_gb=need) | {k: res[k] for k in keys} | {"step_s": res["median_s"]}


def transition_speed(bench: Bench, kind: str) -> dict:
    """Both modes of the training step of `kind` at D_theta ~5k; dense from the rows."""
    sp = bench.cfg["structured"]["speed"]
    root, T, N = sp["block_root" if kind == "block" else "root"], sp["T"], sp["batch"]
    D, entries = work.theta_size(*root), work.transition_entries(kind, *root, sp["rank"])
    entry = dict(kind=kind, root=list(root), D_theta=D, T=T, batch=N, A_entries=entries)
    entry.update(parallel_s=None, sequential_s=None, skipped=[])
    entry.update({"rank": sp["rank"]} if kind == "lowrank" else {})
    if kind == "dense":  # a dense step at this size takes minutes: the rows have it
        ref = next(r for r in bench.rows if (r["T"], r["D_theta"]) == (T, D))
        runs = [ref.get(m) or {} for m in work.MODES]
        preferred = next((run["preferred_mode"] for run in runs if "preferred_mode" in run), None)
        source = "the rows of this run (same T, D_theta, batch)"
        entry.update(source=source, preferred_mode=preferred)
        return entry | {f"{m}_s": ref[f"{m}_s"] for m in work.MODES}
    for mode in work.MODES:
        res = bench.step(root, T, N, mode, kind, sp["rank"])
        if "error" in res:
            entry["skipped"].append(f"{mode} failed: {res['error']}")
            continue
        entry.update({f"{mode}_{k}": res[k] for k in ("peak_rss_gb", "load_average")})
        entry.update({f"{mode}_s": res["median_s"], f"{mode}_reps": res["reps"]})
        entry["preferred_mode"] = res["preferred_mode"]
    return entry


def paper_msd_rows() -> dict:
    """`paper_msd` (the rows of `results/paper_speed.json`) and `paper_msd_source`."""
    if not PAPER.exists():
        return dict(paper_msd=[], paper_msd_source={"source": None, "note": f"{PAPER} not found"})
    paper, keys = harness.read_json(PAPER), ("batch", "algorithm", "step_s", "peak_rss_gb")
    keys += ("cpu_s", "theta_size", "feature_size", "seq_len", "steps_s", "gemm_gflops")
    rows = [{k: r[k] for k in keys if k in r} for r in paper["paper_msd"]]
    rows = [dict(r, reps=len(r["steps_s"])) for r in rows]
    source = dict(source=str(PAPER.relative_to(harness.ROOT)), measured=paper["date"])
    return dict(paper_msd=rows, paper_msd_source=dict(source, device=paper["device"]))


def paper(args) -> dict:
    """`--paper`: the paper-MSD step, scan and kernel, at each batch, into paper_speed.json
    (from batch 512 on one timed step without warm-up: a step takes minutes)."""
    rows = []
    for batch in [3] if args.smoke else [64, 1024]:
        for algorithm in ("scan", "kernel"):
            spec = dict(batch=batch, algorithm=algorithm, smoke=args.smoke)
            spec.update(reps=1, warmup=0) if batch >= 512 else spec.update(reps=args.reps, warmup=1)
            res = harness.run_worker("speed", "paper_step", spec)
            rows.append(harness.checked(res, f"paper step ({batch}, {algorithm})"))
            print(f"batch {batch}, {algorithm}: {rows[-1]['step_s']:.3g} s per step", flush=True)
    result = dict(device=harness.device(), date=harness.stamp(), smoke=args.smoke, paper_msd=rows)
    harness.write_json(args.out.with_name("paper_speed" + "_smoke" * args.smoke + ".json"), result)
    return result


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes the JSON, figure and README block; returns the result."""
    parser = harness.parser("speed", __doc__, figure=True)
    parser.add_argument("--reps", type=int, default=3, help="timed steps at most")
    what = "stop timing a configuration once this many seconds were spent"
    parser.add_argument("--rep-budget", type=float, default=60.0, help=what)
    parser.add_argument("--paper", action="store_true", help="only the paper-MSD rows")
    args = harness.parse(parser, argv)
    if args.worker:
        return harness.serve(work.WORKERS, args.worker)
    if args.paper:
        return paper(args)
    draw = lambda result: plot(result, args.figure)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown, draw)
    bench = Bench(args)
    cfg = bench.cfg
    sizes = sorted((work.theta_size(*root), root) for root in cfg["sizes"].values())
    bench.gemm = bench.worker("gemm", {"D": sizes[-1][0]})
    # the rows up to T = 1024 first (the targets), the longest sequences last
    plan = [(D, root, T) for D, root in sizes for T in cfg["lengths"]]
    for D, root, T in [p for p in plan if p[2] <= 1024]:
        bench.rows.append(row(bench, D, root, T))
        bench.save()
    demo = None if args.smoke else "runs/demo/best.eqx"  # the demo's trained model
    spec = dict(cfg["inference"], reps=args.reps, model_path=demo)
    bench.inference = bench.worker("inference", spec)
    bench.gru = [warp_vs_gru(bench, D) for D, _ in sizes]
    bench.memory = [memory_row(bench, root) for root in cfg["memory_sizes"]]
    bench.save()
    for entry in work.structured_plan(cfg):
        bench.structured.append(structured_memory_row(bench, entry))
        bench.save()
    bench.transitions = [transition_speed(bench, kind) for kind in work.KINDS]
    for D, root, T in [p for p in plan if p[2] > 1024]:
        bench.rows.append(row(bench, D, root, T))
        bench.save()
    return harness.finish(args, bench.save(complete=True), markdown, draw)


if __name__ == "__main__":
    main()
