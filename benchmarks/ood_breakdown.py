"""Where the out-of-distribution error of the reconstruction table comes from (issue 20).

The MSD OOD split draws (m, k, c) outside the training box, so a trajectory's natural
frequency omega_0 = sqrt(k / m) may lie below, inside or above the training range of
omega_0 (the box's corners: sqrt(k_lo / m_hi) .. sqrt(k_hi / m_lo), 10 .. 28.3). For every
model and seed of `make bench-table` (its run folders under `runs/bench/reconstruction/`,
which must exist) this scores the read-out forecast of each OOD test trajectory and
splits the mean MSE by that group: the mean within each group and each group's share of
the total. WARP-Phys is also scored with its prior refined on each context (`refine
"auto"`, as the table's refined column). Nothing here is chosen: it explains a column.

    python -m benchmarks.ood_breakdown            # results/ood_breakdown.json, a table
    python -m benchmarks.ood_breakdown --render   # the table from the committed JSON
    python -m benchmarks.ood_breakdown --models warp_phys  # after retraining those cells
"""

import math
from pathlib import Path

import numpy as np

from benchmarks import _harness as harness
from benchmarks import _presets as presets
from benchmarks._reconstruction_report import NAMES

SYSTEMS = ("msd", "msd_zero")
MODELS = ("gru", "lstm", "transformer", "warp", "warp_phys")
RUNS = harness.ROOT / "runs" / "bench" / "reconstruction" / "cpu"


def omega0_range(param_ranges: dict) -> tuple[float, float]:
    """The training range of omega_0 = sqrt(k / m) spanned by the (m, k) box."""
    (m_lo, m_hi), (k_lo, k_hi) = param_ranges["m"], param_ranges["k"]
    return math.sqrt(k_lo / m_hi), math.sqrt(k_hi / m_lo)


def true_omega0(params: dict) -> np.ndarray:
    """omega_0 = sqrt(k / m) of each MSD trajectory, from a dataset's `params`."""
    return np.sqrt(np.asarray(params["k"]) / np.asarray(params["m"]))


def breakdown(mse, omega0, low: float, high: float) -> dict:
    """Per-trajectory forecast MSE `(N,)` grouped by omega_0 `(N,)` against the training
    range `[low, high]`: `{"mean", "median", group: {"n", "mean", "share"}}` (a group's
    share: its summed MSE over the total; an empty group has mean None and share 0)."""
    mse, omega0 = np.asarray(mse, np.float64), np.asarray(omega0, np.float64)
    if mse.shape != omega0.shape or mse.ndim != 1:
        raise ValueError(f"mse and omega0 must be (N,) arrays, got {mse.shape}, {omega0.shape}")
    masks = dict(below=omega0 < low, inside=(omega0 >= low) & (omega0 <= high))
    masks["above"] = omega0 > high
    total = mse.sum()
    out = dict(n=int(mse.size), mean=float(mse.mean()), median=float(np.median(mse)))
    for name, mask in masks.items():
        count = int(mask.sum())
        mean = float(mse[mask].mean()) if count else None
        out[name] = dict(n=count, mean=mean, share=float(mse[mask].sum() / total) if total else 0.0)
    return out


def score_cell(folder: Path, refine) -> dict:
    """`breakdown` of one run folder's OOD test split (raw units; `refine` as
    `reconstruct_run`'s), plus the training omega_0 range it used."""
    import systems
    import warp_phys as wp

    run = wp.load_run(folder, "best")
    dataset, _ = wp.run_dataset(run, "ood", count=run.config.n_test)
    out = wp.reconstruct_run(run, dataset.y, context=run.config.context, refine=refine)
    mse = ((out["prediction"] - out["target"]) ** 2).mean(axis=(1, 2))
    system = systems.get_system(run.config.system)
    low, high = omega0_range(system.param_ranges)
    omega0 = true_omega0(dataset.params)
    return dict(breakdown(mse, omega0, low, high), omega0_range=[low, high])


def kept_cells(args) -> dict:
    """The cells of the models not asked for (`--models`), from the JSON at `--out`."""
    if set(args.models) == set(MODELS) or not args.out.is_file():
        return {}
    cells = harness.read_json(args.out)["cells"]
    model = lambda key: key.split("/")[1].removesuffix("_refined")
    return {k: v for k, v in cells.items() if model(k) not in args.models}


def measure(args) -> dict:
    cells, missing = kept_cells(args), []
    for system in SYSTEMS:
        for model in args.models:
            for seed in (0, 1, 2):
                folder = args.runs / system / model / f"seed{seed}"
                if not (folder / "best.eqx").is_file():
                    missing.append(str(folder))
                    continue
                key = f"{system}/{model}/{seed}"
                cells[key] = score_cell(folder, refine=0)
                if model == "warp_phys":
                    cells[f"{system}/warp_phys_refined/{seed}"] = score_cell(folder, "auto")
                print(key, f"{cells[key]['mean']:.4g}", flush=True)
    result = dict(device=harness.device(), date=harness.stamp(), cells=cells, missing=missing)
    return dict(result, units={s: presets.UNITS[s] for s in SYSTEMS})


def markdown(result: dict) -> str:
    """Per system and model, means over the seeds: the OOD mean (table units), the mean
    of the trajectories whose omega_0 is inside the training range, and the share of the
    total from those above it."""
    lines = ["| system | model | OOD mean | omega_0 inside: mean | above: n | above: share |"]
    lines.append("|---|---|---|---|---|---|")
    names = dict(NAMES, warp_phys_refined="WARP-Phys, refined")
    for key in sorted({k.rsplit("/", 1)[0] for k in result["cells"]}):
        system, model = key.split("/")
        seeds = [v for k, v in result["cells"].items() if k.rsplit("/", 1)[0] == key]
        unit = result["units"][system]
        mean = lambda f, seeds=seeds: np.mean([f(c) for c in seeds])
        inside = mean(lambda c: c["inside"]["mean"]) / unit
        share = mean(lambda c: c["above"]["share"])
        cells = [system, names.get(model, model), f"{mean(lambda c: c['mean']) / unit:.3g}"]
        cells += [f"{inside:.3g}", f"{mean(lambda c: c['above']['n']):.0f}", f"{share:.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\nTable units (x1e-2 raw), means over seeds; {result['date']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("ood_breakdown", __doc__)
    parser.add_argument("--runs", type=Path, default=RUNS, help="the table's run folders")
    what = "score these models' folders only; the others' cells are kept from --out's JSON"
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS, help=what)
    args = harness.parse(parser, argv)
    args.no_readme = True  # the README cites these numbers in prose
    return harness.report(args, lambda: measure(args), markdown)


if __name__ == "__main__":
    main()
