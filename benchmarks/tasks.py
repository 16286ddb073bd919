"""WARP beyond dynamical systems: UEA classification, digit completion and in-context
linear regression, WARP against GRU, LSTM and the Transformer at equal budget.

Every cell is one `warp_phys.tasks.run_task`: the same optimiser steps, batch, Adam with
a cosine decay, input embedding and parameter count (the baselines are sized to WARP's,
`hidden_size_for`) for every model. `--tune` gives every model two settings per task
(`TUNED`: with or without the embedding, or two learning rates) and keeps the one with
the lower validation score averaged over the seeds (twice the cost). The model kept is
the best on a validation split carved from the training split, scored once on test;
3 seeds. Cells run one after the other in this process and are kept under
`runs/bench_tasks/`, so a rerun skips the finished ones.
Needs the tasks extra (`pip install 'warp-phys[tasks]'`: aeon, scikit-learn).

    python -m benchmarks.tasks            # 20 min on 2 cores (make bench-tasks)
    python -m benchmarks.tasks --render   # the table and figures, from the committed JSON
"""

from pathlib import Path

import jax
import numpy as np

from benchmarks import _harness as harness
from warp_phys.tasks import TaskOptions, load_digits, run_task

MODELS = ("warp", "gru", "lstm", "transformer")
# task: its options, the same for every model (WARP's A and root shape the baselines
# through its parameter count only). Classification, ICL: every model reads a per-step
# MLP embedding, WARP its running sum; digits: WARP's A starts as random rotations.
# fmt: off
TASKS = {
    "basic_motions": dict(steps=150, batch_size=16, root_width=32, val_every=25, embed=16),
    "japanese_vowels": dict(steps=300, batch_size=32, root_width=32, val_every=50, embed=16),
    "digits": dict(steps=300, root_width=16, root_depth=2, val_every=50,
                   transition_init="rotation", transition_lr=1e-4),
    "icl": dict(steps=2000, batch_size=64, root_width=24, root_depth=2, val_every=200,
                embed=16, embed_window=2, embed_raw=True, transition="diagonal"),
}
# each model's candidates with --tune (the same for all), chosen on mean validation
TUNED = {"basic_motions": ({}, {"embed": 0}), "japanese_vowels": ({}, {"embed": 0}),
         "digits": ({}, {"lr": 1e-3}), "icl": ({}, {"lr": 1e-3})}
# fmt: on
SMOKE = dict(steps=2, batch_size=4, root_width=4, root_depth=1, val_every=1)
SEEDS = (0, 1, 2)


def cell(task: str, model: str, seed: int, smoke: bool, setting: dict) -> dict:
    """One trained and tested model with `setting` over the task's options: the test
    metric, the best validation score, the training seconds, and the digits' BPD and
    first completions / the ICL curves."""
    options = {**TASKS[task], **setting, **(SMOKE if smoke else {})}
    if smoke and task == "icl":
        options.update(icl_pairs=6, icl_dim=2)
    _, history, result = run_task(TaskOptions(task=task, model=model, seed=seed, **options))
    out = {k: v for k, v in result.items() if k != "completions"}
    if "completions" in result:
        out["completions"] = np.asarray(result["completions"]).round(4).tolist()
    best_val = min((v for v in history["val"] if np.isfinite(v)), default=None)
    return dict(out, seconds=float(history["seconds"][-1]), options=options, best_val=best_val)


def measure(args) -> dict:
    folder = Path("runs/bench_tasks")
    tasks = args.tasks or list(TASKS)
    seeds = SEEDS[: 1 if args.smoke else args.seeds]
    cells, chosen = {}, {}

    def run(task, model, seed, setting):
        name = "".join(f"_{k}{v}" for k, v in setting.items())
        done = folder / f"{task}_{model}_{seed}{name}.json"
        if done.exists() and not args.smoke:
            cached = harness.read_json(done)
            if cached["options"] == {**TASKS[task], **setting}:  # else the options changed
                return cached
        result = cell(task, model, seed, args.smoke, setting)
        if not args.smoke:
            harness.write_json(done, result)
        return result

    for task in tasks:
        for model in MODELS:
            settings = TUNED.get(task, ({},)) if args.tune else ({},)
            trials = [[run(task, model, s, c) for s in seeds] for c in settings]
            scores = [np.mean([np.inf if r["best_val"] is None else r["best_val"] for r in t])
                      for t in trials]  # fmt: skip
            best = int(np.argmin(scores))
            runs, chosen[f"{task}/{model}"] = trials[best], settings[best]
            for seed, result in zip(seeds, runs, strict=True):
                cells[f"{task}/{model}/{seed}"] = result
                metric = result["metric"]
                print(task, model, seed, metric, harness.fmt(result[metric]), flush=True)
    out = dict(chosen=chosen, tuned=args.tune, smoke=args.smoke, device=harness.device())
    return dict(summarise(cells, tasks, seeds), **out, date=harness.stamp(), load=harness.load())


def summarise(cells: dict, tasks, seeds) -> dict:
    """`results[task][model]` = metric, mean, std, values over seeds (+ BPD), the ICL
    curves and the digits' completions of seed 0."""
    results, curves, completions, seconds = {}, {}, {}, 0.0
    for task in tasks:
        results[task], curves_task = {}, {}
        for model in MODELS:
            runs = [cells[f"{task}/{model}/{s}"] for s in seeds]
            metric = runs[0]["metric"]
            values = [r[metric] for r in runs]
            mean, std, seconds_each = np.mean(values), np.std(values), [r["seconds"] for r in runs]
            row = dict(metric=metric, mean=float(mean), std=float(std), values=values,
                       seconds=float(np.mean(seconds_each)))  # fmt: skip
            seconds += sum(seconds_each)
            if task == "digits":
                row["bpd"] = float(np.mean([r["bpd"] for r in runs]))
                completions[model] = runs[0]["completions"]
            if task == "icl":
                row["least_squares"], row["pairs"] = runs[0]["least_squares"], runs[0]["pairs"]
                curves_task[model] = np.mean([r["curve"] for r in runs], axis=0).tolist()
                curves_task["least_squares"] = runs[0]["ls_curve"]
            results[task][model] = row
        if curves_task:
            curves[task] = curves_task
    options = {task: TASKS[task] for task in tasks}
    return dict(results=results, curves=curves, completions=completions, options=options,
                seeds=len(seeds), train_seconds=seconds)  # fmt: skip


def markdown(r: dict) -> str:
    rows = []
    for task, models in r["results"].items():
        metric = next(iter(models.values()))["metric"]
        scale, spec = (100, ".1f") if metric == "accuracy" else (1, ".3g")
        cells = [
            f"{harness.fmt(scale * m['mean'], spec)} ± {harness.fmt(scale * m['std'], spec)}"
            for m in models.values()
        ]
        name = f"{metric} %" if metric == "accuracy" else "MSE"
        rows.append((task, name, *cells, r["options"][task]["steps"]))
        if task == "digits":
            rows.append(("digits", "BPD", *[harness.fmt(m["bpd"]) for m in models.values()], ""))
    head = "task | metric | " + " | ".join(MODELS) + " | steps"
    icl = r["results"].get("icl", {}).get("warp")
    ls = icl and harness.fmt(icl["least_squares"])
    note = (
        f" ICL: MSE of y after {icl['pairs']} context pairs (least squares: {ls})." if icl else ""
    )
    return (
        f"Test metrics, mean ± std over {r['seeds']} seeds; every model gets the same steps, "
        f"batch, input and parameter count, and is selected on validation.{note}{_chosen(r)} "
        f"Digits: forecast of pixels 33-64 from the first 32 (values in [0, 1]); BPD: "
        f"discretised Gaussian over the 17 grey levels with sigma the validation RMSE "
        f"(uniform: 4.09). {r['train_seconds'] / 60:.0f} min of training on {r['device']}, "
        f"load {r['load']:.1f}, {r['date']}.\n\n" + harness.table(head, rows) + "\n\n"
        + " ".join(f"![{task}](figures/tasks_{task}.png)" for task in r["results"])
    )  # fmt: skip


def _chosen(r: dict) -> str:
    """The settings chosen on validation with `--tune` ("as above": the task's own)."""
    picks = [
        f"{key.replace('/', ' ')} {' '.join(f'{k} {v:g}' for k, v in c.items()) or 'as above'}"
        for key, c in r.get("chosen", {}).items()
    ]
    return f" Chosen on validation: {', '.join(picks)}." if r.get("tuned") else ""


def draw(r: dict, figure: Path) -> None:
    """One PNG per task next to `figure`: accuracy per model with its seeds, the
    completed digits, the ICL error against the number of context pairs."""
    import matplotlib.pyplot as plt

    for task, models in r["results"].items():
        path = figure.with_name(f"{figure.stem}_{task}.png")
        if task == "digits" and r["completions"]:
            fig = _digits_figure(r["completions"], plt)
        elif task in r["curves"]:
            fig, ax = plt.subplots(figsize=(5, 3.5))
            for name, curve in r["curves"][task].items():
                ax.semilogy(curve, "k--" if name == "least_squares" else "-", label=name)
            ax.axvline(models["warp"]["pairs"], color="grey", lw=0.5)
            # least squares peaks where the pairs equal the dimension (interpolation)
            learned = [max(c) for n, c in r["curves"][task].items() if n != "least_squares"]
            ax.set_ylim(top=3 * max(learned))
            ax.set(xlabel="context pairs", ylabel="test MSE of y", title="in-context regression")
            ax.legend(fontsize=8)
        else:
            fig, ax = plt.subplots(figsize=(4.5, 3))
            for i, m in enumerate(models.values()):
                ax.plot([i] * len(m["values"]), 100 * np.asarray(m["values"]), "o", alpha=0.6)
                ax.plot(i, 100 * m["mean"], "k_", ms=20)
            ticks = dict(xticks=range(len(models)), xticklabels=list(models))
            ax.set(**ticks, ylabel="test accuracy %", title=task)
        fig.tight_layout()
        harness.save_figure(fig, path)


def _digits_figure(completions: dict, plt):
    """Rows: the test digits, then each model's completion of their bottom half."""
    (test,) = load_digits()["test"]
    first = next(iter(completions.values()))
    count, context = len(first), 64 - len(first[0])
    fig, axes = plt.subplots(1 + len(completions), count, figsize=(1.1 * count, 6))
    rows = {"test": test[:count, :, 0]}
    for name, forecast in completions.items():
        rows[name] = np.concatenate([test[:count, :context, 0], np.asarray(forecast)], axis=1)
    for axs, (name, images) in zip(axes, rows.items(), strict=True):
        for ax, image in zip(axs, images, strict=True):
            ax.imshow(np.clip(image, 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.axhline(context / 8 - 0.5, color="red", lw=0.6)
        axs[0].set_ylabel(name, fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> dict:
    """Runs the comparison (or `--render`s), prints the table, writes JSON and figures."""
    parser = harness.parser("tasks", __doc__, figure=True)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="default: all four")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), choices=[1, 2, 3])
    parser.add_argument("--tune", action="store_true", help="two settings per model (TUNED)")
    args = harness.parse(parser, argv)
    if not (args.smoke or args.render):  # seeds and settings compile the same programs
        jax.config.update("jax_compilation_cache_dir", str(Path("runs/jax_cache").resolve()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    result = harness.read_json(args.render) if args.render else measure(args)
    return harness.finish(args, result, markdown, lambda r: draw(r, args.figure))


if __name__ == "__main__":
    main()
