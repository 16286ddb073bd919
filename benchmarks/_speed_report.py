"""The speed benchmark's report, all from its JSON result: the targets and the README's
Markdown block."""

import statistics

from benchmarks._harness import fmt, table
from benchmarks._speed_workers import DATA_SIZE, MODES


def _kind(row: dict) -> str:
    return f"lowrank (r = {row.get('rank')})" if row["kind"] == "lowrank" else row["kind"]


def targets(rows: list[dict]) -> dict:
    """The issue's two speed targets, judged from the rows at the largest D_theta."""
    out = {"parallel_5x": "not measured", "recurrence_60pct": "not measured"}
    big = [r for r in rows if r["D_theta"] == max((x["D_theta"] for x in rows), default=0)]
    at_1024 = next((r for r in big if r["T"] == 1024), None)
    if at_1024 and at_1024["parallel_s"] and at_1024["sequential_s"]:
        ratio = at_1024["sequential_s"] / at_1024["parallel_s"]
        out["parallel_5x"] = f"{'met' if ratio >= 5 else 'missed'} ({ratio:.2f}x)"
    if fractions := [r["recurrence_fraction"] for r in big if r.get("recurrence_fraction")]:
        best = max(fractions)
        out["recurrence_60pct"] = (
            f"{'met' if best >= 0.6 else 'missed'} (best {100 * best:.0f} % of the GEMM rate "
            "measured beside it, whole training step)"
        )
    return out


def _step_row(r: dict) -> list:
    par, seq, flops = r["parallel_s"], r["sequential_s"], r["flops"]
    gemms = [g for m in MODES for g in (r.get(m) or {}).get("gemm_gflops", [])]
    speedup = f"{seq / par:.2f}x" if par and seq else "-"
    model = f"{flops['sequential'] / flops['parallel']:.2f}x"
    gemm = fmt(statistics.median(gemms) if gemms else None, ".0f")
    reps = f"{r.get('parallel_reps') or '-'}/{r.get('sequential_reps') or '-'}"
    times = [fmt(par), fmt(seq), speedup, model, fmt(r["recurrence_gflops"], ".1f")]
    share = fmt((fraction := r.get("recurrence_fraction")) and 100 * fraction, ".0f")
    return [r["T"], r["D_theta"], *times, share, gemm, reps]


def markdown(result: dict) -> str:
    """The README block."""
    mem, target, r, N = result["memory"], result["targets"], result["hyper_width"], result["batch"]
    runs = [r.get(m) or {} for r in result["rows"] for m in MODES]  # the load beside each
    loads = [x for run in runs for x in run.get("load_average", [])]
    load = loads and f"median {statistics.median(loads):.1f}, max {max(loads):.1f}"
    skipped = [x for x in result["rows"] if x.get("skipped")]
    skipped = [f"T {x['T']}, D_theta {x['D_theta']}: {'; '.join(x['skipped'])}" for x in skipped]
    parts = [
        f"Measured {result['date']} on {result['device']} (`{result['command']}`, "
        f"{result['wall_s'] / 60:.0f} min; stated budget {result['budget']}). {result['note']}"
        + (f" Load average during the rows: {load}." if load else ""),
        f"Dense float32 GEMM (D x D) @ (D x 64) at D = {result['matmul_D']}: "
        f"**{result['matmul_gflops']:.0f} GFLOP/s**.",
        f"**Training step** (teacher-forced, forward + backward + Adam; batch {N}, "
        f"data_size {DATA_SIZE}, hypernetwork width r = {r}; s per step, median of `reps`):",
        table(
            "T | D_theta | parallel s | sequential s | parallel speed-up | FLOP model speed-up "
            "| recurrence GFLOP/s (sequential step) | % of GEMM | GEMM GFLOP/s beside it "
            "| reps par/seq",
            map(_step_row, result["rows"]),
        ),
        *skipped,
        "FLOP model (`_speed_workers.flop_model`, dense A): the parallel form's per-batch "
        "precompute of A^k [W | b | B] alone costs (r + 1 + d) / N = "
        f"{(r + 1 + DATA_SIZE) / N:.2f} of the scan, and a 5x gain needs N >= 5 "
        "(r + 1 + d) and T d << D_theta, or a structured A. Targets: parallel >= 5x faster at "
        f"T 1024, D_theta ~5k: **{target['parallel_5x']}**; sequential recurrence >= 60 % of "
        f"GEMM FLOP/s at D_theta ~5k: **{target['recurrence_60pct']}**.",
    ]
    if not result.get("complete", True):
        parts.insert(1, "**Incomplete**: some configurations were not run; the rows say why.")
    parts.append(
        "A dense A's training state (A, gradient, two Adam moments: 16 D^2 bytes) alone stops "
        f"fitting this {mem['machine_gb']:.0f} GB machine at D_theta ~ "
        f"{mem['dense_A_limit_D']:,} (computed, not measured)."
    )
    return "\n\n".join(parts + _structured_markdown(result))


def _sizes(x: dict) -> list:
    root = f"{x['root'][0]} x {x['root'][1]}"
    return [_kind(x), root, f"{x['D_theta']:,}", f"{x['A_entries']:,}"]


def _memory_row(x: dict) -> list:
    note = x.get("error", "")
    if x["kind"] == "block":
        note = f"{x['blocks']} blocks, largest {x['largest_block']}" + (note and f"; {note}")
    times = [f"{x['A_state_gb']:.3g}", fmt(x.get("peak_rss_gb"), ".2f"), fmt(x.get("step_s"))]
    return [*_sizes(x), *times, note]


def _kind_row(x: dict) -> list:
    picked, times = x.get("preferred_mode"), {m: fmt(x.get(f"{m}_s")) for m in MODES}
    times = [f"**{t}**" if m == picked and t != "-" else t for m, t in times.items()]
    return [*_sizes(x), *times, picked or "-"]


def _structured_markdown(result: dict) -> list[str]:
    """The structured-transition tables (issue 9): memory per kind vs D_theta and the
    training step per kind at D_theta ~5k."""
    rows, steps = result["memory"]["structured"], result["transitions"]
    notes = [f"{_kind(x)}: {'; '.join(x['skipped'])}." for x in steps["rows"] if x["skipped"]]
    return [
        f"**Structured transitions: memory vs D_theta** (sequential training step, T "
        f"{rows[0]['T']}, batch {rows[0]['batch']}: small, so that A's training state "
        "dominates; A state = A's entries x 16 bytes; block, whose A is sum_b D_b^2 over "
        "the root's parameter tensors, runs on roots of many 32 x 32 layers):",
        table(
            "kind | root (width x depth) | D_theta | A entries | A state GB | peak RSS GB "
            "| step s | ",
            map(_memory_row, rows),
        ),
        f"**Training step per transition kind** (T {steps['T']}, batch {steps['batch']}; s "
        "per step, median; the mode WARP's `auto` picks in bold; dense from the rows above, "
        "block on a root of many small layers):",
        table(
            "kind | root | D_theta | A entries | parallel s | sequential s | auto picks",
            map(_kind_row, steps["rows"]),
        ),
        *([" ".join(notes)] if notes else []),
    ]
