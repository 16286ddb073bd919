"""Figures, targets, README block and the reconstruction.json merge of `benchmarks.anchors`."""

from pathlib import Path

import numpy as np

from benchmarks import _harness as harness

METHODS = ("sindy", "oracle_fit", "warp_phys", "warp")
LABELS = {"sindy": "SINDy", "oracle_fit": "oracle fit", "warp_phys": "WARP-Phys", "warp": "WARP"}
COLORS = {
    "sindy": "tab:orange",
    "oracle_fit": "tab:green",
    "warp_phys": "tab:blue",
    "warp": "tab:purple",
}
SYSTEM_LABELS = {"msd": "MSD", "msd_zero": "MSD-Zero", "lotka_volterra": "LV"}


def _index(rows: list[dict]) -> dict:
    return {(r["system"], r["method"], r["noise"], r["context"]): r for r in rows}


def _axes(rows):
    noises = sorted({r["noise"] for r in rows})
    contexts = sorted({r["context"] for r in rows})
    return noises, contexts


def plot_system(rows: list[dict], system: str, path: Path) -> None:
    """`figures/anchors_<system>.png`: MSE vs context (noise-free solid, noisiest dashed)
    and MSE vs noise (shortest context solid, longest dashed), one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["system"] == system]
    idx = _index(rows)
    noises, contexts = _axes(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in METHODS:
        color = COLORS[method]
        for noise, style in ((noises[0], "-"), (noises[-1], "--")):
            ys = [idx.get((system, method, noise, L), {}).get("mse", np.nan) for L in contexts]
            left.plot(
                contexts,
                ys,
                style,
                marker="o",
                color=color,
                label=f"{LABELS[method]}, noise {noise:.0%}",
            )
        for L, style in ((contexts[0], "-"), (contexts[-1], "--")):
            ys = [idx.get((system, method, n, L), {}).get("mse", np.nan) for n in noises]
            right.plot(
                [100 * n for n in noises],
                ys,
                style,
                marker="o",
                color=color,
                label=f"{LABELS[method]}, context {L}",
            )
    left.set(
        xlabel="context length (steps)",
        ylabel="forecast MSE (raw units)",
        yscale="log",
        xticks=contexts,
        title="MSE vs context",
    )
    right.set(
        xlabel="observation noise (% of channel std)",
        yscale="log",
        xticks=[100 * n for n in noises],
        title="MSE vs noise",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"{SYSTEM_LABELS.get(system, system)}: forecast after the context, "
        "per-trajectory fits vs amortised WARP"
    )
    fig.tight_layout()
    harness.save_figure(fig, path, dpi=110)


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, each with its numbers and `met` (None when a row is missing).

    - noise-free MSD at the paper's longest context: WARP-Phys's MSE within 3x of the
      oracle fit's, with >= 100x less compute per trajectory;
    - 5 % noise, 25-step context, every system: WARP-Phys below SINDy and the oracle fit.
    """
    idx = _index(rows)
    noises, contexts = _axes(rows)
    out = []
    phys = idx.get(("msd", "warp_phys", 0.0, contexts[-1]))
    oracle = idx.get(("msd", "oracle_fit", 0.0, contexts[-1]))
    if phys and oracle:
        mse_ratio = phys["mse"] / oracle["mse"]
        speedup = oracle["seconds_per_trajectory"] / phys["seconds_per_trajectory"]
        out.append(
            {
                "target": f"MSD, noise 0, context {contexts[-1]}: WARP-Phys MSE <= 3x oracle fit "
                "at >= 100x less compute per trajectory",
                "mse_ratio": mse_ratio,
                "speedup": speedup,
                "met": bool(mse_ratio <= 3 and speedup >= 100),
            }
        )
    if 0.05 in noises and 25 in contexts:
        for system in sorted({r["system"] for r in rows}):
            phys = idx.get((system, "warp_phys", 0.05, 25))
            others = [idx.get((system, m, 0.05, 25)) for m in ("sindy", "oracle_fit")]
            if phys is None or None in others:
                continue
            best = min(o["mse"] for o in others)
            out.append(
                {
                    "target": f"{SYSTEM_LABELS.get(system, system)}, noise 5 %, context 25: "
                    "WARP-Phys below SINDy and the oracle fit",
                    "mse_ratio": phys["mse"] / best,
                    "met": bool(phys["mse"] < best),
                }
            )
    return out


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def markdown(result: dict) -> str:
    """The README block: where each method wins, the target conditions side by side
    with compute, and the targets met / missed."""
    rows = result["rows"]
    idx = _index(rows)
    noises, contexts = _axes(rows)
    system_names = [s for s in SYSTEM_LABELS if any(r["system"] == s for r in rows)]
    lines = [
        f"{result['n_test']} test trajectories per system and condition (preset "
        f"`{result['preset']}`, {result['device']}, {result['date']}). Forecast MSE in raw "
        "units over every step after the context, against the clean trajectory; noise is "
        "added to the context only. SINDy and the oracle fit see one context each; WARP "
        "and WARP-Phys were trained once per system (noise levels mixed into the training "
        "inputs, training time below) and take no gradient step at test time. Compute = "
        "wall-clock of the batched reconstruction / trajectories, after compilation.",
        "",
        "**Where each method wins** (lowest MSE; the runner-up's MSE in brackets):",
        "",
        "| system | noise | " + " | ".join(f"context {L}" for L in contexts) + " |",
        "|---|---|" + "---|" * len(contexts),
    ]
    for s in system_names:
        for n in noises:
            cells = []
            for L in contexts:
                ranked = sorted(
                    (idx[(s, m, n, L)]["mse"], m) for m in METHODS if (s, m, n, L) in idx
                )
                if not ranked:
                    cells.append("n/a")
                    continue
                second = f" ({_fmt(ranked[1][0])})" if len(ranked) > 1 else ""
                cells.append(f"{LABELS[ranked[0][1]]} {_fmt(ranked[0][0])}{second}")
            lines.append(f"| {SYSTEM_LABELS[s]} | {n:.0%} | " + " | ".join(cells) + " |")
    conditions = [(0.0, contexts[-1]), (noises[-1], contexts[0])]
    head = " | ".join(f"noise {n:.0%}, context {L}: MSE / s per traj." for n, L in conditions)
    lines += ["", f"| system | method | {head} |", "|---|---|---|---|"]
    for s in system_names:
        for m in METHODS:
            cells = []
            for n, L in conditions:
                r = idx.get((s, m, n, L))
                cells.append(
                    "n/a"
                    if r is None
                    else f"{_fmt(r['mse'])} / {r['seconds_per_trajectory']:.2g}"
                    + (f" ({r['failed']} failed)" if r.get("failed") else "")
                )
            lines.append(f"| {SYSTEM_LABELS[s]} | {LABELS[m]} | " + " | ".join(cells) + " |")
    train = {(r["system"], r["method"]): r for r in rows if "train_seconds" in r}
    if train:
        lines += [
            "",
            "Training (once per system, not in the compute above): "
            + "; ".join(
                f"{SYSTEM_LABELS[s]} {LABELS[m]} {r['train_seconds']:.0f} s ({r['train_steps']} "
                "steps)"
                for (s, m), r in sorted(train.items())
            )
            + ".",
        ]
    blocks = [v for v in result.get("block_seconds", {}).values() if v is not None]
    if blocks:
        lines[-1] += f" Whole benchmark: {sum(blocks) / 60:.0f} min of wall-clock."
    lines += ["", "**Targets**", ""]
    for t in result["targets"]:
        numbers = f"MSE ratio {t['mse_ratio']:.3g}"
        if "speedup" in t:
            numbers += f", compute {t['speedup']:.3g}x less"
        lines.append(f"- {'met' if t['met'] else 'missed'}: {t['target']} ({numbers}).")
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    for error in result.get("errors", []):
        lines.append(f"- failed to run: {error}")
    figures = " ".join(f"![{s}](figures/anchors_{s}.png)" for s in system_names)
    lines += ["", figures]
    return "\n".join(lines)


def merge_into_reconstruction(anchors: dict, path: Path) -> bool:
    """Adds `sindy` and `oracle_fit` under each MSD / MSD-Zero row of the reconstruction
    table JSON (`results[system][method]`), from the noise-free context-100 rows.

    Values use that file's units (`units[system]`) and its `mean` key, with the
    anchors' `n_test`, compute per trajectory and a `source` note. LV is left out: the
    table's LV row is the repeat-copy task under full teacher forcing, not a forecast.
    Runs only when `path` exists and its table is complete.

    **Returns:** whether the file was updated.
    """
    path = Path(path)
    if not path.is_file():
        return False
    table = harness.read_json(path)
    if not table.get("complete") or table.get("smoke"):
        return False
    idx = _index(anchors["rows"])
    for system in ("msd", "msd_zero"):
        row = table.get("results", {}).get(system)
        if row is None:
            continue
        unit = table.get("units", {}).get(system, 1.0)
        for method in ("sindy", "oracle_fit"):
            r = idx.get((system, method, 0.0, 100))
            if r is None:
                continue
            row[method] = {
                "mean": r["mse"] / unit,
                "std": None,
                "paper": None,
                "seconds_per_trajectory": r["seconds_per_trajectory"],
                "failed": r["failed"],
                "n_test": anchors["n_test"],
                "source": "benchmarks/anchors.py (noise 0, context 100; its own test draw)",
            }
    harness.write_json(path, table)
    return True
