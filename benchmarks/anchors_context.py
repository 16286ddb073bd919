"""Which training context for the anchors benchmark's held WARP-Phys? (issue 20)

A WARP-Phys with the held state trains the forecast after `train_context` observed steps,
but the anchors benchmark forecasts after contexts of 25, 50 and 100 steps at noise 0, 1
and 5 %, from one model per system. This trains the anchors' WARP-Phys (its preset: root
16x2, 512 noisy training trajectories, 120 s) once advancing, as the rows of 2026-12-01
(paper's drive and teacher forcing), and held with each training context, and scores
every (noise, context) forecast on VALIDATION trajectories the training never saw (64,
another data seed): the choice of `Preset.train_context` is made here, never on test.
Variants already in the JSON are kept (a new variant trains alone).

    python -m benchmarks.anchors_context --systems msd         # one process per system,
    python -m benchmarks.anchors_context --systems msd_zero    # each on its own core
    python -m benchmarks.anchors_context --render              # README block from the JSON
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks._anchors_rows import _observed, _scores, load_data, train_warp
from benchmarks.anchors import PRESETS

SYSTEMS = ("msd", "msd_zero")
N_SCORE, SCORE_SEED = 64, 7  # the scoring trajectories: the val split of another data seed


def variants(preset) -> dict:
    """`{name: preset}`: advancing; held with each of the benchmark's contexts, and with
    one drawn per training sequence over their range (`train_context_max`)."""
    everywhere = dict(held=SYSTEMS, train_context_max=None)
    out = {"advance": dataclasses.replace(preset, held=())}
    for L in preset.contexts:
        out[f"hold, train context {L}"] = dataclasses.replace(preset, **everywhere, train_context=L)
    low, high = min(preset.contexts), max(preset.contexts)
    drawn = dataclasses.replace(preset, held=SYSTEMS, train_context=low, train_context_max=high)
    return out | {f"hold, train context {low}..{high}": drawn}


def score(system: str, preset, smoke: bool, done: dict) -> dict:
    """Every variant of `system` not in `done` (its cells of an earlier run) trained, its
    forecast MSE (raw) per `noise/context` on the scoring trajectories, and their
    geometric mean."""
    data = load_data(system, preset)
    n = 4 if smoke else N_SCORE
    scoring = systems.generate(system, n, split="val", seed=SCORE_SEED)
    data = dict(data, val=np.asarray(scoring.y, np.float32))  # what `_observed` perturbs
    out, T = dict(done), data["val"].shape[1]
    for name, variant in variants(preset).items():
        if name in out:
            continue
        model, norm, seconds, history = train_warp(system, "warp_phys", data, variant)
        mse = {}
        for noise in preset.noises:
            observed = _observed(data, "val", noise)
            for L in preset.contexts:
                context = norm.apply(jnp.asarray(observed[:, :L]))
                forecast = np.asarray(norm.invert(wp.reconstruct(model, context, T - L)))
                mse[f"{noise:g}/{L}"] = _scores(forecast, data["val"][:, L:], data["bound"])["mse"]
        geo = float(np.exp(np.mean(np.log(list(mse.values())))))
        out[name] = dict(mse=mse, geometric_mean=geo, steps=history["step"][-1],
                         train_seconds=round(seconds, 1))  # fmt: skip
        print(f"{system} {name}: geometric mean {geo:.4g} ({out[name]['steps']} steps)", flush=True)
    return out


def measure(args) -> dict:
    """The asked-for systems scored, merged into `--out`'s other systems (read at the end:
    two processes, one per system, may share the file)."""
    preset = PRESETS["smoke" if args.smoke else "cpu"]
    done = lambda: harness.read_json(args.out) if args.out.is_file() and not args.smoke else {}
    earlier = done().get("systems", {})
    cells = {s: score(s, preset, args.smoke, earlier.get(s, {})) for s in args.systems}
    cells = {**done().get("systems", {}), **cells}
    return dict(systems=cells, n_score=N_SCORE, device=harness.device(), date=harness.stamp())


def markdown(result: dict) -> str:
    rows = []
    for system, cells in result["systems"].items():
        for name, cell in cells.items():
            values = [harness.fmt(v) for v in cell["mse"].values()]
            rows.append([system, name, *values, harness.fmt(cell["geometric_mean"]), cell["steps"]])
    conditions = next(iter(next(iter(result["systems"].values())).values()))["mse"]
    head = "system | variant | " + " | ".join(f"noise {c}" for c in conditions)
    intro = (
        f"Forecast MSE (raw units) on {result['n_score']} validation trajectories per noise "
        f"/ context, one model per row trained for the anchors' budget; {result['device']}, "
        f"{result['date']}.\n\n"
    )
    return intro + harness.table(head + " | geometric mean | steps", rows)


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("anchors_context", __doc__)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS)
    args = harness.parse(parser, argv)
    return harness.report(args, lambda: measure(args), markdown)


if __name__ == "__main__":
    main()
