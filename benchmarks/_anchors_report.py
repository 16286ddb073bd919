"""Targets and README block of `benchmarks.anchors`."""

from benchmarks._harness import fmt, table

# WARP-Phys + refine K: the trained WARP-Phys, its prior refined by K Levenberg-Marquardt
# steps on each context (`reconstruct(..., refine=K)`)
REFINE_STEPS = (5, 20)
REFINED = tuple(f"warp_phys_refine{k}" for k in REFINE_STEPS)
METHODS = ("sindy", "oracle_fit", "warp_phys", *REFINED, "warp")
LABELS = {"sindy": "SINDy", "oracle_fit": "oracle fit", "warp_phys": "WARP-Phys", "warp": "WARP"}
LABELS |= {m: f"WARP-Phys + refine {k}" for m, k in zip(REFINED, REFINE_STEPS, strict=True)}
# the compute each WARP-Phys row must save against the oracle fit (issues 10 and 21)
SPEEDUP_TARGETS = {"warp_phys": 100, **{m: 10 for m in REFINED}}
REFINED_NOTE = (
    "; WARP-Phys + refine K is that same WARP-Phys with its prior's parameters refined on "
    "each context by K Levenberg-Marquardt steps from its read-out, then run alone (its "
    "compute includes the refinement). "
)
SYSTEM_LABELS = {"msd": "MSD", "msd_zero": "MSD-Zero", "lotka_volterra": "LV"}


def _index(rows: list[dict]) -> dict:
    return {(r["system"], r["method"], r["noise"], r["context"]): r for r in rows}


def _axes(rows):
    return sorted({r["noise"] for r in rows}), sorted({r["context"] for r in rows})


def targets(rows: list[dict]) -> list[dict]:
    """The targets of WARP-Phys (issue 10) and WARP-Phys + refine K (issue 21), with their
    numbers and `met`: noise-free MSD, longest context, MSE within 3x of the oracle fit's
    at >= 100x (refined: 10x) less compute; 5 % noise, context 25: below SINDy and oracle."""
    idx, (noises, contexts), out = _index(rows), _axes(rows), []
    oracle = idx.get(("msd", "oracle_fit", 0.0, contexts[-1]))
    for method, least in SPEEDUP_TARGETS.items():
        phys = idx.get(("msd", method, 0.0, contexts[-1]))
        if phys and oracle:
            ratio = phys["mse"] / oracle["mse"]
            speedup = oracle["seconds_per_trajectory"] / phys["seconds_per_trajectory"]
            target = f"MSD, noise 0, context {contexts[-1]}: {LABELS[method]} MSE <= 3x "
            target += f"oracle fit at >= {least}x less compute per trajectory"
            met = bool(ratio <= 3 and speedup >= least)
            out.append(dict(target=target, mse_ratio=ratio, speedup=speedup, met=met))
    if 0.05 in noises and 25 in contexts:
        for system in sorted({r["system"] for r in rows}):
            others = [idx.get((system, m, 0.05, 25)) for m in ("sindy", "oracle_fit")]
            for method in SPEEDUP_TARGETS:
                phys = idx.get((system, method, 0.05, 25))
                if phys is None or None in others:
                    continue
                best = min(o["mse"] for o in others)
                target = f"{SYSTEM_LABELS.get(system, system)}, noise 5 %, context 25: "
                target += f"{LABELS[method]} below SINDy and the oracle fit"
                ratio, met = phys["mse"] / best, bool(phys["mse"] < best)
                out.append(dict(target=target, mse_ratio=ratio, met=met))
    return out


def _winner(idx: dict, system: str, noise: float, L: int) -> str:
    """The method of lowest MSE in a condition, the runner-up's MSE in brackets."""
    found = [m for m in METHODS if (system, m, noise, L) in idx]
    ranked = sorted((idx[(system, m, noise, L)]["mse"], m) for m in found)
    second = f" ({fmt(ranked[1][0], '.3g', 'n/a')})" if len(ranked) > 1 else ""
    return f"{LABELS[ranked[0][1]]} {fmt(ranked[0][0], '.3g', 'n/a')}{second}" if ranked else "n/a"


def _cost(r: dict | None) -> str:
    """`MSE / s per trajectory` of a row (and its failed forecasts)."""
    if r is None:
        return "n/a"
    failed = f" ({r['failed']} failed)" if r.get("failed") else ""
    return f"{fmt(r['mse'], '.3g', 'n/a')} / {r['seconds_per_trajectory']:.2g}{failed}"


def markdown(result: dict) -> str:
    """The README block: where each method wins, the target conditions side by side
    with compute, training, targets and notes."""
    rows = result["rows"]
    idx, (noises, contexts) = _index(rows), _axes(rows)
    names = [s for s in SYSTEM_LABELS if any(r["system"] == s for r in rows)]
    wins = [
        [SYSTEM_LABELS[s], f"{n:.0%}", *(_winner(idx, s, n, L) for L in contexts)]
        for s in names
        for n in noises
    ]
    conditions = [(0.0, contexts[-1]), (noises[-1], contexts[0])]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    side = [
        [SYSTEM_LABELS[s], LABELS[m], *(_cost(idx.get((s, m, n, L))) for n, L in conditions)]
        for s in names
        for m in methods
    ]
    train = sorted({(r["system"], r["method"]): r for r in rows if "train_seconds" in r}.items())
    blocks = [v for v in result.get("block_seconds", {}).values() if v is not None]
    trained = "; ".join(
        f"{SYSTEM_LABELS[s]} {LABELS[m]} {r['train_seconds']:.0f} s ({r['train_steps']} steps)"
        for (s, m), r in train
    )
    targets = [
        f"- {'met' if t['met'] else 'missed'}: {t['target']} (MSE ratio {t['mse_ratio']:.3g}"
        + (f", compute {t['speedup']:.3g}x less" if "speedup" in t else "")
        + ")."
        for t in result["targets"]
    ]
    notes = [f"- {note}" for note in result.get("notes", [])]
    notes += [f"- failed to run: {error}" for error in result.get("errors", [])]
    parts = [
        f"{result['n_test']} test trajectories per system and condition (preset "
        f"`{result['preset']}`, {result['device']}, {result['date']}"
        + (f"; {sum(blocks) / 60:.0f} min of wall-clock in all" if blocks else "")
        + "). Forecast MSE in raw units after the context against the clean trajectory, noise "
        "added to the context only; SINDy and the oracle fit see one context each, WARP and "
        "WARP-Phys were trained once per system and take no gradient step at test time"
        + (REFINED_NOTE if any(m in REFINED for m in methods) else ". ")
        + "Compute = wall-clock of the batched reconstruction / trajectories, after compilation.",
        "**Where each method wins** (lowest MSE; the runner-up's MSE in brackets):",
        table("system | noise | " + " | ".join(f"context {L}" for L in contexts), wins),
        table(
            "system | method | "
            + " | ".join(f"noise {n:.0%}, context {L}: MSE / s per traj." for n, L in conditions),
            side,
        ),
        *([f"Training (once per system, not in the compute above): {trained}."] if train else []),
        "**Targets**",
        "\n".join(targets + notes),
    ]
    return "\n\n".join(parts)
