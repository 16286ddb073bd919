"""The time-to-accuracy benchmark's result JSON (from its cell records), README block and
figure; the measuring is in `time_to_accuracy.py`."""

from pathlib import Path

import numpy as np

from benchmarks import _harness as harness

BASELINES = ("gru", "lstm", "transformer")
LABELS = dict(warp_phys="WARP-Phys", warp="WARP", gru="GRU", lstm="LSTM", transformer="Transformer")
SYSTEMS, MODELS = ("msd", "msd_zero", "sine"), tuple(LABELS)
SYSTEM_LABELS = {"msd": "MSD", "msd_zero": "MSD-Zero", "sine": "SINE"}
# what the JSON keeps of a final run's record
FINAL_KEYS = ("test_mse", "train_seconds", "steps", "lr", "budget_s", "best_val_mse", "stopped")
FINAL_KEYS += ("test_diverged", "repeat_last_mse", "params", "curve", "test_mse_refined", "refine")


def _final(record: dict, sweep: dict) -> dict:
    """A final cell as the JSON keeps it, with its sweep's best validation MSE per rate."""
    cell = {k: record[k] for k in FINAL_KEYS if k in record}
    return dict(cell, sweep={f"{lr:g}": r.get("best_val_mse") for lr, r in sweep.items()})


def summarise(cells: dict, args, wall_s: float) -> dict:
    """The result JSON: `results` and `headline` (`[system][model]`: the final runs and the
    headline pair's), `identification` (MSD's WARP-Phys, headline first) and how it was
    run; `wall_s`: this session's time, `cells_wall_s`: every cell's, resumed ones too."""

    def table(phase: str) -> dict:
        final = lambda s, m, r: _final(r, cells["sweep"].get(s, {}).get(m, {}))
        return {s: {m: final(s, m, r) for m, r in row.items()} for s, row in cells[phase].items()}

    records = [r for row in cells["sweep"].values() for lrs in row.values() for r in lrs.values()]
    records += [r for p in ("final", "headline") for row in cells[p].values() for r in row.values()]
    msd = [cells[p].get("msd", {}).get("warp_phys", {}) for p in ("headline", "final")]
    found = [r["identification"] for r in msd if "identification" in r]
    scale = f" --scale {args.scale:g}" if args.scale != 1 else ""
    command = f"python -m benchmarks.time_to_accuracy{scale}" + " --smoke" * args.smoke
    command += " --no-sweep" * args.no_sweep + " --lrs " + " ".join(f"{lr:g}" for lr in args.lrs)
    command += f" --protocol {args.protocol}" * (args.protocol != "default")
    for flag, every in (("systems", SYSTEMS), ("models", MODELS)):
        chosen = tuple(getattr(args, flag))
        command += f" --{flag} {' '.join(chosen)}" * (chosen != every)
    if not args.smoke:
        command += "".join(f" --{p}-seconds {s / args.scale:g}" for p, s in args.budgets.items())
    result = dict(device=harness.device(), date=harness.stamp(), command=command)
    result.update(smoke=args.smoke, scale=args.scale, budgets=args.budgets, lrs=list(args.lrs))
    result.update(protocol=args.protocol)
    cells_wall_s = round(sum(r.get("wall_seconds", 0) for r in records), 1)
    result.update(no_sweep=args.no_sweep, wall_s=wall_s, cells_wall_s=cells_wall_s)
    result.update(results=table("final"), headline=table("headline"))
    result["identification"] = found[0] if found else None
    return dict(result, errors=cells["errors"]) if cells["errors"] else result


def _ratio(best: float | None, mse: float | None) -> str:
    ok = best is not None and mse is not None and np.isfinite([best, mse]).all() and mse > 0
    return f"{best / mse:.3g}x" if ok else "-"


def _rows(result: dict) -> list[str]:
    rows = []
    for phase in ("results", "headline"):
        for system, row in result[phase].items():
            final = result["results"].get(system, {})
            base = [final[m]["test_mse"] for m in BASELINES if m in final]
            best = min(base) if base else None
            for model, c in row.items():
                name = LABELS.get(model, model) + (" (headline)" if phase == "headline" else "")
                cells = [SYSTEM_LABELS.get(system, system), name, f"{c['lr']:g}"]
                cells += [f"{c['train_seconds']:.0f}", c["steps"], harness.fmt(c["best_val_mse"])]
                cells += [harness.fmt(c["test_mse"]), _ratio(best, c["test_mse"])]
                rows.append(cells)
                if "test_mse_refined" in c:  # the same model, its prior refined per context
                    refined = c["test_mse_refined"]
                    rows.append(cells[:1] + [f"{name} + refine {c['refine']}"] + cells[2:6])
                    rows[-1] += [harness.fmt(refined), _ratio(best, refined)]
    return rows


def _identification(result: dict) -> str:
    ident = result.get("identification")
    if not ident:
        return "No WARP-Phys MSD run in this result: no identification numbers."
    parts = []
    for name, label in (("omega0", "omega_0"), ("zeta", "zeta")):
        end, std = ident[f"{name}_median_rel_err"], ident[f"{name}_forecast_rel_std"]
        refined = ident.get(f"{name}_refined_median_rel_err")
        parts.append(
            f"- {label}: median relative error {100 * end:.3g} % at the end of the context, "
            f"over the forecast a relative spread (std) of {100 * std:.3g} % (medians over "
            "trajectories)"
            + ("" if refined is None else f"; refined on the context: {100 * refined:.2g} %")
        )
    head = (
        f"Identification by the WARP-Phys MSD run, parameters read from theta at the end "
        f"of the {ident['context']}-step context, {ident['n']} test trajectories "
        "(targets: 1 % for omega_0, 10 % for zeta):"
    )
    return "\n".join([head, *parts])


def markdown(result: dict) -> str:
    """The README block: the table of the final runs, the identification, the figure."""
    b = result["budgets"]
    lrs = ", ".join(f"{lr:g}" for lr in result["lrs"])
    tuning = f"learning rates {lrs} for {b['sweep']:g} s each, the best on validation"
    if result.get("no_sweep"):
        tuning = f"the same learning rate {result['lrs'][0]:g} for every model (no sweep)"
    pair = f" ({b['headline']:g} s for the headline MSD pair)" if result.get("headline") else ""
    intro = (
        f"Every model at its cpu-preset size, tuned alike: {tuning}, then one run of "
        f"{b['final']:g} s{pair} of training wall-clock. "
        f"Measured on {result['device']} on {result['date'][:10]} (`{result['command']}`, "
        f"{result['cells_wall_s'] / 3600:.1f} h of cells). Test MSE in raw units; best val: "
        "normalised units (SINE raw); x best baseline: the best of GRU, LSTM and Transformer's "
        "test MSE over this row's (above 1: this model is lower; for the headline rows too, the "
        "baselines of the equal-budget runs). One seed."
    )
    head = "system | model | lr | s | steps | best val | test MSE | x best baseline"
    forecast = result.get("protocol") == "forecast"
    if forecast:  # the fairness check: no headline pair, no figure (README: its prose)
        intro = intro.replace("tuned alike:", "tuned alike and trained on the forecast:")
    parts = [intro, harness.table(head, _rows(result))]
    parts += [] if forecast else [_identification(result)]
    if result.get("errors"):
        parts.append("Failed cells (rerun the command to retry): " + "; ".join(result["errors"]))
    parts += [] if forecast else ["![time to accuracy](figures/time_to_accuracy.png)"]
    return "\n\n".join(parts)


def draw(result: dict, path: Path) -> None:
    """Validation MSE against training seconds, one panel per system (log y), one line
    per model; the headline runs dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems, headline = list(result["results"]), f" {result['budgets']['headline']:g} s"
    n = max(1, len(systems))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    for ax, system in zip(axes[0], systems, strict=False):
        for phase, style in (("results", "-"), ("headline", "--")):
            for i, (model, cell) in enumerate(result[phase].get(system, {}).items()):
                seconds, val = cell["curve"]["seconds"], cell["curve"]["val_mse"]
                keep = [(s, v) for s, v in zip(seconds, val, strict=True) if v is not None]
                if keep:
                    label = LABELS.get(model, model) + (headline if phase == "headline" else "")
                    color = f"C{list(LABELS).index(model) if model in LABELS else i}"
                    ax.plot(*zip(*keep, strict=True), style, color=color, lw=1.3, label=label)
        ax.set_yscale("log")
        ax.set_title(SYSTEM_LABELS.get(system, system), fontsize=10)
        ax.set_xlabel("training wall-clock (s)")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("validation MSE (model units)")
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle("Validation MSE against training time, equal budget and tuning")
    fig.tight_layout()
    harness.save_figure(fig, path, dpi=110)
