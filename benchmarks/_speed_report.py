"""The speed benchmark's report, all from its JSON result: the targets, the README's
Markdown block (with the FLOP model's analysis) and the figure."""

import statistics
from pathlib import Path

from benchmarks import _harness as harness
from benchmarks._speed_workers import DATA_SIZE, MODES

KIND_COLORS = ("C2", "C4", "C5", "C6", "C8", "C9")  # not C0/C1/red: taken in the memory panel
KIND_MARKERS = ("^", "v", "s", "D", "P", "X")


def _fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def _kind(row: dict) -> str:
    return f"lowrank (r = {row.get('rank')})" if row["kind"] == "lowrank" else row["kind"]


def _loads(result: dict) -> list[float]:
    """The load averages recorded beside the rows' workers."""
    runs = [r.get(m) or {} for r in result["rows"] for m in MODES]
    return [x for run in runs for x in run.get("load_average", [])]


def targets(rows: list[dict]) -> dict:
    """The issue's two speed targets, judged from the rows at the largest D_theta."""
    out = {"parallel_5x": "not measured", "recurrence_60pct": "not measured"}
    big = [r for r in rows if r["D_theta"] == max((x["D_theta"] for x in rows), default=0)]
    at_1024 = next((r for r in big if r["T"] == 1024), None)
    if at_1024 and at_1024["parallel_s"] and at_1024["sequential_s"]:
        ratio = at_1024["sequential_s"] / at_1024["parallel_s"]
        out["parallel_5x"] = f"{'met' if ratio >= 5 else 'missed'} ({ratio:.2f}x)"
    whole = [r["recurrence_fraction"] for r in big if r.get("recurrence_fraction")]
    fwd = [r["recurrence_forward_fraction"] for r in big if r.get("recurrence_forward_fraction")]
    if whole or fwd:
        best = max(whole + fwd)
        out["recurrence_60pct"] = (
            f"{'met' if best >= 0.6 else 'missed'} (best {100 * best:.0f} % of the GEMM rate "
            f"measured beside it; whole training step: best {100 * max(whole, default=0):.0f} %, "
            "forward recurrence alone: " + (f"{100 * max(fwd):.0f} %)" if fwd else "not measured)")
        )
    return out


def _analysis(N: int, r: int, d: int = DATA_SIZE) -> str:
    return (
        "Why the parallel form is not 5x faster here (FLOP model, dense A): per sample it "
        "costs T D (2 r + 2 T d) (the T d term is the causal convolution as a Toeplitz "
        "GEMM for T d <= 2048, an FFT above, which XLA runs at a few GFLOP/s on CPU) "
        "against the scan's 2 T D^2, plus a per-batch precompute of A^k [W | b | B], "
        f"2 T D^2 (r + 1 + d). At batch N = {N}, r = {r}, d = {d} the precompute alone is "
        f"(r + 1 + d) / N = {(r + 1 + d) / N:.2f} of the whole scan, and at T = 1024, "
        "D ~ 5k the GEMM convolution's 2 T d = 4096 is close to D, so the model predicts "
        "about 1x, not 5x. A 5x gain needs N >= 5 (r + 1 + d) (r <= 10 at batch 64, or "
        "batch >= 175 at r = 32) and T d << D, or a structured A (diagonal / low rank) "
        "whose powers cost O(T D) instead of O(T D^2); the kernel form pays off at large "
        "batch (paper-MSD rows)."
    )


def _row_line(row: dict) -> str:
    par, seq = row["parallel_s"], row["sequential_s"]
    speedup = seq / par if par and seq else None
    frac, fwd = row.get("recurrence_fraction"), row.get("recurrence_forward_fraction")
    gemms = [g for m in MODES for g in (row.get(m) or {}).get("gemm_gflops", [])]
    reps = f"{row.get('parallel_reps') or '-'}/{row.get('sequential_reps') or '-'}"
    return (
        f"| {row['T']} | {row['D_theta']} | {_fmt(par, '.3g')} | {_fmt(seq, '.3g')} "
        f"| {_fmt(speedup, '.2f', '-')}{'x' if speedup else ''} "
        f"| {row['flops']['sequential'] / row['flops']['parallel']:.2f}x "
        f"| {_fmt(row['recurrence_gflops'], '.1f')} | {_fmt(frac and 100 * frac, '.0f')} "
        f"| {_fmt(fwd and 100 * fwd, '.0f')} "
        f"| {_fmt(statistics.median(gemms) if gemms else None, '.0f')} | {reps} |"
    )


def markdown(result: dict) -> str:
    """The README block."""
    loads, mem, target = _loads(result), result["memory"], result["targets"]
    load = (
        f" Load average during the rows: median {statistics.median(loads):.1f}, max "
        f"{max(loads):.1f} on 2 cores."
        if loads
        else ""
    )
    lines = [
        f"Measured {result['date']} on {result['device']} (`{result['command']}`, stated "
        f"budget {result['budget']}; this run took {result['wall_s'] / 60:.0f} min). "
        f"{result['note']}{load}",
        "",
        *(
            []
            if result.get("complete", True)
            else ["**Incomplete**: some configurations were not run; the rows say why.", ""]
        ),
        f"Dense float32 GEMM (D x D) @ (D x 64) at D = {result['matmul_D']}: "
        f"**{result['matmul_gflops']:.0f} GFLOP/s** (this run).",
        "",
        "**Training step** (teacher-forced, forward + backward + Adam), batch "
        f"{result['rows'][0]['batch'] if result['rows'] else '-'}, data_size 2, hypernetwork "
        f"width r = {result['hyper_width']}; seconds per step, median of `reps` steps:",
        "",
        "| T | D_theta | parallel s | sequential s | parallel speed-up | FLOP model speed-up "
        "| recurrence GFLOP/s (sequential step) | % of GEMM | forward recurrence % of GEMM "
        "| GEMM GFLOP/s beside it | reps par/seq |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *map(_row_line, result["rows"]),
        *(
            f"\nT {r['T']}, D_theta {r['D_theta']}: {'; '.join(r['skipped'])}"
            for r in result["rows"]
            if r.get("skipped")
        ),
        "",
        _analysis(mem["batch"], result["hyper_width"]),
        "",
        f"Targets: parallel >= 5x faster at T 1024, D_theta ~5k: **{target['parallel_5x']}**; "
        "sequential recurrence >= 60 % of GEMM FLOP/s at D_theta ~5k: "
        f"**{target['recurrence_60pct']}**.",
        "",
    ]
    msd = result["paper_msd_source"]
    if result["paper_msd"]:
        lines += [
            "**Paper MSD configuration** (D_theta 4898, T 256, autoregressive, teacher forcing "
            f"0.25; from `{msd['source']}`, measured {msd['measured']}):",
            "",
            "| batch | algorithm | s per step | peak RSS GB | reps |",
            "|---|---|---|---|---|",
            *(
                f"| {r['batch']} | {r['algorithm']} | {r['step_s']:.1f} | {r['peak_rss_gb']:.1f} "
                f"| {r.get('reps') or '-'} |"
                for r in result["paper_msd"]
            ),
            "",
        ]
    inf = result["inference"]
    if "error" not in inf:
        lines += [
            f"**Inference**: {inf['trajectories_per_s']:.0f} trajectories/s "
            f"(`reconstruct`, context {inf['context']}, horizon {inf['horizon']}, batch "
            f"{inf['batch']}, D_theta {inf['D_theta']}, model {inf['model']}).",
            "",
        ]
    lines += [
        f"**WARP vs GRU of equal parameter count** (T {result['gru_length']}, s per training "
        "step):",
        "",
        "| D_theta | params | WARP parallel s | WARP sequential s | GRU hidden | GRU s |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['D_theta']} | {r['params']:,} | {_fmt(r['warp_parallel_s'], '.3g')} "
            f"| {_fmt(r['warp_sequential_s'], '.3g')} | {r.get('gru_hidden', '-')} "
            f"| {_fmt(r.get('gru_s'), '.3g')} |"
            for r in result["warp_vs_gru"]
        ),
        "",
        f"**Peak memory vs D_theta** (sequential training step, T {mem['T']}, batch "
        f"{mem['batch']}; peak RSS of the worker process):",
        "",
        "| D_theta | peak RSS GB | dense A training state GB (16 D^2 bytes) |",
        "|---|---|---|",
        *(
            f"| {r['D_theta']} | {_fmt(r.get('peak_rss_gb'), '.2f')} | {r['dense_state_gb']:.3f} |"
            for r in mem["rows"]
        ),
        "",
        f"A dense A needs 16 D^2 bytes to train (A, gradient, two Adam moments): on this "
        f"{mem['machine_gb']:.0f} GB machine that alone stops fitting at D_theta ~ "
        f"{mem['dense_A_limit_D']:,} (computed, not measured), before the activations "
        "(N T D floats, several copies)."
        + (
            "" if mem.get("structured") else " Structured transitions are not measured in this run."
        ),
    ]
    return "\n".join(lines + _structured_markdown(result))


def _structured_markdown(result: dict) -> list[str]:
    """The structured-transition tables (issue 9): memory per kind vs D_theta and the
    training step per kind at D_theta ~5k."""
    mem, table, lines = result["memory"], result.get("transitions") or {}, []
    rows, limit = mem.get("structured") or [], mem["dense_A_limit_D"]
    if rows:
        lines += [
            "",
            f"**Structured transitions: memory vs D_theta** (sequential training step, T "
            f"{rows[0]['T']}, batch {rows[0]['batch']}: small, so that A's training state "
            "dominates; peak RSS of the worker process, "
            f"~{min(r.get('rss_start_gb') or 9e9 for r in rows):.1f} GB with JAX imported). "
            "A state = A's entries x 16 bytes (A, gradient, two Adam moments). Block's "
            "memory is sum_b D_b^2 over the root's parameter tensors, so it runs on roots of "
            "many 32 x 32 layers (a 67-wide layer alone would make it ~D^2):",
            "",
            "| kind | root (width x depth) | D_theta | A entries | A state GB | peak RSS GB "
            "| step s | |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            note = row.get("error", "")
            if row["kind"] == "block":
                note = (
                    f"{row['blocks']} blocks, largest {row['largest_block']}; sum D_b^2 = "
                    f"{row['A_entries']:,}" + (f"; {note}" if note else "")
                )
            lines.append(
                f"| {_kind(row)} | {row['root'][0]} x {row['root'][1]} "
                f"| {row['D_theta']:,} | {row['A_entries']:,} | {row['A_state_gb']:.3g} "
                f"| {_fmt(row.get('peak_rss_gb'), '.2f')} "
                f"| {_fmt(row.get('step_s'), '.3g')} | {note} |"
            )
        big = [
            r
            for r in rows
            if r["kind"] != "dense" and r.get("peak_rss_gb") and r["D_theta"] > limit
        ]
        if big:
            largest = max(r["D_theta"] for r in big)
            lines += [
                "",
                f"Above the dense limit (D_theta ~ {limit:,}): "
                + ", ".join(
                    f"{_kind(r)} at D_theta {r['D_theta']:,} peaked at {r['peak_rss_gb']:.2f} GB"
                    for r in big
                )
                + ", where a dense A's training state alone would need "
                f"{16 * largest**2 / 2**30:,.0f} GB.",
            ]
    if table.get("rows"):
        lines += [
            "",
            f"**Training step per transition kind** (teacher-forced, forward + backward + "
            f"Adam; T {table['T']}, batch {table['batch']}, data_size 2; seconds "
            "per step, median; the mode WARP's `auto` picks in bold):",
            "",
            "| kind | root | D_theta | A entries | parallel s | sequential s | auto picks |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in table["rows"]:
            picked = row.get("preferred_mode")
            cells = [_fmt(row.get(f"{m}_s"), ".3g") for m in MODES]
            cells = [
                f"**{c}**" if m == picked and c != "-" else c
                for m, c in zip(MODES, cells, strict=True)
            ]
            lines.append(
                f"| {_kind(row)} | {row['root'][0]} x {row['root'][1]} "
                f"| {row['D_theta']:,} | {row['A_entries']:,} | {cells[0]} | {cells[1]} "
                f"| {picked or '-'} |"
            )
        notes = [f"{_kind(r)}: {'; '.join(r['skipped'])}" for r in table["rows"] if r["skipped"]]
        lines += [
            "",
            "Dense comes from the training-step rows above (same T, D_theta, batch; "
            "not re-run: a dense step there takes minutes), block runs on a root of many "
            "small layers (see the memory table), the other kinds on the dense row's root, "
            "each kind and mode in its own worker, one after the other."
            + (f" {' '.join(notes)}." if notes else ""),
        ]
    return lines


def plot(result: dict, path: Path) -> None:
    """Four panels: step time vs T, recurrence FLOP/s vs T, memory vs D_theta (dense and
    structured), the paper-MSD rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, mem = result["rows"], result["memory"]
    structured, Ds = mem.get("structured") or [], sorted({r["D_theta"] for r in rows})
    lengths = sorted({r["T"] for r in rows}) or [1, 2]
    T_axis = dict(xscale="log", xlim=(lengths[0] / 1.5, lengths[-1] * 1.5), xlabel="T")
    fig, ((steps, rate), (memory, paper)) = plt.subplots(2, 2, figsize=(11, 8))
    for D in Ds:
        for mode, style in (("parallel", "o-"), ("sequential", "s--")):
            pts = [(r["T"], r[f"{mode}_s"]) for r in rows if r["D_theta"] == D and r[f"{mode}_s"]]
            if pts:
                steps.plot(*zip(*pts, strict=True), style, label=f"{mode}, D={D}")
    steps.set(**T_axis, ylabel="s per training step", title=f"training step, batch {mem['batch']}")
    if steps.lines:
        steps.set_yscale("log")
        steps.legend(fontsize=8)
    for D in Ds:
        pts = [
            (r["T"], 100 * r["recurrence_fraction"])
            for r in rows
            if r["D_theta"] == D and r.get("recurrence_fraction")
        ]
        if pts:
            rate.plot(*zip(*pts, strict=True), "o-", label=f"sequential recurrence, D={D}")
    rate.axhline(100, color="k", ls=":", label="dense GEMM timed beside the row")
    rate.axhline(60, color="grey", ls=":", label="60 % target")
    rate.set(
        **T_axis,
        ylabel="% of the GEMM rate",
        ylim=(0, None),
        title="recurrence FLOP/s (whole training step) / GEMM",
    )
    rate.legend(fontsize=8)
    pts = [(r["D_theta"], r["peak_rss_gb"]) for r in mem["rows"] if r.get("peak_rss_gb")]
    if pts:
        label = "peak RSS (measured)"
        label = f"dense: {label}, T {mem['T']}, batch {mem['batch']}" if structured else label
        memory.plot(*zip(*pts, strict=True), "o-", label=label)
    grid = [10 ** (2 + k / 8) for k in range(29)]  # D_theta from 100 to ~300k
    memory.plot(
        grid,
        [16 * D * D / 2**30 for D in grid],
        "--",
        color="C1",
        label="A + grad + Adam moments, 16 D^2 bytes (computed)",
    )
    memory.axhline(mem["machine_gb"], color="r", ls=":", label="machine memory")
    for k, kind in enumerate(dict.fromkeys(r["kind"] for r in structured)):
        pts = [
            (r["D_theta"], r["peak_rss_gb"])
            for r in structured
            if r["kind"] == kind and r.get("peak_rss_gb")
        ]
        if pts:
            label = f"{kind}: peak RSS, T {structured[0]['T']}, batch {structured[0]['batch']}"
            memory.plot(
                *zip(*pts, strict=True),
                KIND_MARKERS[k % 6] + ":",
                color=KIND_COLORS[k % 6],
                ms=6,
                mfc="none",
                label=label,
            )
    if structured:
        memory.axvline(
            mem["dense_A_limit_D"],
            color="grey",
            ls="-.",
            label="dense A stops fitting (16 D^2 bytes)",
        )
    memory.set(
        xscale="log",
        yscale="log",
        xlabel="D_theta",
        ylabel="GB",
        title=f"memory, T {mem['T']}, batch {mem['batch']}"
        + (" (structured: open markers)" if structured else ""),
    )
    if structured:
        memory.set_ylim(0.1, None)
    memory.legend(fontsize=6)
    msd = result["paper_msd"]
    if msd:
        paper.bar(
            range(len(msd)),
            [r["step_s"] for r in msd],
            color=["C0" if r["algorithm"] == "scan" else "C1" for r in msd],
        )
        paper.set_xticks(
            range(len(msd)), [f"{r['algorithm']}\nbatch {r['batch']}" for r in msd], fontsize=8
        )
        paper.set(
            yscale="log",
            ylabel="s per training step",
            title="paper MSD (D 4898, T 256, autoregressive)",
        )
    else:
        paper.set_axis_off()
    span = f", load {min(loads):.1f}-{max(loads):.1f}" if (loads := _loads(result)) else ""
    fig.suptitle(f"WARP speed on {result['device']} ({result['date'][:10]}{span})", fontsize=10)
    fig.tight_layout()
    harness.save_figure(fig, path)
