"""Seconds per training step on the paper's MSD configuration: scan vs kernel AR rollout.

Root MLP 1-48-48-48-2 without the previous-observation input (D_theta = 4898),
hypernetwork of two hidden layers of width 128, T = 256, autoregressive training with
teacher forcing 0.25, MSE loss, AdaBelief with global-norm clipping; forward + backward +
update compiled ahead of time. Each (batch, algorithm) runs in its own worker process,
which reports the median of `--reps` steps after an untimed one (from batch 512 on: one
timed step, no warm-up), the CPU time per step, its peak RSS and the GEMM rate beside it.

    python -m benchmarks.paper_speed           # batch 64 and 1024, results/paper_speed.json
    python -m benchmarks.paper_speed --render  # the table, from the committed JSON
"""

import math
import resource

from benchmarks import _harness as harness

ALGORITHMS = ("scan", "kernel")
LARGE = 512  # from this batch on: one timed step, no warm-up (a step takes minutes)


def step_timing(spec: dict) -> dict:
    """Time the training step of one (batch, algorithm) configuration in this process."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    import warp_phys as wp

    smoke, batch, algorithm = spec["smoke"], spec["batch"], spec["algorithm"]
    T = 16 if smoke else 256
    width, depth, hyper = (8, 1, 8) if smoke else (48, 3, 128)
    sizes = dict(root_width=width, root_depth=depth, hyper_width=hyper, hyper_depth=2, seq_len=T)
    options = {"input_prev": False, "final_activation": 38.0}
    model = wp.WARP(2, decoder="mlp", decoder_options=options, **sizes, key=jax.random.PRNGKey(0))
    rollout = wp.kernel_rollout if algorithm == "kernel" else wp.rollout

    def loss(model, xs, key):
        def one(xs, key):
            pred = rollout(model, xs, wp.teacher_forcing_mask(key, T, 0.25))
            return 0.5 * jnp.mean((pred - xs[1:]) ** 2)

        return jnp.mean(jax.vmap(one)(xs, jax.random.split(key, xs.shape[0])))

    # AdaBelief, global-norm clipping; A's step is lr / D_theta (warp_phys's default: a
    # larger one makes A^255 explode within a few steps)
    def labels(params):
        return eqx.tree_at(lambda m: m.A, jax.tree.map(lambda _: "other", params), "A")

    per_group = {"other": optax.adabelief(1e-4), "A": optax.adabelief(1e-4 / model.theta_size)}
    clip = optax.clip_by_global_norm(1.0)
    optimizer = optax.chain(clip, optax.multi_transform(per_group, labels))
    data = harness.oscillations(jax.random.PRNGKey(1), batch, T)
    gemm = [harness.gemm_gflops(model.theta_size, cols=1024, reps=3)]
    # warmup_s inf: the first step is always untimed; 0: never
    policy = dict(reps=spec["reps"], warmup_s=math.inf if spec["warmup"] else 0.0)
    timing = harness.time_training_step(model, loss, optimizer, data, **policy)
    gemm.append(harness.gemm_gflops(model.theta_size, cols=1024, reps=3))
    out = dict(batch=batch, algorithm=algorithm, step_s=timing["median_s"])
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out |= {k: timing[k] for k in ("steps_s", "cpu_s", "compile_s")}
    out.update(warmup_steps=timing["warmup"], gemm_gflops=gemm, theta_size=model.theta_size)
    out.update(feature_size=model.hypernetwork.feature_size, seq_len=T)
    return dict(out, final_loss=timing["final_loss"])


WORKERS = {"step": step_timing}


def markdown(result: dict) -> str:
    """The table of the rows (s per step, peak RSS, GEMM rate and load beside them)."""
    rows = [
        f"{r['batch']} | {r['algorithm']} | {r['step_s']:.3g} | {r['cpu_s']:.3g} | "
        f"{r['peak_rss_gb']:.2f} | {sum(r['gemm_gflops']) / 2:.1f} | {max(r['load_average']):.1f}"
        for r in result["paper_msd"]
    ]
    head = "batch | algorithm | s per step | CPU s per step | peak RSS GB | GEMM GFLOP/s | load"
    return f"Paper MSD configuration on {result['device']}:\n\n" + harness.table(head, rows)


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, prints a table and writes the JSON result; returns it."""
    parser = harness.parser("paper_speed", __doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=None)
    parser.add_argument("--algorithms", nargs="+", default=ALGORITHMS, choices=ALGORITHMS)
    parser.add_argument("--reps", type=int, default=3, help="timed steps")
    args = harness.parse(parser, argv)
    if args.worker:
        return harness.serve(WORKERS, args.worker)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown)
    rows = []
    for batch in args.batches or ([3] if args.smoke else [64, 1024]):
        for algorithm in args.algorithms:
            policy = dict(reps=1, warmup=0) if batch >= LARGE else dict(reps=args.reps, warmup=1)
            spec = dict(batch=batch, algorithm=algorithm, smoke=args.smoke, **policy)
            row = harness.run_worker("paper_speed", "step", spec)
            rows.append(harness.checked(row, f"paper_speed worker ({batch}, {algorithm})"))
            print(f"batch {batch}, {algorithm}: {rows[-1]['step_s']:.3g} s per step", flush=True)
    result = dict(device=harness.device(), date=harness.stamp(), smoke=args.smoke, paper_msd=rows)
    return harness.finish(args, result, markdown)


if __name__ == "__main__":
    main()
