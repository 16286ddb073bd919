"""The speed benchmark's report: the README's Markdown block, the figure and the FLOP
model's analysis text, all from the JSON result."""

import statistics
from pathlib import Path

from benchmarks._speed_workers import DATA_SIZE, MODES


def _fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def _load_span(result: dict) -> str:
    """`", load a-b"`: the range of load averages beside the rows ("" if none)."""
    loads = _loads(result)
    return f", load {min(loads):.1f}-{max(loads):.1f}" if loads else ""


def _loads(result: dict) -> list[float]:
    loads = []
    for row in result["rows"]:
        for mode in MODES:
            loads += (row.get(mode) or {}).get("load_average", [])
    return loads


def markdown(result: dict) -> str:
    """The README block, generated from the JSON."""
    loads = _loads(result)
    load = (
        f" Load average during the rows: median {statistics.median(loads):.1f}, "
        f"max {max(loads):.1f} on 2 cores."
        if loads
        else ""
    )
    side = result.get("side_part")
    side = f" ({side['note']}: `{side['command']}`, finished {side['date']}.)" if side else ""
    lines = [
        f"Measured {result['date']} on {result['device']} (`{result['command']}`, "
        f"stated budget {result['budget']}; this run took {result['wall_s'] / 60:.0f} min)."
        f" {result['note']}{load}{side}",
        "",
        *(
            []
            if result.get("complete", True)
            else [
                "**Incomplete**: some configurations were not run; the rows say why.",
                "",
            ]
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
    ]
    for row in result["rows"]:
        speedup = (
            row["sequential_s"] / row["parallel_s"]
            if row["parallel_s"] and row["sequential_s"]
            else None
        )
        frac = row.get("recurrence_fraction")
        fwd = row.get("recurrence_forward_fraction")
        gemms = [g for m in MODES for g in (row.get(m) or {}).get("gemm_gflops", [])]
        gemm = statistics.median(gemms) if gemms else None
        reps = f"{row.get('parallel_reps') or '-'}/{row.get('sequential_reps') or '-'}"
        lines.append(
            f"| {row['T']} | {row['D_theta']} | {_fmt(row['parallel_s'], '.3g')} "
            f"| {_fmt(row['sequential_s'], '.3g')} | {_fmt(speedup, '.2f', '-')}"
            f"{'x' if speedup else ''} "
            f"| {row['flops']['sequential'] / row['flops']['parallel']:.2f}x "
            f"| {_fmt(row['recurrence_gflops'], '.1f')} | {_fmt(frac and 100 * frac, '.0f')} "
            f"| {_fmt(fwd and 100 * fwd, '.0f')} | {_fmt(gemm, '.0f')} | {reps} |"
        )
    skipped = [r for r in result["rows"] if r.get("skipped")]
    for row in skipped:
        lines.append(f"\nT {row['T']}, D_theta {row['D_theta']}: {'; '.join(row['skipped'])}")
    for rerun in result.get("rows_rerun", []):
        which = ", ".join(f"T {T} / D_theta {D}" for T, D in rerun["rows"])
        Ts = " ".join(str(T) for T in sorted({T for T, _ in rerun["rows"]}))
        lines.append(
            f"\nRows {which}: from `python -m benchmarks.speed --part rows --lengths {Ts}` "
            f"({rerun['date']}), a second invocation once the load had dropped "
            "(both modes side by side in it; in the "
            "first run the two modes of the T 1024 rows ran under very different load, and "
            "the T 4096 rows were cut by its time limit)."
        )
    lines += ["", result["analysis"], ""]
    target = result["targets"]
    lines += [
        f"Targets: parallel >= 5x faster at T 1024, D_theta ~5k: **{target['parallel_5x']}**; "
        f"sequential recurrence >= 60 % of GEMM FLOP/s at D_theta ~5k: "
        f"**{target['recurrence_60pct']}**.",
        "",
    ]
    msd, rows_msd = result["paper_msd_source"], result["paper_msd"]
    if rows_msd:
        lines += [
            f"**Paper MSD configuration** (D_theta 4898, T 256, autoregressive, teacher forcing "
            f"0.25; from `{msd['source']}`, measured {msd['measured']}):",
            "",
            "| batch | algorithm | s per step | peak RSS GB | reps |",
            "|---|---|---|---|---|",
        ]
        for row in rows_msd:
            lines.append(
                f"| {row['batch']} | {row['algorithm']} | {row['step_s']:.1f} "
                f"| {row['peak_rss_gb']:.1f} | {row.get('reps') or '-'} |"
            )
        lines.append("")
    inf = result["inference"]
    if "error" not in inf:
        lines += [
            f"**Inference**: {inf['trajectories_per_s']:.0f} trajectories/s "
            f"(`reconstruct`, context {inf['context']}, horizon {inf['horizon']}, batch "
            f"{inf['batch']}, D_theta {inf['D_theta']}, model {inf['model']}).",
            "",
        ]
    lines += [
        "**WARP vs GRU of equal parameter count** (T "
        f"{result['gru_length']}, s per training step):",
        "",
        "| D_theta | params | WARP parallel s | WARP sequential s | GRU hidden | GRU s |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["warp_vs_gru"]:
        lines.append(
            f"| {row['D_theta']} | {row['params']:,} | {_fmt(row['warp_parallel_s'], '.3g')} "
            f"| {_fmt(row['warp_sequential_s'], '.3g')} | {row.get('gru_hidden', '-')} "
            f"| {_fmt(row.get('gru_s'), '.3g')} |"
        )
    mem = result["memory"]
    lines += [
        "",
        f"**Peak memory vs D_theta** (sequential training step, T {mem['T']}, batch "
        f"{mem['batch']}; peak RSS of the worker process):",
        "",
        "| D_theta | peak RSS GB | dense A training state GB (16 D^2 bytes) |",
        "|---|---|---|",
    ]
    for row in mem["rows"]:
        lines.append(
            f"| {row['D_theta']} | {_fmt(row.get('peak_rss_gb'), '.2f')} "
            f"| {row['dense_state_gb']:.3f} |"
        )
    lines += [
        "",
        f"A dense A needs 16 D^2 bytes to train (A, gradient, two Adam moments): on this "
        f"{mem['machine_gb']:.0f} GB machine that alone stops fitting at D_theta ~ "
        f"{mem['dense_A_limit_D']:,} (computed, not measured), before the activations "
        "(N T D floats, several copies)."
        + (
            "" if mem.get("structured") else " Structured transitions are not measured in this run."
        ),  # fmt: skip
    ]
    lines += _structured_markdown(result)
    return "\n".join(lines)


_KIND_COLORS = ("C2", "C4", "C5", "C6", "C8", "C9")  # not C0/C1/red: taken in the memory panel
_KIND_MARKERS = ("^", "v", "s", "D", "P", "X")
_KIND_NAMES = {"lowrank": "lowrank (r = {rank})"}


def _kind(row: dict) -> str:
    return _KIND_NAMES.get(row["kind"], row["kind"]).format(rank=row.get("rank"))


def _structured_markdown(result: dict) -> list[str]:
    """The structured-transition tables (issue 9): memory per kind vs D_theta and the
    training step per kind at D_theta ~5k."""
    mem = result["memory"]
    rows = mem.get("structured") or []
    lines = []
    part = result.get("structured_part")
    loads = [x for r in rows for x in r.get("load_average", [])]
    table = result.get("transitions") or {}
    loads += [
        x for r in table.get("rows", []) for m in MODES for x in r.get(f"{m}_load_average", [])
    ]
    if part and (rows or table.get("rows")):
        lines += [
            "",
            f"The structured-transition rows below come from a second invocation, "
            f"`{part['command']}` ({part['date']}); the dense step times in the second table "
            "are the rows above, from the first."
            + (
                f" Load average during them: median {statistics.median(loads):.1f}, max "
                f"{max(loads):.1f} on 2 cores."
                if loads
                else ""
            ),  # fmt: skip
        ]
    if rows:
        first = rows[0]
        lines += [
            "",
            f"**Structured transitions: memory vs D_theta** (sequential training step, T "
            f"{first['T']}, batch {first['batch']}: small, so that A's training state "
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
                note = (f"{row['blocks']} blocks, largest {row['largest_block']}; sum D_b^2 = "
                        f"{row['A_entries']:,}" + (f"; {note}" if note else ""))  # fmt: skip
            lines.append(
                f"| {_kind(row)} | {row['root'][0]} x {row['root'][1]} | {row['D_theta']:,} "
                f"| {row['A_entries']:,} | {row['A_state_gb']:.3g} "
                f"| {_fmt(row.get('peak_rss_gb'), '.2f')} | {_fmt(row.get('step_s'), '.3g')} "
                f"| {note} |"
            )
        big = [r for r in rows if r["kind"] != "dense" and r.get("peak_rss_gb")
               and r["D_theta"] > mem["dense_A_limit_D"]]  # fmt: skip
        if big:
            best = max(big, key=lambda r: r["D_theta"])
            lines += [
                "",
                f"Above the dense limit (D_theta ~ {mem['dense_A_limit_D']:,}): "
                + ", ".join(
                    f"{_kind(r)} at D_theta {r['D_theta']:,} peaked at {r['peak_rss_gb']:.2f} GB"
                    for r in big
                )
                + f", where a dense A's training state alone would need "
                f"{16 * best['D_theta'] ** 2 / 2**30:,.0f} GB.",
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
            preferred = row.get("preferred_mode")
            cells = []
            for mode in MODES:
                cell = _fmt(row.get(f"{mode}_s"), ".3g")
                cells.append(f"**{cell}**" if mode == preferred and cell != "-" else cell)
            lines.append(
                f"| {_kind(row)} | {row['root'][0]} x {row['root'][1]} | {row['D_theta']:,} "
                f"| {row['A_entries']:,} | {cells[0]} | {cells[1]} | {preferred or '-'} |"
            )
        notes = [f"{_kind(r)}: {'; '.join(r['skipped'])}" for r in table["rows"] if r["skipped"]]
        lines += [
            "",
            "Dense comes from the training-step rows above (same T, D_theta, batch; not "
            "re-run: a dense step there takes minutes), block runs on a root of many small "
            "layers (see the memory table), the other kinds on the dense row's root, each "
            "kind and mode in its own worker, one after the other."
            + (f" {' '.join(notes)}." if notes else ""),
        ]
    return lines


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from warp_phys.plotting import save_figure

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    lengths = sorted({r["T"] for r in result["rows"]}) or [1, 2]
    for D in sorted({r["D_theta"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["D_theta"] == D]
        for mode, style in (("parallel", "o-"), ("sequential", "s--")):
            pts = [(r["T"], r[f"{mode}_s"]) for r in rows if r[f"{mode}_s"]]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=f"{mode}, D={D}")
    ax.set(
        xscale="log",
        xlim=(lengths[0] / 1.5, lengths[-1] * 1.5),
        xlabel="T",
        ylabel="s per training step",
        title=f"training step, batch {result['memory']['batch']}",
    )
    if ax.lines:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax = axes[0, 1]
    for D in sorted({r["D_theta"] for r in result["rows"]}):
        pts = [
            (r["T"], 100 * r["recurrence_fraction"])
            for r in result["rows"]
            if r["D_theta"] == D and r.get("recurrence_fraction")
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", label=f"sequential recurrence, D={D}")
    ax.axhline(100, color="k", ls=":", label="dense GEMM timed beside the row")
    ax.axhline(60, color="grey", ls=":", label="60 % target")
    ax.set(
        xscale="log",
        xlim=(lengths[0] / 1.5, lengths[-1] * 1.5),
        xlabel="T",
        ylabel="% of the GEMM rate",
        title="recurrence FLOP/s (whole training step) / GEMM",
        ylim=(0, None),
    )
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    mem = result["memory"]["rows"]
    structured = result["memory"].get("structured") or []
    pts = [(r["D_theta"], r["peak_rss_gb"]) for r in mem if r.get("peak_rss_gb")]
    if pts:
        label = "peak RSS (measured)"
        if structured:
            label = f"dense: {label}, T {result['memory']['T']}, batch {result['memory']['batch']}"
        ax.plot(*zip(*pts, strict=True), "o-", label=label)
    grid = [10 ** (2 + k / 8) for k in range(29)]  # D_theta from 100 to ~300k
    ax.plot(
        grid,
        [16 * D * D / 2**30 for D in grid],
        "--",
        color="C1",
        label="A + grad + Adam moments, 16 D^2 bytes (computed)",
    )
    ax.axhline(result["memory"]["machine_gb"], color="r", ls=":", label="machine memory")
    kinds = list(dict.fromkeys(r["kind"] for r in structured))
    for k, kind in enumerate(kinds):
        pts = [(r["D_theta"], r["peak_rss_gb"]) for r in structured
               if r["kind"] == kind and r.get("peak_rss_gb")]  # fmt: skip
        if pts:
            ax.plot(*zip(*pts, strict=True), _KIND_MARKERS[k % len(_KIND_MARKERS)] + ":",
                    color=_KIND_COLORS[k % len(_KIND_COLORS)], ms=6, mfc="none",
                    label=f"{kind}: peak RSS, T {structured[0]['T']}, batch "
                          f"{structured[0]['batch']}")  # fmt: skip
    if structured:
        ax.axvline(result["memory"]["dense_A_limit_D"], color="grey", ls="-.",
                   label="dense A stops fitting (16 D^2 bytes)")  # fmt: skip
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="D_theta",
        ylabel="GB",
        title=f"memory, T {result['memory']['T']}, batch {result['memory']['batch']}"
        + (" (structured: open markers)" if structured else ""),
    )
    if structured:
        ax.set_ylim(0.1, None)
    ax.legend(fontsize=6)
    ax = axes[1, 1]
    msd = result["paper_msd"]
    if msd:
        labels = [f"{r['algorithm']}\nbatch {r['batch']}" for r in msd]
        ax.bar(
            range(len(msd)),
            [r["step_s"] for r in msd],
            color=["C0" if r["algorithm"] == "scan" else "C1" for r in msd],
        )
        ax.set_xticks(range(len(msd)), labels, fontsize=8)
        ax.set(
            yscale="log",
            ylabel="s per training step",
            title="paper MSD (D 4898, T 256, autoregressive)",
        )
    else:
        ax.set_axis_off()
    fig.suptitle(
        f"WARP speed on {result['device']} ({result['date'][:10]}{_load_span(result)})",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path, palette=True)
    plt.close(fig)


def _analysis(cfg: dict) -> str:
    N, r, d = cfg["batch"], cfg["hyper_width"], DATA_SIZE
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
