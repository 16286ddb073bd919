"""Time the training step of the cpu preset's WARP-Phys on MSD against its FLOP floor,
with 1 and with K steps fused in one jitted call (`train`'s `steps_per_call`).

The model and optimiser are the `cpu` preset's (`damped_oscillator` root 8x2, batch 32,
T = 256, Adam with clipping, teacher forcing 0.25). Each setting trains through
`warp_phys.train` (no validation), in rounds that alternate the settings so that a
change of the shared machine's load falls on all of them alike; a call's time is the
clock between two calls of the loop (its first call, which compiles, is left out), so
the host work of the loop (minibatch gathering, logging) is counted. The FLOP floor is
the recurrence's dense matrix products, 2 N T D^2 forward and about 3x that with the
backward pass, at the float32 GEMM rate measured beside it. The free-running validation
of the preset's 256 trajectories is timed too, as it sets how often a run can afford
to validate.

    python -m benchmarks.step_profile            # writes benchmarks/results/step_profile.json
    python -m benchmarks.step_profile --render   # the table, from the committed JSON
"""

import statistics

import jax
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _harness as harness
from benchmarks._presets import run_config


def _setup(smoke: bool):
    """The preset's model, its normalised training arrays and a validation set."""
    config = run_config("cpu", "msd", "warp_phys", 0)
    short = dict(n_steps=32, progress=False) if smoke else dict(progress=False)
    train = systems.generate("msd", 64 if smoke else 640, split="train", seed=0, **short)
    val = systems.generate("msd", 8 if smoke else 256, split="val", seed=0, **short)
    norm = wp.Normalizer.fit(train.y)
    model = wp.build_model(config, 2, train.y.shape[1], key=jax.random.PRNGKey(0), normalizer=norm)
    return config, model, np.asarray(norm.apply(train.y)), np.asarray(norm.apply(val.y))


def _call_seconds(config, model, data, per_call: int, steps: int, batch: int) -> list[float]:
    """Seconds per step of each call of a `train` run but its first (the compiling one)."""
    _, history = wp.train(
        model,
        data,
        steps=steps,
        batch_size=batch,
        optimizer=config.optimizer_options,
        objective=config.objective_options,
        steps_per_call=per_call,
        key=jax.random.PRNGKey(1),
        progress=False,
    )
    ends = np.asarray(history["seconds"])[per_call - 1 :: per_call]
    return list(np.diff(ends) / per_call)


def measure(fused: list[int], rounds: int, steps: int, smoke: bool) -> dict:
    config, model, data, val = _setup(smoke)
    batch = 4 if smoke else config.batch_size
    settings = [1, *fused]
    steps = (max(settings) * 3) if smoke else steps
    per_step = {k: [] for k in settings}
    load_before = harness.load()
    for _ in range(rounds):
        for k in settings:
            per_step[k] += _call_seconds(config, model, data, k, steps, batch)
    context = min(config.context, val.shape[1] // 4) if smoke else config.context
    validation = harness.timed(
        lambda: float(wp.forecast_mse(model, val, context)), reps=3, warmup_s=float("inf")
    )
    D, T = model.theta_size, data.shape[1]
    gflops = harness.gemm_gflops(D, cols=batch)
    floor_s = 3 * 2 * batch * T * D * D / (gflops * 1e9)
    rows = {}
    for k, times in per_step.items():
        ms = 1e3 * statistics.median(times)
        rows[str(k)] = dict(steps_per_call=k, ms_per_step=ms, calls=len(times),
                            over_floor=ms / (1e3 * floor_s))  # fmt: skip
    base = rows["1"]["ms_per_step"]
    for row in rows.values():
        row["speedup"] = base / row["ms_per_step"]
    out = dict(smoke=smoke, system="msd", model="warp_phys (cpu preset)", batch=batch, T=T)
    out.update(D_theta=D, gemm_gflops=gflops, floor_ms=1e3 * floor_s, rows=rows)
    out.update(validation_s=validation["median_s"], val_trajectories=len(val))
    out.update(rounds=rounds, steps_per_run=steps, load_average=[load_before, harness.load()])
    return dict(out, device=harness.device(), date=harness.stamp())


def markdown(r: dict) -> str:
    fmt = harness.fmt
    rows = [
        (k["steps_per_call"], fmt(k["ms_per_step"], ".1f"), fmt(k["speedup"], ".2f"),
         fmt(k["over_floor"], ".1f"), k["calls"])
        for k in r["rows"].values()
    ]  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in r["load_average"])
    return (
        f"Training step of {r['model']} on {r['system']}: batch {r['batch']}, T {r['T']}, "
        f"D_theta {r['D_theta']}, on {r['device']}; FLOP floor {r['floor_ms']:.1f} ms/step "
        f"(3 x 2 N T D^2 at {r['gemm_gflops']:.0f} GFLOP/s); validation of "
        f"{r['val_trajectories']} trajectories {r['validation_s']:.2f} s; load average "
        f"{load} (before, after)\n\n"
        + harness.table("steps per call | ms / step | speed-up | x floor | calls timed", rows)
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark (or `--render`s), prints the table, writes the JSON; returns it."""
    parser = harness.parser("step_profile", __doc__)
    parser.add_argument("--fused", type=int, nargs="+", default=[5, 10, 25],
                        help="steps per call to compare with 1")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="runs per setting, alternated")
    parser.add_argument("--steps", type=int, default=200, help="steps per run")
    args = harness.parse(parser, argv)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown)
    return harness.finish(args, measure(args.fused, args.rounds, args.steps, args.smoke), markdown)


if __name__ == "__main__":
    main()
