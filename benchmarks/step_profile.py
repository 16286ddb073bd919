"""Time the training step of the cpu preset's WARP-Phys on MSD against its FLOP floor,
with 1 and with K steps fused in one jitted call (`train`'s `steps_per_call`).

The model and optimiser are the `cpu` preset's (`damped_oscillator` root 8x2, batch 32,
T = 256, Adam with clipping, teacher forcing 0.25). Each setting trains through
`warp_phys.train` (no validation; compiled by a first run), in rounds that alternate
the settings so that a change of the shared machine's load falls on all of them alike;
a run's wall and process CPU time per step count the loop's host work (minibatch
gathering, logging) too. The CPU time is the steadier measure on a shared machine (the
step runs single-threaded). The FLOP floor is the recurrence's dense matrix products,
2 N T D^2 forward and about 3x that with the backward pass, at the float32 GEMM rate
per CPU-second measured beside it. The free-running validation of 256 trajectories is
timed too, as it sets how often a run can afford to validate.

    python -m benchmarks.step_profile            # writes benchmarks/results/step_profile.json
    python -m benchmarks.step_profile --render   # the table, from the committed JSON
"""

import statistics
import time

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


def _run(config, model, data, per_call: int, steps: int, batch: int) -> tuple[float, float]:
    """Wall and process CPU seconds per step of a `train` run of `steps` steps."""
    options = dict(optimizer=config.optimizer_options, objective=config.objective_options)
    options.update(steps=steps, batch_size=batch, steps_per_call=per_call, progress=False)
    wall, cpu = time.perf_counter(), time.process_time()
    wp.train(model, data, key=jax.random.PRNGKey(1), **options)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def measure(fused: list[int], rounds: int, steps: int, smoke: bool) -> dict:
    config, model, data, val = _setup(smoke)
    batch = 4 if smoke else config.batch_size
    settings = [1, *fused]
    steps = (max(settings) * 2) if smoke else steps
    load_before = harness.load()
    for k in settings:  # compile every setting first (its calls of k steps, and the rest)
        _run(config, model, data, k, steps, batch)
    walls, cpus = {k: [] for k in settings}, {k: [] for k in settings}
    for _ in range(rounds):
        for k in settings:
            wall, cpu = _run(config, model, data, k, steps, batch)
            walls[k].append(wall)
            cpus[k].append(cpu)
    context = min(config.context, val.shape[1] // 4) if smoke else config.context
    validation = harness.timed(
        lambda: float(wp.forecast_mse(model, val, context)), reps=3, warmup_s=float("inf")
    )
    D, T = model.theta_size, data.shape[1]
    # the recurrence's products of a whole batch as one (cols = N T): the floor if nothing
    # but them ran, by process time like the step's CPU time on a loaded machine
    gflops = harness.gemm_gflops(D, batch * T, reps=20, cpu=True)
    floor_ms = 1e3 * 3 * 2 * batch * T * D * D / (gflops * 1e9)
    rows = {}
    for k in settings:
        wall, cpu = (1e3 * statistics.median(x[k]) for x in (walls, cpus))
        row = dict(steps_per_call=k, ms_per_step=wall, cpu_ms_per_step=cpu, runs=len(walls[k]))
        rows[str(k)] = dict(row, over_floor=cpu / floor_ms)
    for row in rows.values():
        row["speedup"] = rows["1"]["ms_per_step"] / row["ms_per_step"]
        row["cpu_speedup"] = rows["1"]["cpu_ms_per_step"] / row["cpu_ms_per_step"]
    out = dict(smoke=smoke, system="msd", model="warp_phys (cpu preset)", batch=batch, T=T)
    out.update(D_theta=D, gemm_gflops=gflops, floor_ms=floor_ms, rows=rows)
    out.update(validation_s=validation["median_s"], val_trajectories=len(val))
    out.update(rounds=rounds, steps_per_run=steps, load_average=[load_before, harness.load()])
    return dict(out, device=harness.device(), date=harness.stamp())


def markdown(r: dict) -> str:
    keys = (("ms_per_step", ".1f"), ("speedup", ".2f"), ("cpu_ms_per_step", ".1f"))
    keys += (("cpu_speedup", ".2f"), ("over_floor", ".1f"))
    rows = [
        (k["steps_per_call"], *(harness.fmt(k[key], spec) for key, spec in keys), k["runs"])
        for k in r["rows"].values()
    ]
    load = ", ".join(f"{x:.1f}" for x in r["load_average"])
    return (
        f"Training step of {r['model']} on {r['system']}: batch {r['batch']}, T {r['T']}, "
        f"D_theta {r['D_theta']}, on {r['device']}; FLOP floor {r['floor_ms']:.1f} ms/step "
        f"(3 x 2 N T D^2 at {r['gemm_gflops']:.0f} GFLOP per CPU-second); validation of "
        f"{r['val_trajectories']} trajectories {r['validation_s']:.2f} s; median of "
        f"{r['rounds']} runs of {r['steps_per_run']} steps per setting (compiled before, "
        f"settings alternated); CPU: process time, the less load-dependent; load average "
        f"{load} (before, after)\n\n"
        + harness.table(
            "steps per call | wall ms / step | speed-up | CPU ms / step | CPU speed-up | "
            "CPU x floor | runs",
            rows,
        )
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark (or `--render`s), prints the table, writes the JSON; returns it."""
    parser = harness.parser("step_profile", __doc__)
    what = "steps per call to compare with 1"
    parser.add_argument("--fused", type=int, nargs="+", default=[5, 10, 25], help=what)
    parser.add_argument("--rounds", type=int, default=3, help="runs per setting, alternated")
    parser.add_argument("--steps", type=int, default=150, help="steps per run")
    args = harness.parse(parser, argv)
    measured = lambda: measure(args.fused, args.rounds, args.steps, args.smoke)
    return harness.report(args, measured, markdown)


if __name__ == "__main__":
    main()
