"""Seconds per training step on the paper's MSD configuration: scan vs kernel AR rollout.

Paper MSD configuration: root MLP 1-48-48-48-2 without the previous-observation input
(D_theta = 4898, a dense A of 24M entries), hypernetwork with two hidden layers of
width 128 (feature size r = 128), T = 256, autoregressive training with teacher forcing
0.25 (clean convention), MSE loss, AdaBelief with global-norm clipping. A training step
is forward + backward + optimiser update, jitted as one function. Each (batch,
algorithm) configuration runs in its own subprocess, which reports the median wall time
of `--reps` steps after a compiling warm-up, the CPU time per step, and its peak RSS
(`getrusage(RUSAGE_SELF).ru_maxrss`, so one configuration's memory never hides
another's).

    python benchmarks/paper_speed.py           # batch 64 and 1024, writes results/paper_speed.json
    python benchmarks/paper_speed.py --smoke   # tiny sizes, seconds, for the test suite
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "paper_speed.json"
ALGORITHMS = ("scan", "kernel")


def _trajectories(key, batch: int, T: int):
    """Damped oscillations (position, velocity) with random frequency, damping, phase."""
    import jax
    import jax.numpy as jnp

    kw, kz, kp = jax.random.split(key, 3)
    omega = jax.random.uniform(kw, (batch, 1), minval=4.0, maxval=12.0)
    zeta = jax.random.uniform(kz, (batch, 1), minval=0.0, maxval=2.0)
    phase = jax.random.uniform(kp, (batch, 1), maxval=6.28)
    t = jnp.linspace(0.0, 1.0, T)[None]
    x = jnp.exp(-zeta * t) * jnp.cos(omega * t + phase)
    v = -zeta * x - omega * jnp.exp(-zeta * t) * jnp.sin(omega * t + phase)
    return jnp.stack([x, v / omega], axis=-1)


def gemm_gflops(D: int, rows: int = 1024, reps: int = 3) -> float:
    """The machine's current float32 GEMM rate, (rows, D) x (D, D), in GFLOP/s (best of
    `reps`): a shared machine's load changes it, so it is measured next to each row."""
    import jax
    import jax.numpy as jnp

    x, a = jnp.ones((rows, D)), jnp.eye(D)
    product = jax.jit(lambda x, a: x @ a)
    return 2.0 * rows * D * D / best_seconds(product, x, a, reps=reps) / 1e9


def best_seconds(call, *args, reps: int) -> float:
    """The shortest wall time of `reps` blocking calls `call(*args)`, after one untimed
    call (the compilation of a jitted `call`)."""
    import jax

    jax.block_until_ready(call(*args))
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(call(*args))
        best = min(best, time.perf_counter() - start)
    return best


def run_one(
    batch: int, algorithm: str, reps: int, smoke: bool, checkpoint: bool, warmup: int = 1
) -> dict:
    """Time `reps` training steps of one configuration in this process, after compiling
    ahead of time and `warmup` untimed steps."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    import warp_phys as wp
    from warp_phys._kernel_rollout import kernel_rollout

    T = 16 if smoke else 256
    width, depth, hyper = (8, 1, 8) if smoke else (48, 3, 128)
    model = wp.WARP(
        2,
        decoder="mlp",
        root_width=width,
        root_depth=depth,
        decoder_options={"input_prev": False, "final_activation": 38.0},
        hyper_width=hyper,
        hyper_depth=2,
        seq_len=T,
        key=jax.random.PRNGKey(0),
    )
    data = _trajectories(jax.random.PRNGKey(1), batch, T)
    # AdaBelief, global-norm clipping; A's step is lr / D_theta (warp_phys.training's
    # default; a larger one makes A^255 explode within a few steps)
    def labels(params):
        return eqx.tree_at(lambda m: m.A, jax.tree.map(lambda _: "other", params), "A")

    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.multi_transform(
            {"other": optax.adabelief(1e-4), "A": optax.adabelief(1e-4 / model.theta_size)},
            labels,
        ),
    )
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    def loss_fn(model, xs, key):
        observed = wp.teacher_forcing_mask(key, T, 0.25)
        if algorithm == "kernel":
            pred = kernel_rollout(model, xs, observed, checkpoint=checkpoint)
        else:
            pred = wp.rollout(model, xs, observed)
        return 0.5 * jnp.mean((pred - xs[1:]) ** 2)

    @eqx.filter_jit
    def train_step(model, opt_state, data, key):
        keys = jax.random.split(key, data.shape[0])

        def batch_loss(model):
            return jnp.mean(jax.vmap(loss_fn, in_axes=(None, 0, 0))(model, data, keys))

        loss, grads = eqx.filter_value_and_grad(batch_loss)(model)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return eqx.apply_updates(model, updates), opt_state, loss

    gemm_before = gemm_gflops(model.theta_size)
    start = time.perf_counter()
    compiled = train_step.lower(model, opt_state, data, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - start
    walls, cpus = [], []
    for step in range(reps + warmup):
        wall, cpu = time.perf_counter(), time.process_time()
        model, opt_state, loss = compiled(model, opt_state, data, jax.random.PRNGKey(step))
        jax.block_until_ready((model, opt_state, loss))
        if step >= warmup:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {
        "batch": batch,
        "algorithm": algorithm,
        "step_s": statistics.median(walls),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "steps_s": walls,
        "cpu_s": statistics.median(cpus),
        "compile_s": compile_s,
        "warmup_steps": warmup,
        "gemm_gflops": [gemm_before, gemm_gflops(model.theta_size)],
        "theta_size": model.theta_size,
        "feature_size": model.hypernetwork.feature_size,
        "seq_len": T,
        "checkpoint": checkpoint,
        "final_loss": float(loss),
    }


def _in_subprocess(batch, algorithm, reps, warmup, smoke, checkpoint) -> dict:
    command = [sys.executable, __file__, "--worker", "--batches", str(batch),
               "--algorithms", algorithm, "--reps", str(reps), "--warmup", str(warmup)]  # fmt: skip
    command += ["--smoke"] * smoke + ["--checkpoint"] * checkpoint
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({batch}, {algorithm}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _device() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{jax.devices()[0].platform}: {cpu}, {os.cpu_count()} cores, jax {jax.__version__}"


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, prints a table and writes the JSON result; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=None)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--reps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after compiling")
    parser.add_argument(
        "--large", type=int, default=512, help="from this batch on: 1 timed step, no warm-up"
    )
    parser.add_argument("--checkpoint", action="store_true", help="kernel: rematerialise theta")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, runs in seconds")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batches = args.batches or ([3] if args.smoke else [64, 1024])
    if args.worker:
        load = os.getloadavg()[0]
        row = run_one(
            batches[0], args.algorithms[0], args.reps, args.smoke, args.checkpoint, args.warmup
        )
        row["load_average"] = [load, os.getloadavg()[0]]
        print(json.dumps(row))
        return row
    rows = []
    print(f"{'batch':>6} {'algorithm':>9} {'step_s':>9} {'cpu_s':>9} {'peak_rss_gb':>11} "
          f"{'gemm_GF/s':>9} {'load':>5}")  # fmt: skip
    for batch in batches:
        large = batch >= args.large
        reps, warmup = (1, 0) if large else (args.reps, args.warmup)
        for algorithm in args.algorithms:
            row = _in_subprocess(batch, algorithm, reps, warmup, args.smoke, args.checkpoint)
            rows.append(row)
            print(f"{batch:>6} {algorithm:>9} {row['step_s']:>9.3f} {row['cpu_s']:>9.3f} "
                  f"{row['peak_rss_gb']:>11.2f} {statistics.mean(row['gemm_gflops']):>9.1f} "
                  f"{max(row['load_average']):>5.1f}", flush=True)  # fmt: skip
    result = {"device": _device(), "smoke": args.smoke, "paper_msd": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
