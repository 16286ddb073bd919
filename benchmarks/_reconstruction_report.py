"""The reconstruction table's result JSON from the per-run records (mean and std over
seeds, divergence counts, targets) and its README block."""

import numpy as np

from benchmarks import _harness as harness
from benchmarks import _presets as presets
from benchmarks._harness import table
from benchmarks._presets import SYSTEMS, run_config

LABELS = {"msd": "MSD", "msd_zero": "MSD-Zero", "lotka_volterra": "LV", "sine": "SINE*"}
NAMES = {"gru": "GRU", "lstm": "LSTM", "transformer": "Transformer", "warp": "WARP"}
NAMES["warp_phys"] = "WARP-Phys"  # the keys in the paper's column order
REFINED = "warp_phys_refined"  # WARP-Phys's runs, the prior refined on each context
NAMES[REFINED] = "WARP-Phys, refined"


def _target_line(t: dict) -> str:
    ratio = "n/a, the other model diverged" if t["value"] is None else f"{t['value']:.2f}"
    if t.get("warp_over_warp_phys") is not None:
        ratio += f"; WARP / WARP-Phys {t['warp_over_warp_phys']:.2f}"
    return f"- {'met' if t['met'] else '**missed**'}: {t['target']} (ratio {ratio})"


def _cell(r: dict | None, prefix: str = "", missing: str = "not run") -> str:
    """A table entry: mean ± std, n/a where a seed's forecast diverged (a null mean)."""
    if r is None:
        return missing
    mean, std = r.get(f"{prefix}mean"), r.get(f"{prefix}std")
    if mean is None:
        return "n/a"
    spec = ".1e" if 0 < abs(mean) < 0.01 else (".2f" if abs(mean) < 100 else ".0f")
    return f"{mean:{spec}} ± {std:{spec}}"


def _tables(res: dict) -> tuple[str, str]:
    """The test table (the paper's numbers in brackets) and the OOD one."""
    test, ood = [], []
    for system in SYSTEMS:
        row, cells, ood_cells = res.get(system, {}), [], []
        for m in NAMES:
            if m not in presets.models_for(system) and m not in row:
                cells, ood_cells = cells + ["✗"], ood_cells + ["✗"]
                continue
            paper = presets.PAPER[system].get(m)
            cells.append(_cell(row.get(m)) + ("" if paper is None else f" ({paper:g})"))
            ood_cells.append(_cell(row.get(m), "ood_", "n/a"))
        test.append([LABELS[system], *cells])
        ood += [[LABELS[system], *ood_cells]] if system != "sine" else []
    head = " | " + " | ".join(NAMES.values())
    return table(head, test), table(head, ood)


def markdown(summary: dict, command: str) -> str:
    """The README block: test table, OOD table, sizes and budgets, targets."""
    res, preset = summary["results"], summary["preset"]
    cells = [(s, [row[m] for m in NAMES if m in row and m != REFINED]) for s, row in res.items()]
    per_row = lambda sep, of: sep.join(f"{LABELS[s]} " + "/".join(map(of, rs)) for s, rs in cells)
    params = per_row(", ", lambda r: str(r["params"]))
    steps = per_row("; ", lambda r: f"{r['steps']:.0f}")
    capped = sum(r.get("stopped_on_time", 0) for _, rs in cells for r in rs)
    seen = {s: [run_config(p, s, "warp", 0) for p in (preset, "paper")] for s in res}
    budget = "; ".join(
        f"{LABELS[s]} {a.steps * a.batch_size:,} vs {b.steps * b.batch_size:,}"
        for s, (a, b) in seen.items()
    )
    c, sine = run_config(preset, "msd", "warp", 0), run_config(preset, "sine", "warp", 0)
    seeds = {seed for _, rs in cells for r in rs for seed in r.get("seeds", [])}
    wall, missing = summary.get("wall_seconds"), summary["missing"]
    test, ood = _tables(res)
    parts = [
        f"Test MSE, mean ± std over {len(seeds)} seeds, ×1e-2 (SINE* ×1e-4); the paper's Table 3 "
        f"in brackets. Preset `{preset}` (`benchmarks/_presets.py`: WARP root MLP "
        f"{c.root_width}x{c.root_depth}, hypernetwork width {c.hyper_width}, "
        + (f"feature drive {c.drive_features}, " if c.drive_features else "")
        + "baselines matched to the parameter count of that WARP; "
        f"{c.n_train} / {c.n_val} / {c.n_test} train / val / test trajectories, SINE "
        f"{sine.n_train} / {sine.n_val} / {sine.n_test}; batch "
        f"{c.batch_size}, SINE {sine.batch_size}; {c.optimizer} {c.lr:g} {c.schedule}, each run "
        f"capped at {c.max_seconds:.0f} s), {summary['device']}, {summary['date']}"
        + (f", {wall / 60:.0f} min of wall clock in all" if wall else "")
        + f"; command `{command}`.",
        *[
            f"**Partial results**: {len(missing)} runs did not finish ({', '.join(missing[:6])}"
            f"{', ...' if len(missing) > 6 else ''})."
        ][: not summary["complete"]],
        test,
        "Out-of-distribution test split (parameters outside the training ranges):",
        ood,
        f"Parameters (column order): {params}. Optimiser steps done (mean over seeds): "
        f"{steps}; {capped} runs stopped on the wall-clock cap.",
        f"Targets of the `{preset}` preset (training sequences seen by WARP against the paper "
        f"preset: {budget}; far from convergence, the gaps between models need not be those "
        "at convergence; nothing was tuned on the test split):",
        "\n".join(map(_target_line, summary["targets"])),
    ]
    return "\n\n".join(parts)


def stats(values: list) -> tuple[float | None, float | None]:
    """Mean and std over seeds; None when a value is missing or not finite (a forecast
    diverged: NaN or inf)."""
    values = [v for v in values if v is not None]
    if not values or not np.all(np.isfinite(values)):
        return None, None
    return float(np.mean(values)), float(np.std(values)) if len(values) > 1 else 0.0


def seed_cell(runs: list) -> dict:
    """A table cell from its runs' records (one per seed): test / OOD mean and std, size,
    mean training time and steps, runs stopped on the clock, per-seed MSEs."""
    (mean, std), (ood_mean, ood_std) = (stats([r.get(k) for r in runs]) for k in ("test", "ood"))
    cell = dict(mean=mean, std=std, ood_mean=ood_mean, ood_std=ood_std, params=runs[0]["params"])
    cell["train_seconds"] = float(np.mean([r["train_seconds"] for r in runs]))
    cell["steps"] = float(np.mean([r["steps"] for r in runs]))
    cell["stopped_on_time"] = sum(r["stopped"] == "time" for r in runs)
    finite = lambda v: v if v is not None and np.isfinite(v) else None  # JSON has no NaN
    cell["per_seed"] = [finite(r["test"]) for r in runs]
    cell["per_seed_ood"] = [finite(r.get("ood")) for r in runs]
    return cell


def summarise(records: dict, preset: str, seeds, *, smoke: bool = False) -> dict:
    """The result JSON (keys of issue 8) from the per-run records `{"sys/model/seed": rec}`."""
    results, missing, table_runs = {}, [], []
    for system in SYSTEMS:
        row = {}
        for model in presets.models_for(system):
            keys = [f"{system}/{model}/{s}" for s in seeds]
            missing += [k for k in keys if k not in records]
            runs = [records[k] for k in keys if k in records]
            table_runs += runs
            if runs:
                done = [s for s, k in zip(seeds, keys, strict=True) if k in records]
                row[model] = seed_cell(runs) | dict(paper=presets.PAPER[system][model], seeds=done)
            if runs and all("test_refined" in r for r in runs):
                refined = [dict(r, test=r["test_refined"], ood=r.get("ood_refined")) for r in runs]
                row[REFINED] = seed_cell(refined) | dict(paper=None, seeds=done)
        if row:
            results[system] = row
    # the table's runs one after another (data, training and evaluation); None for
    # records written before the wall clock was recorded
    timed = all("wall_seconds" in r for r in table_runs)
    wall = sum(r["wall_seconds"] for r in table_runs) if timed else None
    out = dict(preset=preset, smoke=smoke, wall_seconds=wall, complete=not missing)
    out.update(missing=missing, device=harness.device(), date=harness.stamp())
    out["units"] = {s: presets.UNITS[s] for s in SYSTEMS}
    return dict(out, results=results, targets=presets.targets(results))
