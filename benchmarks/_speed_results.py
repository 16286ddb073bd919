"""The speed benchmark's JSON result: one row from its two workers, the targets, the
assembled result, the paper-MSD rows, the merges of a re-run's rows or a side run, and
the atomic JSON write."""

import datetime
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks._speed_report import _analysis
from benchmarks._speed_workers import (
    DATA_SIZE,
    MODES,
    ROOT,
    _run_worker,
    available_gb,
    flop_model,
    memory_estimate_gb,
    root_tensor_sizes,
    theta_size,
    total_gb,
    transition_entries,
)

PAPER_SPEED = ROOT / "benchmarks" / "results" / "paper_speed.json"
MEMORY_FRACTION = 0.7  # skip a configuration estimated to need more of the available memory
# structured-transition rows: a first step (after compilation) of at least this many
# seconds is the timed step itself, no warm-up before it (keeps those rows to minutes)
STRUCTURED_WARMUP_S = 2.0


def _device() -> str:
    from benchmarks._harness import device

    return device()


def _git_date(path: Path) -> str | None:
    done = subprocess.run(
        ["git", "log", "-1", "--format=%cI", "--", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return done.stdout.strip() or None


def paper_msd_rows(remeasure: bool, smoke: bool) -> dict:
    """The paper-MSD scan vs kernel rows from `paper_speed.json` (re-measured first
    with `benchmarks.paper_speed` when `remeasure`)."""
    from benchmarks import paper_speed

    source = PAPER_SPEED
    if remeasure:
        if smoke:
            source = Path(tempfile.mkdtemp()) / "paper_speed.json"
            paper_speed.main(["--smoke", "--reps", "1", "--warmup", "0", "--out", str(source)])
        else:
            paper_speed.main(["--out", str(source)])
    if not source.exists():
        return {"rows": [], "source": None, "note": f"{source} not found"}
    result = json.loads(source.read_text())
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
    rows = [{k: row[k] for k in keys if k in row} for row in result.get("paper_msd", [])]
    for row in rows:
        row["reps"] = len(row.get("steps_s", [])) or None
    measured = (
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        if remeasure
        else _git_date(source)
        or datetime.datetime.fromtimestamp(source.stat().st_mtime).isoformat()
    )
    return {
        "rows": rows,
        "source": str(source.relative_to(ROOT)) if source.is_relative_to(ROOT) else str(source),
        "measured": measured,
        "remeasured_in_this_run": remeasure,
        "device": result.get("device"),
        "smoke": result.get("smoke", False),
    }


def _write_json(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _row(D, width, depth, T, N, r, cfg, args, isolate, out_of_time, log) -> dict:
    """Both modes of one (T, D_theta) configuration, each in its own worker."""
    row = {
        "T": T,
        "D_theta": D,
        "batch": N,
        "parallel_s": None,
        "sequential_s": None,
        "recurrence_gflops": None,
        "flops": flop_model(T, D, N, r),
        "skipped": [],
    }
    for mode in MODES:
        reason = out_of_time()
        need, have = memory_estimate_gb(T, D, N, r, mode), available_gb()
        if reason is None and need > MEMORY_FRACTION * have:
            reason = (
                f"skipped: estimated {need:.1f} GB > "
                f"{100 * MEMORY_FRACTION:.0f} % of the {have:.1f} GB available"
            )
        if reason:
            row["skipped"].append(f"{mode} {reason}")
            log(f"{T:>5} {D:>6} {mode:>10}   {reason}")
            continue
        spec = {"width": width, "depth": depth, "T": T, "batch": N, "mode": mode}
        spec.update(hyper_width=r, reps=args.reps, budget_s=args.rep_budget)
        spec["forward"] = mode == "sequential" and T == cfg["gru_length"]
        res = _run_worker("warp_step", spec, isolate)
        row[mode] = res
        if "error" in res:
            row["skipped"].append(f"{mode} failed: {res['error']}")
            log(f"{T:>5} {D:>6} {mode:>10}   failed: {res['error'][:100]}")
            continue
        row[f"{mode}_s"] = res["median_s"]
        row[f"{mode}_reps"] = res["reps"]
        log(
            f"{T:>5} {D:>6} {mode:>10} {res['median_s']:>9.3f} {res['reps']:>4} "
            f"{res['peak_rss_gb']:>7.2f} {statistics.mean(res['gemm_gflops']):>9.1f} "
            f"{max(res['load_average']):>5.1f}"
        )
    seq = row.get("sequential")
    if row["sequential_s"]:
        gemm = statistics.mean(seq["gemm_gflops"])
        row["recurrence_gflops"] = row["flops"]["sequential"] / row["sequential_s"] / 1e9
        row["recurrence_fraction"] = row["recurrence_gflops"] / gemm
        if "forward_s" in seq:
            fwd = 2.0 * N * (T - 1) * D * D / seq["forward_s"] / 1e9
            row["recurrence_forward_gflops"] = fwd
            row["recurrence_forward_fraction"] = fwd / gemm
    return row


def transition_kinds() -> tuple[str, ...]:
    """Every transition kind the package has (`warp_phys._transitions.TRANSITIONS`)."""
    from warp_phys._transitions import TRANSITIONS

    return tuple(TRANSITIONS)


def structured_plan(cfg: dict, kinds=None) -> list[dict]:
    """The memory rows per transition kind that `cfg["structured"]` asks for, before
    running them: kind, root (width, depth), D_theta, A's entries and, for block, the
    block sizes' sum of D_b^2. Block uses `block_roots` (many small tensors: its memory is
    sum_b D_b^2, dominated by the largest tensor), every other kind `roots`."""
    sc = cfg["structured"]
    plan = []
    for kind in kinds or transition_kinds():
        for width, depth in sc["block_roots"] if kind == "block" else sc["roots"]:
            entry = {
                "kind": kind,
                "root": [width, depth],
                "D_theta": theta_size(width, depth),
                "A_entries": transition_entries(kind, width, depth, sc["rank"]),
                "T": sc["T"],
                "batch": sc["batch"],
                "mode": "sequential",
            }
            if kind == "lowrank":
                entry["rank"] = sc["rank"]
            if kind == "block":
                sizes = root_tensor_sizes(width, depth)
                entry.update(blocks=len(sizes), largest_block=max(sizes))
            entry["A_state_gb"] = 16 * entry["A_entries"] / 2**30
            plan.append(entry)
    return plan


def _cached_worker(spec: dict, isolate: bool, cache: dict | None) -> dict:
    """`_run_worker("warp_step", spec)`, run once per distinct spec within `cache` (the
    smoke sizes make a memory row and a step-table entry the same configuration)."""
    key = json.dumps(spec, sort_keys=True)
    if cache is not None and key in cache:
        return cache[key]
    res = _run_worker("warp_step", spec, isolate)
    if cache is not None:
        cache[key] = res
    return res


def structured_memory_row(
    entry: dict, r: int, isolate: bool, out_of_time, log, cache: dict | None = None
) -> dict:
    """One planned memory row (see `structured_plan`) run in its own worker, or skipped
    with the reason (time limit, or the memory estimate over 70 % of what is available)."""
    row = dict(entry)
    T, N, D = entry["T"], entry["batch"], entry["D_theta"]
    need, have = memory_estimate_gb(T, D, N, r, "sequential", entry["A_entries"]), available_gb()
    reason = out_of_time()
    if reason is None and need > MEMORY_FRACTION * have:
        reason = (
            f"skipped: estimated {need:.1f} GB > {100 * MEMORY_FRACTION:.0f} % of the "
            f"{have:.1f} GB available"
        )
    row["estimate_gb"] = need
    if reason:
        row["error"] = reason
        log(f"  {entry['kind']:>10} D {D:>7}: {reason}")
        return row
    width, depth = entry["root"]
    spec = {"width": width, "depth": depth, "T": T, "batch": N, "mode": "sequential"}
    spec.update(hyper_width=r, reps=1, budget_s=0.0, transition=entry["kind"], gemm=False,
                warmup_s=STRUCTURED_WARMUP_S)  # fmt: skip
    if entry["kind"] == "lowrank":
        spec["rank"] = entry["rank"]
    res = _cached_worker(spec, isolate, cache)
    if "error" in res:
        row["error"] = f"failed: {res['error']}"
        log(f"  {entry['kind']:>10} D {D:>7}: {row['error'][:100]}")
        return row
    row.update(
        peak_rss_gb=res["peak_rss_gb"],
        rss_start_gb=res["rss_start_gb"],
        step_s=res["median_s"],
        reps=res["reps"],
        compile_s=res["compile_s"],
        load_average=res["load_average"],
    )
    assert res["A_entries"] == entry["A_entries"], (res["A_entries"], entry)
    log(
        f"  {entry['kind']:>10} D {D:>7}: peak RSS {res['peak_rss_gb']:.2f} GB, step "
        f"{res['median_s']:.3g} s (A state {entry['A_state_gb']:.3g} GB)"
    )
    return row


def transition_speed(
    cfg: dict, rows: list[dict], r: int, args, isolate, out_of_time, log, cache=None
):
    """Training-step time per transition kind at D_theta ~5k (`cfg["structured"]["speed"]`),
    both modes, each in its own worker; dense is taken from the rows of the same run at
    the same (T, D_theta) (a dense step there takes minutes on 2 cores)."""
    sp = cfg["structured"]["speed"]
    T, N = sp["T"], sp["batch"]
    entries = []
    for kind in transition_kinds():
        width, depth = sp["block_root"] if kind == "block" else sp["root"]
        D = theta_size(width, depth)
        entry = {"kind": kind, "root": [width, depth], "D_theta": D, "T": T, "batch": N,
                 "A_entries": transition_entries(kind, width, depth, sp["rank"]),
                 "parallel_s": None, "sequential_s": None, "skipped": []}  # fmt: skip
        if kind == "lowrank":
            entry["rank"] = sp["rank"]
        if kind == "dense":
            from warp_phys._recurrence import preferred_mode

            row = next((x for x in rows if x["T"] == T and x["D_theta"] == D), None)
            entry.update(
                source="the rows of this run (same T, D_theta, batch)",
                preferred_mode=preferred_mode(T, DATA_SIZE, D),
            )
            if row is None:
                entry["skipped"].append(f"no row at T {T}, D_theta {D} in this run")
            else:
                entry.update(parallel_s=row["parallel_s"], sequential_s=row["sequential_s"])
            entries.append(entry)
            continue
        for mode in MODES:
            reason = out_of_time()
            if reason:
                entry["skipped"].append(f"{mode} {reason}")
                continue
            spec = {"width": width, "depth": depth, "T": T, "batch": N, "mode": mode}
            spec.update(hyper_width=r, reps=sp["reps"], transition=kind, gemm=False,
                        budget_s=0.0 if sp["reps"] == 1 else args.rep_budget,
                        warmup_s=STRUCTURED_WARMUP_S)  # fmt: skip
            if kind == "lowrank":
                spec["rank"] = sp["rank"]
            res = _cached_worker(spec, isolate, cache)
            if "error" in res:
                entry["skipped"].append(f"{mode} failed: {res['error']}")
                log(f"  {kind:>10} {mode:>10}: failed {res['error'][:100]}")
                continue
            entry[f"{mode}_s"] = res["median_s"]
            entry[f"{mode}_reps"] = res["reps"]
            entry[f"{mode}_peak_rss_gb"] = res["peak_rss_gb"]
            entry[f"{mode}_load_average"] = res["load_average"]
            entry["preferred_mode"] = res["preferred_mode"]
            log(f"  {kind:>10} D {D} {mode:>10}: {res['median_s']:.3g} s ({res['reps']} reps)")
        entries.append(entry)
    return entries


def merge_structured(result: dict, part: dict) -> dict:
    """`result` with `memory.structured` and `transitions` taken from a `--part
    structured` run `part` (dense's step times filled in from `result`'s rows)."""
    result = _with_transitions(result, part)
    result["memory"] = dict(result["memory"], structured=part["memory"]["structured"])
    result["structured_part"] = {
        "command": part["command"],
        "date": part["date"],
        "note": "the structured-transition rows ran in a second invocation (--part structured)",
    }
    return result


def _with_transitions(result: dict, part: dict) -> dict:
    """`result` with `part`'s transitions table, dense filled in from `result`'s rows."""
    result = dict(result)
    if "transitions" not in part:
        return result
    table = dict(part["transitions"])
    rows = []
    for entry in table["rows"]:
        entry = dict(entry)
        if entry["kind"] == "dense":
            row = next((x for x in result["rows"] if x["T"] == entry["T"]
                        and x["D_theta"] == entry["D_theta"]), None)  # fmt: skip
            if row is not None:
                entry.update(parallel_s=row["parallel_s"], sequential_s=row["sequential_s"],
                             skipped=[])  # fmt: skip
        rows.append(entry)
    table["rows"] = rows
    result["transitions"] = table
    return result


def merge_rows(result: dict, other: dict) -> dict:
    """`result` with its rows of the same (T, D_theta) replaced by `other`'s (a
    `--part rows` re-run, e.g. of rows whose two modes ran under very different load)."""
    result = dict(result)
    new = {(r_["T"], r_["D_theta"]): r_ for r_ in other["rows"]}
    result["rows"] = [new.get((r_["T"], r_["D_theta"]), r_) for r_ in result["rows"]]
    result["rows_rerun"] = result.get("rows_rerun", []) + [
        {
            "rows": sorted(new),
            "command": other["command"],
            "date": other["date"],
            "note": "these rows come from a re-run (both modes side by side in it)",
        }
    ]
    result["targets"] = _targets(result["rows"])
    return result


def merge_side(result: dict, side: dict) -> dict:
    """`result` with its inference, WARP-vs-GRU and memory sections taken from a
    `--part side` run `side` (WARP's step times filled in from `result`'s rows)."""
    result = _with_transitions(result, side)
    if "error" in (result.get("inference") or {"error": None}):  # keep a measured one
        result["inference"] = side["inference"]
    result["memory"] = side["memory"]
    gru = []
    for entry in side["warp_vs_gru"]:
        entry = dict(entry)
        row = next(
            (
                r_
                for r_ in result["rows"]
                if r_["D_theta"] == entry["D_theta"] and r_["T"] == entry["T"]
            ),
            {},
        )
        entry["warp_parallel_s"] = row.get("parallel_s")
        entry["warp_sequential_s"] = row.get("sequential_s")
        gru.append(entry)
    result["warp_vs_gru"] = gru
    result["side_part"] = {
        "command": side["command"],
        "date": side["date"],
        "note": "inference, GRU and memory ran in a second process beside the rows' run",
    }
    result["complete"] = all(
        not any(x.startswith(("parallel not run", "sequential not run")) for x in r_["skipped"])
        for r_ in result["rows"]
    )
    return result


def _targets(rows: list[dict]) -> dict:
    """The issue's two speed targets, judged from the rows."""
    targets = {"parallel_5x": "not measured", "recurrence_60pct": "not measured"}
    if rows:
        five_k = [r_ for r_ in rows if r_["D_theta"] == max(r__["D_theta"] for r__ in rows)]
        at_1024 = next((r_ for r_ in five_k if r_["T"] == 1024), None)
        if at_1024 and at_1024["parallel_s"] and at_1024["sequential_s"]:
            ratio = at_1024["sequential_s"] / at_1024["parallel_s"]
            targets["parallel_5x"] = f"{'met' if ratio >= 5 else 'missed'} ({ratio:.2f}x)"
        whole = [r_["recurrence_fraction"] for r_ in five_k if r_.get("recurrence_fraction")]
        fwd = [
            r_["recurrence_forward_fraction"]
            for r_ in five_k
            if r_.get("recurrence_forward_fraction")
        ]
        best = max(whole + fwd, default=None)
        if best is not None:
            targets["recurrence_60pct"] = (
                f"{'met' if best >= 0.6 else 'missed'} (best {100 * best:.0f} % of the GEMM "
                f"rate measured beside it; whole training step: best "
                f"{100 * max(whole, default=0):.0f} %, forward recurrence alone: "
                + (f"{100 * max(fwd):.0f} %)" if fwd else "not measured)")
            )
    return targets


def _assemble(state, cfg, args, matmul_D, complete: bool, wall_s: float) -> dict:
    """The JSON result from what has been measured so far."""
    rows = sorted(state["rows"], key=lambda r_: (r_["D_theta"], r_["T"]))
    N, r = cfg["batch"], cfg["hyper_width"]
    machine_gb = total_gb()
    limit_D = int((machine_gb * 2**30 / 16) ** 0.5)
    memory = {
        "T": cfg["memory_length"],
        "batch": N,
        "mode": "sequential",
        "machine_gb": machine_gb,
        "dense_A_limit_D": limit_D,
        "structured": state.get("structured", []),
        "rows": state["memory_rows"],
        "note": (
            f"A dense A needs 16 D^2 bytes to train (A, gradient, two Adam moments): on this "
            f"{machine_gb:.0f} GB machine that alone stops fitting at D_theta ~ {limit_D:,} "
            f"(computed, not measured), before activations (N T D floats, several copies). "
            "`structured`: peak RSS and step time per transition kind (T "
            f"{cfg['structured']['T']}, batch {cfg['structured']['batch']}, sequential), "
            "dense only where its estimated memory fits."
        ),
    }
    paper = paper_msd_rows(args.paper_msd and complete, args.smoke)
    targets = _targets(rows)
    command = (
        "python -m benchmarks.speed"
        + (" --smoke" if args.smoke else "")
        + (" --paper-msd" if args.paper_msd else "")
        + (f" --time-limit {args.time_limit:g}" if args.time_limit is not None else "")
        + (f" --part {args.part}" if args.part != "all" else "")
        + (f" --lengths {' '.join(map(str, args.lengths))}" if args.lengths else "")
    )
    return {
        "device": _device(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "smoke": args.smoke,
        "complete": complete,
        "budget": "about 45 min on 2 otherwise idle CPU cores",
        "note": (
            "Absolute times depend on the machine's load (the load average beside each "
            "configuration is in the JSON): compare within a row; each row's GEMM rate "
            "was measured beside it."
        ),
        "matmul_gflops": state["gemm"]["gflops"],
        "matmul_D": matmul_D,
        "hyper_width": r,
        "rep_policy": (
            f"first call is a warm-up if under 15 s; then up to {args.reps} timed steps, "
            f"stopping once {args.rep_budget:.0f} s were spent (at least one); median"
        ),
        "flop_model": (
            "sequential 6 N (T-1) D^2 per training step; parallel 3 x [2 T D^2 (r+1+d) "
            "+ N (2 T D (r+1) + conv)], conv = 2 T^2 d D (GEMM) or ~5 d D (2T) log2(2T) / 2 "
            "(FFT); recurrence_gflops = sequential FLOPs / whole step time"
        ),
        "rows": rows,
        "analysis": _analysis(cfg),
        "targets": targets,
        "warp_vs_gru": state["warp_vs_gru"],
        "gru_length": cfg["gru_length"],
        "memory": memory,
        "transitions": {
            "T": cfg["structured"]["speed"]["T"],
            "batch": cfg["structured"]["speed"]["batch"],
            "rows": state.get("transitions", []),
        },
        "inference": state["inference"] or {"error": "not reached"},
        "paper_msd": paper.pop("rows"),
        "paper_msd_source": paper,
        "wall_s": wall_s,
    }
