"""Speed and memory of WARP on CPU (issues 8, 9), each configuration in its own worker
process (its peak RSS is its own; sizes in `_speed_workers.FULL`): the training step
(teacher-forced, forward + backward + Adam) in both recurrence modes for T 64 to 4096 and
D_theta 982 and 4960, its recurrence's FLOP/s against a GEMM timed beside it; peak memory
per transition kind up to D_theta ~100k; the step per kind at D_theta ~5k. `--paper`
times the paper-MSD step instead (scan vs kernel rollout; the README's table of the two
algorithms), into `results/paper_speed.json`. A configuration estimated to need over 70 %
of the available memory is skipped, the reason recorded. About 30 min on 2 idle cores
(`--paper`: about 20).

    python -m benchmarks.speed            # results/speed.json and the README block
    python -m benchmarks.speed --paper    # results/paper_speed.json only
    python -m benchmarks.speed --render   # the README block from the JSON
"""

import json
import statistics
import time

from benchmarks import _harness as harness
from benchmarks import _speed_workers as work
from benchmarks._speed_report import markdown, targets

MEMORY_FRACTION = 0.7  # skip a configuration estimated to need more of the available memory
REP_BUDGET_S = 60.0  # stop timing a configuration once this many seconds were spent
BUDGET = "about 45 min on 2 otherwise idle CPU cores"
NOTE = (
    "Absolute times depend on the machine's load (the load average beside each configuration "
    "is in the JSON): compare within a row; each row's GEMM rate was measured beside it."
)


class Bench:
    """One run: its sizes, its workers' results by spec, and the result JSON so far."""

    def __init__(self, args):
        self.args, self.started = args, time.perf_counter()
        self.cfg = cfg = work.SMOKE if args.smoke else work.FULL
        self.N, self.r = cfg["batch"], cfg["hyper_width"]
        self.base = dict(hyper_width=self.r, reps=args.reps, budget_s=REP_BUDGET_S)
        self.runs: dict = {}  # by spec: the smoke sizes repeat some configurations
        machine_gb, speed = work.total_gb(), cfg["structured"]["speed"]
        command = "python -m benchmarks.speed" + " --smoke" * args.smoke
        result = dict(device=harness.device(), date=harness.stamp(), command=command)
        result.update(smoke=args.smoke, budget=BUDGET, note=NOTE, batch=self.N, hyper_width=self.r)
        result["rows"] = []
        limit = int((machine_gb * 2**30 / 16) ** 0.5)  # where 16 D^2 bytes fill the machine
        result["memory"] = dict(machine_gb=machine_gb, dense_A_limit_D=limit, structured=[])
        result["transitions"] = dict(T=speed["T"], batch=speed["batch"], rows=[])
        self.result = result

    def worker(self, kind: str, spec: dict) -> dict:
        """A worker in its own process (a smoke run: in this one), its progress printed."""
        key = json.dumps([kind, spec], sort_keys=True)
        if key not in self.runs:
            workers = work.WORKERS if self.args.smoke else None
            res = self.runs[key] = harness.run_worker("speed", kind, spec, workers=workers)
            took = f"{res['median_s']:.3g} s" if "median_s" in res else res.get("error", "done")
            print(f"{kind} {json.dumps(spec)}: {took[:120]}", flush=True)
        return self.runs[key]

    def step(self, entry: dict, mode: str, kind=None) -> tuple[dict, str | None]:
        """`entry`'s training step (root, T, D_theta, batch, A_entries, rank) in a worker, and
        why it has no timing (skipped for its memory, failed); with a transition `kind` (dense
        too) timed once after a warm-up under 2 s, without the GEMM rate."""
        T, D, N, (width, depth) = entry["T"], entry["D_theta"], entry["batch"], entry["root"]
        need = work.memory_estimate_gb(T, D, N, self.r, mode, entry["A_entries"])
        if need > MEMORY_FRACTION * (have := work.available_gb()):
            limit = f"{100 * MEMORY_FRACTION:.0f} % of the {have:.1f} GB available"
            return {}, f"skipped: estimated {need:.1f} GB > {limit}"
        spec = dict(self.base, width=width, depth=depth, T=T, batch=N, mode=mode)
        if kind is not None:
            spec.update(transition=kind, gemm=False, warmup_s=2.0, reps=1, budget_s=0.0)
            spec.update({"rank": entry["rank"]} if kind == "lowrank" else {})
        res = self.worker("warp_step", spec)
        return res, f"failed: {res['error']}" if "error" in res else None

    def save(self, complete: bool = False) -> dict:
        """The result JSON of what was measured so far, written to `--out`."""
        result = self.result
        result["rows"].sort(key=lambda r: (r["D_theta"], r["T"]))
        result.update(complete=complete, targets=targets(result["rows"]))
        result["wall_s"] = time.perf_counter() - self.started
        harness.write_json(self.args.out, result)
        return result


def both_modes(bench: Bench, entry: dict, kind=None) -> dict:
    """`entry` with its training step in both modes: per mode the worker's result,
    `{mode}_s`, `{mode}_reps` and the mode A prefers, or in `skipped` why not."""
    entry.update(parallel_s=None, sequential_s=None, skipped=[])
    for mode in work.MODES:
        res, reason = bench.step(entry, mode, kind)
        if reason:
            entry["skipped"].append(f"{mode} {reason}")
        else:
            entry.update({mode: res, f"{mode}_s": res["median_s"], f"{mode}_reps": res["reps"]})
            entry["preferred_mode"] = res["preferred_mode"]
    return entry


def row(bench: Bench, D: int, root, T: int) -> dict:
    """Both modes of one (T, D_theta) configuration, and the recurrence's FLOP rate."""
    N = bench.N
    out = dict(T=T, D_theta=D, batch=N, root=list(root), A_entries=D * D, recurrence_gflops=None)
    out["flops"] = work.flop_model(T, D, N, bench.r)
    if both_modes(bench, out)["sequential_s"]:
        gemm = statistics.mean(out["sequential"]["gemm_gflops"])
        out["recurrence_gflops"] = out["flops"]["sequential"] / out["sequential_s"] / 1e9
        out["recurrence_fraction"] = out["recurrence_gflops"] / gemm
    return out


def structured_memory_row(bench: Bench, entry: dict) -> dict:
    """One planned memory row (see `work.structured_plan`), or why it was skipped."""
    res, reason = bench.step(entry, "sequential", entry["kind"])
    if reason:
        return dict(entry, error=reason)
    return dict(entry, peak_rss_gb=res["peak_rss_gb"], step_s=res["median_s"])


def transition_speed(bench: Bench, kind: str) -> dict:
    """Both modes of the training step of `kind` at D_theta ~5k; dense from the rows (a
    dense step at this size takes minutes)."""
    speed, rank = bench.cfg["structured"]["speed"], bench.cfg["structured"]["rank"]
    root = speed["block_root" if kind == "block" else "root"]
    entry = dict(kind=kind, root=list(root), T=speed["T"], batch=speed["batch"], rank=rank)
    entry.update(work.model_sizes(*root, kind, rank))
    if kind != "dense":
        return both_modes(bench, entry, kind)
    same = (entry["T"], entry["D_theta"])
    ref = next(r for r in bench.result["rows"] if (r["T"], r["D_theta"]) == same)
    keys = ("parallel_s", "sequential_s", "skipped", "preferred_mode")
    return entry | {k: ref.get(k) for k in keys}


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


def measure(args) -> dict:
    """Every configuration, the JSON written after each block; returns the result."""
    bench = Bench(args)
    cfg, result = bench.cfg, bench.result
    sizes = sorted((work.model_sizes(*root)["D_theta"], root) for root in cfg["sizes"].values())
    gemm = bench.worker("gemm", {"D": sizes[-1][0]})
    result.update(matmul_gflops=gemm["gflops"], matmul_D=gemm["D"])
    # the rows up to T = 1024 first (the targets), the longest sequences last
    plan = [(D, root, T) for D, root in sizes for T in cfg["lengths"]]
    for D, root, T in [p for p in plan if p[2] <= 1024]:
        result["rows"].append(row(bench, D, root, T))
        bench.save()
    for entry in work.structured_plan(cfg):
        result["memory"]["structured"].append(structured_memory_row(bench, entry))
        bench.save()
    result["transitions"]["rows"] = [transition_speed(bench, kind) for kind in work.KINDS]
    for D, root, T in [p for p in plan if p[2] > 1024]:
        result["rows"].append(row(bench, D, root, T))
        bench.save()
    return bench.save(complete=True)


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes the JSON, figure and README block; returns the result."""
    parser = harness.parser("speed", __doc__)
    parser.add_argument("--reps", type=int, default=3, help="timed steps at most")
    parser.add_argument("--paper", action="store_true", help="only the paper-MSD rows")
    args = harness.parse(parser, argv)
    if args.paper:  # (a worker is never started with --paper)
        return paper(args)
    return harness.report(args, lambda: measure(args), markdown, workers=work.WORKERS)


if __name__ == "__main__":
    main()
