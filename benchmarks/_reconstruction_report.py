"""The reconstruction table's report: targets and the README's Markdown block, from the
summary JSON that `benchmarks.reconstruction` writes."""

import statistics

from benchmarks._presets import PAPER, SYSTEMS, models_for, run_config

LABELS = {"msd": "MSD", "msd_zero": "MSD-Zero", "lotka_volterra": "LV", "sine": "SINE*"}
COLUMNS = ("gru", "lstm", "transformer", "warp", "warp_phys")  # the paper's column order
NAMES = {"gru": "GRU", "lstm": "LSTM", "transformer": "Transformer", "warp": "WARP",
         "warp_phys": "WARP-Phys"}  # fmt: skip


def _budget(preset: str, system: str) -> str:
    ours, paper = run_config(preset, system, "warp", 0), run_config("paper", system, "warp", 0)
    return (f"{LABELS[system]} {ours.steps * ours.batch_size:,} vs "
            f"{paper.steps * paper.batch_size:,}")  # fmt: skip


def targets(results: dict) -> list[dict]:
    """The cpu preset's targets on the test means: WARP-Phys >= 10x lower MSE than the
    best baseline (GRU, LSTM, Transformer: spec section 5) on MSD, MSD-Zero and SINE
    (the ratio to WARP is reported too); WARP below GRU and LSTM on MSD, MSD-Zero and LV."""
    out = []
    for system in ("msd", "msd_zero", "sine"):
        row = results.get(system, {})
        base = [row[m]["mean"] for m in ("gru", "lstm", "transformer") if m in row]
        if "warp_phys" in row and base:
            phys = row["warp_phys"]["mean"]
            ratio = min(base) / phys
            versus_warp = row["warp"]["mean"] / phys if "warp" in row else None
            out.append({"system": system, "value": ratio, "met": bool(ratio >= 10),
                        "target": f"{system}: WARP-Phys >= 10x below the best baseline",
                        "warp_over_warp_phys": versus_warp})  # fmt: skip
    for system in ("msd", "msd_zero", "lotka_volterra"):
        row = results.get(system, {})
        if all(m in row for m in ("warp", "gru", "lstm")):
            rnn = min(row["gru"]["mean"], row["lstm"]["mean"])
            out.append({"system": system, "target": f"{system}: WARP below GRU and LSTM",
                        "value": rnn / row["warp"]["mean"],
                        "met": bool(row["warp"]["mean"] < rnn)})  # fmt: skip
    return out


def _target_line(t: dict, preset: str) -> str:
    line = f"- {'met' if t['met'] else '**missed**'}: {t['target']} (ratio {t['value']:.2f}"
    if t.get("warp_over_warp_phys") is not None:
        line += f"; WARP / WARP-Phys {t['warp_over_warp_phys']:.2f}"
    line += ")"
    if not t["met"]:
        ours = run_config(preset, t["system"], "warp", 0)
        paper = run_config("paper", t["system"], "warp", 0)
        factor = paper.steps * paper.batch_size / (ours.steps * ours.batch_size)
        line += (f": WARP saw {factor:,.0f}x fewer training sequences than under the paper "
                 "preset; the models are far from converged" if factor > 1 else
                 ": at the paper's training budget")  # fmt: skip
    return line


def seeds_of(results: dict) -> set:
    return {seed for row in results.values() for cell in row.values()
            for seed in cell.get("seeds", [])}  # fmt: skip


def _fmt(mean, std) -> str:
    if mean is None:
        return "n/a"
    digits = 2 if abs(mean) < 100 else 0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(summary: dict, command: str) -> str:
    """The README block: table (ours, then the paper's in brackets), OOD table, targets."""
    res = summary["results"]
    head = "| | " + " | ".join(NAMES[m] for m in COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS)
    lines = [head]
    ood = [head]
    for system in SYSTEMS:
        row = res.get(system, {})
        cells, ood_cells = [], []
        for m in COLUMNS:
            if m not in models_for(system):
                cells.append("✗")
                ood_cells.append("✗")
                continue
            r = row.get(m)
            paper = PAPER[system][m]
            ours = _fmt(r["mean"], r["std"]) if r else "not run"
            cells.append(f"{ours} ({paper:g})" if paper is not None else ours)
            ood_cells.append(_fmt(r["ood_mean"], r["ood_std"]) if r and r["ood_mean"] is not None
                             else "n/a")  # fmt: skip
        lines.append(f"| {LABELS[system]} | " + " | ".join(cells) + " |")
        if system != "sine":
            ood.append(f"| {LABELS[system]} | " + " | ".join(ood_cells) + " |")
    params = ", ".join(
        f"{LABELS[s]} {'/'.join(str(res[s][m]['params']) for m in COLUMNS if m in res[s])}"
        for s in SYSTEMS if s in res
    )  # fmt: skip
    seconds = [r["train_seconds"] for row in res.values() for r in row.values()]
    steps = "; ".join(
        f"{LABELS[s]} " + "/".join(f"{res[s][m]['steps']:.0f}" for m in COLUMNS if m in res[s])
        for s in SYSTEMS if s in res
    )  # fmt: skip
    capped = sum(r.get("stopped_on_time", 0) for row in res.values() for r in row.values())
    naive = ", ".join(f"{LABELS[s]} {v:.3g}" for s, v in summary.get("repeat_last", {}).items()
                      if v is not None)  # fmt: skip
    status = "" if summary["complete"] else (
        f"\n\n**Partial results**: {len(summary['missing'])} runs did not finish "
        f"({', '.join(summary['missing'][:6])}{', ...' if len(summary['missing']) > 6 else ''}).\n"
    )  # fmt: skip
    why = (" Far from convergence (compare the paper's numbers in brackets), the gaps "
           "between models need not be those at convergence.")  # fmt: skip
    budget = "; ".join(_budget(summary["preset"], s) for s in SYSTEMS if s in res)
    checks = "\n".join(_target_line(t, summary["preset"]) for t in summary["targets"])
    c = run_config(summary["preset"], "msd", "warp", 0)
    sine = run_config(summary["preset"], "sine", "warp", 0)
    sizes = (f"Preset sizes (`benchmarks/_presets.py`): WARP root MLP 1-{c.root_width}x"
             f"{c.root_depth}-d, hypernetwork width {c.hyper_width}, baselines matched to "
             f"its parameter count; {c.n_train} training / {c.n_val} validation / {c.n_test} "
             f"test trajectories (SINE {sine.n_train} / {sine.n_val} / {sine.n_test}); "
             f"{c.steps} steps of {c.batch_size} (SINE {sine.steps} of {sine.batch_size}), "
             f"{c.optimizer} {c.lr:g} {c.schedule}, each run capped at {c.max_seconds:.0f} s "
             f"of training; {len(seeds_of(res))} seeds.")  # fmt: skip
    return f"""Test MSE, mean ± std over seeds, ×1e-2 (SINE* ×1e-4); the paper's Table 3 in
brackets. Preset `{summary['preset']}`, {summary['device']}, {summary['date']}; command
`{command}`.{status}

{sizes}

{chr(10).join(lines)}

Out-of-distribution test split (parameters outside the training ranges; SINE has none):

{chr(10).join(ood)}

Parameters (in the column order above): {params}. Optimiser steps done (mean over
seeds): {steps}; {capped} runs stopped on the wall-clock cap before their step budget.
Mean training time per run: {statistics.mean(seconds) if seconds else 0:.0f} s. For scale,
repeating the last observed value scores (same units): {naive or "n/a"}.

Targets of the `{summary['preset']}` preset:

{checks}

Training budget against the paper preset (sequences seen by WARP, steps x batch):
{budget}.{why if any(not t["met"] for t in summary["targets"]) else ""} Nothing was
tuned on the test split: sizes and optimiser were fixed from timings before the run,
and model selection used the validation split.
"""
