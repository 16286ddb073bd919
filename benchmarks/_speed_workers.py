"""The speed benchmark's measurements, each run in its own process by
`harness.run_worker` (`python -m benchmarks.speed --worker KIND SPEC`), and its plan:
the configurations, and the size, FLOP and memory models behind them. `paper_step`
times the paper's MSD configuration (`python -m benchmarks.speed --paper`)."""

import math
import os
import resource
from pathlib import Path

from benchmarks import _harness as harness

MODES = ("parallel", "sequential")
DATA_SIZE = 2
# every transition kind of the package, in its order (a test holds this to the package's)
KINDS = ("dense", "diagonal", "lowrank", "block", "continuous")


def rss_gb() -> float:
    """This process's peak resident memory so far, GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def warp(width: int, depth: int, T: int, hyper_width: int, kind: str = "dense", rank=None):
    """The benchmark's WARP: root MLP [tau, x_prev] -> `depth` x `width` -> 2."""
    import jax

    import warp_phys as wp

    sizes = dict(root_width=width, root_depth=depth, hyper_width=hyper_width, hyper_depth=1)
    key = jax.random.PRNGKey(0)
    return wp.WARP(DATA_SIZE, **sizes, seq_len=T, transition=kind, transition_rank=rank, key=key)


def model_sizes(width: int, depth: int, kind: str = "dense", rank: int = 8) -> dict:
    """`D_theta` and `A_entries` (block: also `blocks` and `largest_block`) of `warp` with
    the root (`width`, `depth`) and an A of `kind`, from the model built abstractly."""
    import equinox as eqx
    import jax

    rank = rank if kind == "lowrank" else None
    model = eqx.filter_eval_shape(warp, width, depth, 8, 4, kind, rank)
    A, array = model.transition, lambda x: isinstance(x, jax.ShapeDtypeStruct)
    out = dict(D_theta=model.theta_size)
    out["A_entries"] = sum(x.size for x in jax.tree.leaves(A) if array(x))
    return out | (dict(blocks=len(A.sizes), largest_block=max(A.sizes)) if kind == "block" else {})


def warp_step(spec: dict) -> dict:
    """One WARP training step (teacher-forced MSE, Adam) compiled and timed; `spec`: width,
    depth, T, batch, mode, hyper_width, reps, budget_s, optionally `transition`, `rank`,
    `warmup_s` and `gemm=False` (no D x D GEMM rate beside it, not at large D)."""
    import jax
    import jax.numpy as jnp
    import optax

    T, batch, mode, kind = spec["T"], spec["batch"], spec["mode"], spec.get("transition")
    root = [spec["width"], spec["depth"]]
    model = warp(*root, T, spec["hyper_width"], kind or "dense", spec.get("rank"))
    A, D = model.transition, model.theta_size
    gemm = [harness.gemm_gflops(D)] if spec.get("gemm", True) else []
    out = dict(D_theta=D, T=T, batch=batch, mode=mode, root=root)
    out.update(step_cost=int(A.step_cost), preferred_mode=A.preferred_mode(T, DATA_SIZE))

    def loss(model, data, key):
        pred = jax.vmap(lambda xs: model(xs, mode))(data)
        return jnp.mean((pred - data[:, 1:]) ** 2)

    data = harness.oscillations(jax.random.PRNGKey(1), batch, T)
    policy = dict(reps=spec["reps"], budget_s=spec["budget_s"], warmup_s=spec.get("warmup_s", 15))
    out.update(harness.time_training_step(model, loss, optax.adam(1e-4), data, **policy))
    gemm += [harness.gemm_gflops(D)] if gemm else []
    return dict(out, gemm_gflops=gemm, peak_rss_gb=rss_gb())


def paper_step(spec: dict) -> dict:
    """The paper-MSD training step (root 1-48-48-48-2 without x_prev, D_theta 4898,
    hypernetwork 128x2, T 256; smoke: tiny) by the `algorithm` "scan" or "kernel":
    autoregressive, teacher forcing 0.25, clipped AdaBelief, A's step lr / D_theta."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    import warp_phys as wp

    T, (width, depth, hyper) = (16, (8, 1, 8)) if spec["smoke"] else (256, (48, 3, 128))
    sizes = dict(root_width=width, root_depth=depth, hyper_width=hyper, hyper_depth=2, seq_len=T)
    options = {"input_prev": False, "final_activation": 38.0}
    model = wp.WARP(2, decoder_options=options, **sizes, key=jax.random.PRNGKey(0))
    rollout = wp.kernel_rollout if spec["algorithm"] == "kernel" else wp.rollout

    def loss(model, xs, key):
        def one(xs, key):
            pred = rollout(model, xs, wp.teacher_forcing_mask(key, T, 0.25))
            return 0.5 * jnp.mean((pred - xs[1:]) ** 2)

        return jnp.mean(jax.vmap(one)(xs, jax.random.split(key, xs.shape[0])))

    labels = lambda p: eqx.tree_at(lambda m: m.A, jax.tree.map(lambda _: "other", p), "A")
    groups = {"other": optax.adabelief(1e-4), "A": optax.adabelief(1e-4 / model.theta_size)}
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.multi_transform(groups, labels))
    data = harness.oscillations(jax.random.PRNGKey(1), spec["batch"], T)
    rate = lambda: harness.gemm_gflops(model.theta_size, cols=1024, reps=3)
    gemm, policy = [rate()], dict(reps=spec["reps"], warmup_s=math.inf if spec["warmup"] else 0)
    timing = harness.time_training_step(model, loss, optimizer, data, **policy)
    out = dict(batch=spec["batch"], algorithm=spec["algorithm"], step_s=timing["median_s"])
    out |= {k: timing[k] for k in ("steps_s", "cpu_s", "compile_s", "final_loss")}
    out.update(warmup_steps=timing["warmup"], gemm_gflops=[*gemm, rate()], peak_rss_gb=rss_gb())
    return dict(out, theta_size=model.theta_size, seq_len=T)


def gemm(spec: dict) -> dict:
    return {"D": spec["D"], "cols": 64, "gflops": harness.gemm_gflops(spec["D"], reps=9)}


WORKERS = dict(warp_step=warp_step, paper_step=paper_step, gemm=gemm)


# -------------------------------------------------------------------- the plan
FULL = {
    "sizes": {"1k": (28, 2), "5k": (67, 2)},  # root (width, depth): D = w^2 + 7 w + 2
    "lengths": (64, 256, 1024, 4096), "batch": 64, "hyper_width": 32,
    "structured": {
        "T": 16, "batch": 8, "rank": 8,
        "roots": ((67, 2), (138, 2), (313, 2)),  # D 4960, 20012, 100162
        "block_roots": ((32, 6), (32, 20), (32, 96)),  # D = 194 + 1056 (depth - 1)
        "speed": {"T": 256, "batch": 64, "root": (67, 2), "block_root": (16, 19)},
    },
}  # fmt: skip
SMOKE = {
    "sizes": {"tiny": (4, 1)}, "lengths": (8,), "batch": 4, "hyper_width": 4,
    # the same sizes as "speed": its sequential entries are the memory rows' runs
    "structured": {"T": 8, "batch": 4, "rank": 2, "roots": ((4, 1),), "block_roots": ((3, 2),),
                   "speed": {"T": 8, "batch": 4, "root": (4, 1), "block_root": (3, 2)}},
}  # fmt: skip


def structured_plan(cfg: dict) -> list[dict]:
    """The memory rows per transition kind of `cfg["structured"]`: kind, root, sizes and
    A's training state (16 bytes an entry); block on `block_roots` (many small tensors),
    the other kinds on `roots`."""
    sc, plan = cfg["structured"], []
    for kind in KINDS:
        rank = {"rank": sc["rank"]} if kind == "lowrank" else {}
        for root in sc["block_roots"] if kind == "block" else sc["roots"]:
            entry = dict(kind=kind, root=list(root), **model_sizes(*root, kind, sc["rank"]))
            entry.update(T=sc["T"], batch=sc["batch"], mode="sequential", **rank)
            plan.append(dict(entry, A_state_gb=16 * entry["A_entries"] / 2**30))
    return plan


def flop_model(T: int, D: int, N: int, r: int, d: int = DATA_SIZE) -> dict:
    """FLOPs of one training step's recurrence (forward + backward ~ 3x forward)."""
    gemm = T * d <= 2048  # the causal convolution: Toeplitz GEMM, else FFT (~5 n log2 n / 2)
    fft = 2.5 * d * D * 2 * T * max(1, (2 * T).bit_length() - 1)
    convolution = 2.0 * T * T * d * D if gemm else fft
    precompute = 3 * 2.0 * T * D * D * (r + 1 + d)
    per_sample = 3 * (2.0 * T * D * (r + 1) + convolution)
    out = dict(sequential=6.0 * N * (T - 1) * D * D, parallel_precompute=precompute)
    out.update(parallel_per_sample=per_sample, parallel=precompute + N * per_sample)
    return dict(out, convolution="gemm" if gemm else "fft")


def memory_estimate_gb(T: int, D: int, N: int, r: int, mode: str, A_entries: int) -> float:
    """A rough upper estimate of a training step's memory, GB: about 4 (N, T, D) arrays
    (states, cotangents, the decoder's copies), the parallel powers (T, D, r + 1 + d) and
    FFT buffers, A's training state (A, gradient, two Adam moments: 16 bytes an entry)."""
    states = 4 * N * T * D * 4
    if mode == "parallel":
        states += 3 * T * D * (r + 1 + DATA_SIZE) * 4
        states += 2 * N * (2 * T) * D * 8 if T * DATA_SIZE > 2048 else 0
    return (states + 16 * A_entries + 0.5 * 2**30) / 2**30


def available_gb() -> float:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        return next(int(x.split()[1]) for x in lines if x.startswith("MemAvailable:")) / 2**20
    except (OSError, StopIteration):
        return float("inf")


def total_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
