"""The reconstruction table's summary and report: the result JSON from the per-run
records (mean and std over seeds, divergence counts, targets) and the README's Markdown
block from that JSON."""

import statistics

import numpy as np

from benchmarks import _harness as harness
from benchmarks._presets import (
    PAPER,
    SYSTEMS,
    TRANSITION_KINDS,
    TRANSITION_RANK,
    TRANSITION_SYSTEMS,
    UNITS,
    models_for,
    run_config,
    targets,
)

LABELS = {"msd": "MSD", "msd_zero": "MSD-Zero", "lotka_volterra": "LV", "sine": "SINE*"}
COLUMNS = ("gru", "lstm", "transformer", "warp", "warp_phys")  # the paper's column order
NAMES = {
    "gru": "GRU",
    "lstm": "LSTM",
    "transformer": "Transformer",
    "warp": "WARP",
    "warp_phys": "WARP-Phys",
}


def _sequences(preset: str, system: str) -> int:
    """Training sequences WARP sees under a preset: steps x batch."""
    config = run_config(preset, system, "warp", 0)
    return config.steps * config.batch_size


def _target_line(t: dict, preset: str) -> str:
    ratio = "n/a, the other model diverged" if t["value"] is None else f"{t['value']:.2f}"
    line = f"- {'met' if t['met'] else '**missed**'}: {t['target']} (ratio {ratio}"
    if t.get("warp_over_warp_phys") is not None:
        line += f"; WARP / WARP-Phys {t['warp_over_warp_phys']:.2f}"
    line += ")"
    if not t["met"]:
        factor = _sequences("paper", t["system"]) / _sequences(preset, t["system"])
        line += (
            f": WARP saw {factor:,.0f}x fewer training sequences than under the paper "
            "preset; the models are far from converged"
            if factor > 1
            else ": at the paper's training budget"
        )
    return line


def _fmt(mean, std) -> str:
    if mean is None:
        return "n/a"
    digits = 2 if abs(mean) < 100 else 0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cell(r: dict, prefix: str) -> str:
    """A table entry: mean ± std, or, where forecasts diverged, that over the finite
    trajectories marked with a dagger (explained by `_diverged_note`)."""
    if r.get(f"{prefix}diverged"):
        return _fmt(r[f"{prefix}finite_mean"], r[f"{prefix}finite_std"]) + " †"
    return _fmt(r.get(f"{prefix}mean"), r.get(f"{prefix}std"))


def _diverged_note(res: dict) -> str:
    cases = [
        f"{LABELS[s]} {NAMES[m]} {split}: {r[key]} trajector{'y' if r[key] == 1 else 'ies'}"
        for s, row in res.items()
        for m, r in row.items()
        if m in COLUMNS
        for split, key in (("test", "diverged"), ("OOD", "ood_diverged"))
        if r.get(key)
    ]
    if not cases:
        return ""
    return (
        "\n\n† The free-running forecast diverged (NaN or inf) on some trajectories "
        f"({'; '.join(cases)}, summed over seeds); the entry is the MSE over the "
        "others, and the JSON's mean is null."
    )


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
            ours = _cell(r, "") if r else "not run"
            cells.append(f"{ours} ({paper:g})" if paper is not None else ours)
            ood_cells.append(_cell(r, "ood_") if r else "n/a")
        lines.append(f"| {LABELS[system]} | " + " | ".join(cells) + " |")
        if system != "sine":
            ood.append(f"| {LABELS[system]} | " + " | ".join(ood_cells) + " |")
    params = ", ".join(
        f"{LABELS[s]} {'/'.join(str(res[s][m]['params']) for m in COLUMNS if m in res[s])}"
        for s in SYSTEMS
        if s in res
    )
    # only the table's models (other benchmarks merge rows of their own, e.g. anchors' sindy)
    seconds = [r["train_seconds"] for row in res.values() for m, r in row.items() if m in COLUMNS]
    steps = "; ".join(
        f"{LABELS[s]} " + "/".join(f"{res[s][m]['steps']:.0f}" for m in COLUMNS if m in res[s])
        for s in SYSTEMS
        if s in res
    )
    capped = sum(
        r.get("stopped_on_time", 0) for row in res.values() for m, r in row.items() if m in COLUMNS
    )
    naive = ", ".join(
        f"{LABELS[s]} {v:.3g}" for s, v in summary.get("repeat_last", {}).items() if v is not None
    )
    status = (
        ""
        if summary["complete"]
        else (
            f"\n\n**Partial results**: {len(summary['missing'])} runs did not finish "
            f"({', '.join(summary['missing'][:6])}"
            f"{', ...' if len(summary['missing']) > 6 else ''}).\n"
        )
    )
    why = (
        " Far from convergence (compare the paper's numbers in brackets), the gaps "
        "between models need not be those at convergence."
    )
    budget = "; ".join(
        f"{LABELS[s]} {_sequences(summary['preset'], s):,} vs {_sequences('paper', s):,}"
        for s in SYSTEMS
        if s in res
    )
    checks = "\n".join(_target_line(t, summary["preset"]) for t in summary["targets"])
    seeds = {
        seed
        for row in res.values()
        for m, cell in row.items()
        if m in COLUMNS
        for seed in cell.get("seeds", [])
    }
    c = run_config(summary["preset"], "msd", "warp", 0)
    sine = run_config(summary["preset"], "sine", "warp", 0)
    budgets = ", ".join(
        f"{LABELS[s]} {run_config(summary['preset'], s, 'warp', 0).steps}" for s in SYSTEMS
    )
    sizes = (
        f"Preset sizes (`benchmarks/_presets.py`): WARP root MLP 1-{c.root_width}x"
        f"{c.root_depth}-d, hypernetwork width {c.hyper_width}, baselines matched to "
        f"its parameter count; {c.n_train} training / {c.n_val} validation / {c.n_test} "
        f"test trajectories (SINE {sine.n_train} / {sine.n_val} / {sine.n_test}); "
        f"optimiser steps {budgets}, batch {c.batch_size} (SINE {sine.batch_size}), "
        f"{c.optimizer} {c.lr:g} {c.schedule}, each run capped at {c.max_seconds:.0f} s "
        f"of training; {len(seeds)} seeds."
    )
    wall = summary.get("wall_seconds")
    wall = (
        f" The table's runs took {wall / 60:.0f} min of wall clock in all (data, "
        "training and evaluation, one after another)."
        if wall
        else ""
    )
    return f"""Test MSE, mean ± std over seeds, ×1e-2 (SINE* ×1e-4); the paper's Table 3 in
brackets. Preset `{summary["preset"]}`, {summary["device"]}, {summary["date"]}; command
`{command}`.{status}

{sizes}

{chr(10).join(lines)}

Out-of-distribution test split (parameters outside the training ranges; SINE has none):

{chr(10).join(ood)}{_diverged_note(res)}

Parameters (in the column order above): {params}. Optimiser steps done (mean over
seeds): {steps}; {capped} runs stopped on the wall-clock cap before their step budget.
Mean training time per run: {statistics.mean(seconds) if seconds else 0:.0f} s.{wall} For scale,
repeating the last observed value scores (same units): {naive or "n/a"}.

Targets of the `{summary["preset"]}` preset:

{checks}

Training budget against the paper preset (sequences seen by WARP, steps x batch):
{budget}.{why if any(not t["met"] for t in summary["targets"]) else ""} Nothing was
tuned on the test split: sizes and optimiser were fixed from timings before the run
(the step budgets also from seed-0 validation curves), and model selection used the
validation split.
{transitions_markdown(summary)}"""


def stats(values: list) -> tuple[float | None, float | None]:
    """Mean and std over seeds; None when a value is missing or not finite (JSON has no
    NaN: the cell's `diverged` keys say why)."""
    values = [v for v in values if v is not None]
    if not values or not np.all(np.isfinite(values)):
        return None, None
    mean = float(np.mean(values))
    return mean, float(np.std(values)) if len(values) > 1 else 0.0


def json_number(value: float | None) -> float | None:
    return value if value is not None and np.isfinite(value) else None


def divergence(runs: list, split: str) -> dict:
    """The cell's keys for forecasts that diverged on `split` (none when no run did):
    trajectories summed over seeds, and mean / std of each seed's MSE over the finite
    trajectories."""
    count = sum(r.get(f"{split}_diverged", 0) for r in runs)
    if not count:
        return {}
    mean, std = stats([r.get(f"{split}_finite", r.get(split)) for r in runs])
    prefix = "" if split == "test" else f"{split}_"
    return {f"{prefix}diverged": count, f"{prefix}finite_mean": mean, f"{prefix}finite_std": std}


def seed_cell(runs: list) -> dict:
    """The keys a table cell and a transition cell share, from its runs' records (one
    per seed): test / OOD mean and std, parameters, mean training time and steps, runs
    stopped on the clock, per-seed test MSE, and the divergence keys."""
    mean, std = stats([r["test"] for r in runs])
    ood_mean, ood_std = stats([r.get("ood") for r in runs])
    return {
        "mean": mean,
        "std": std,
        "ood_mean": ood_mean,
        "ood_std": ood_std,
        "params": runs[0]["params"],
        "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
        "steps": float(np.mean([r["steps"] for r in runs])),
        "stopped_on_time": sum(r["stopped"] == "time" for r in runs),
        "per_seed": [json_number(r["test"]) for r in runs],
        **divergence(runs, "test"),
        **divergence(runs, "ood"),
    }


def summarise(records: dict, preset: str, seeds, *, smoke: bool = False) -> dict:
    """The result JSON (keys of issue 8) from the per-run records `{"sys/model/seed": rec}`."""
    results, missing, table = {}, [], []
    for system in SYSTEMS:
        row = {}
        for model in models_for(system):
            keys = [f"{system}/{model}/{s}" for s in seeds]
            missing += [k for k in keys if k not in records]
            runs = [records[k] for k in keys if k in records]
            table += runs
            if runs:
                row[model] = {
                    **seed_cell(runs),
                    "paper": PAPER[system][model],
                    "seeds": [s for s, k in zip(seeds, keys, strict=True) if k in records],
                    "per_seed_ood": [json_number(r.get("ood")) for r in runs],
                }
        if row:
            results[system] = row
    # the table's runs, one after another (data, training and evaluation); None for
    # records written before the wall clock was recorded
    timed = all("wall_seconds" in r for r in table)
    wall = sum(r["wall_seconds"] for r in table) if timed else None
    return {
        "preset": preset,
        "smoke": smoke,
        "wall_seconds": wall,
        "complete": not missing,
        "missing": missing,
        "device": harness.device(),
        "date": harness.stamp(),
        "units": {s: UNITS[s] for s in SYSTEMS},
        "results": results,
        "targets": targets(results),
    }


def summarise_transitions(records: dict, results: dict, seeds) -> dict:
    """`{SYSTEM: {KIND: cell}}` of the structured-transition WARP runs among the per-run
    `records` (keys `SYSTEM/warp:KIND/SEED`); a cell has the table's keys (mean, std,
    params, train_seconds, ...) and `vs_dense`, its mean test MSE over the `warp` cell's
    of `results` (None where that cell is missing)."""
    out = {}
    for system in TRANSITION_SYSTEMS:
        for kind in TRANSITION_KINDS:
            runs = [(s, records[k]) for s in seeds if (k := f"{system}/warp:{kind}/{s}") in records]
            if not runs:
                continue
            cell = seed_cell([r for _, r in runs])
            dense = results.get(system, {}).get("warp", {}).get("mean")
            mean = cell["mean"]
            out.setdefault(system, {})[kind] = {
                **cell,
                "seeds": [s for s, _ in runs],
                "vs_dense": mean / dense if dense and mean is not None else None,
                "rank": TRANSITION_RANK if kind == "lowrank" else None,
            }
    return out


def transitions_markdown(summary: dict) -> str:
    """The README's table of WARP's transition kinds against the dense `warp` cell."""
    table = summary.get("transitions", {})
    systems = [s for s in TRANSITION_SYSTEMS if s in table]
    if not systems:
        return ""
    res = summary["results"]
    head = (
        "| A | "
        + " | ".join(f"{LABELS[s]} test | vs dense | params | train s" for s in systems)
        + " |"
    )
    lines = [head, "|---|" + "---|---|---|---|" * len(systems)]
    names = {"dense": "dense (the `warp` cell)", "lowrank": f"lowrank (r = {TRANSITION_RANK})"}
    for kind in ("dense", *TRANSITION_KINDS):
        cells = []
        for s in systems:
            r = res.get(s, {}).get("warp") if kind == "dense" else table[s].get(kind)
            if r is None:
                cells.append("not run | | |")
                continue
            ratio = 1.0 if kind == "dense" else r.get("vs_dense")
            cells.append(
                f"{_cell(r, '')} | "
                f"{'n/a' if ratio is None else f'{ratio:.2f}'} | {r['params']} | "
                f"{r['train_seconds']:.0f}"
            )
        lines.append(f"| {names.get(kind, kind)} | " + " | ".join(cells) + " |")
    seeds = sorted({s for row in table.values() for r in row.values() for s in r["seeds"]})
    steps = ", ".join(
        f"{LABELS[s]} "
        + "/".join(f"{x:.0f}" for x in sorted({r["steps"] for r in table[s].values()}))
        for s in systems
    )
    dims = ", ".join(
        f"{LABELS[s]} "
        + "/".join(
            str(d) for d in sorted({r["D_theta"] for r in table[s].values() if "D_theta" in r})
        )
        for s in systems
    )
    return f"""
WARP transition kinds (`{summary["preset"]}` preset): the `warp` cell above with only the
transition A changed (issue 9), test MSE ×1e-2, mean ± std over seeds {seeds}; "vs dense"
is the ratio of mean test MSE to the dense cell (below 1: better). Command
`.venv/bin/python -m benchmarks.reconstruction --transitions`.

{chr(10).join(lines)}

A's own learning rate is each kind's default, `lr / lr_divisor` (D_theta for dense, 1 for
diagonal, sqrt(D_theta r) for lowrank, the largest block for block), so that one Adam step
moves A by about `lr` in spectral norm for every kind.
Every run did its system's fixed number of optimiser steps ({steps}), as the dense
cell. Train seconds move with the machine's load while each run happened; the speed
benchmark compares step times. At this preset's D_theta ({dims}) A is small for every
kind: this measures what the structure costs in accuracy, not speed or memory.
"""
