"""The speed benchmark's measurements: the per-configuration workers (each run in its own
subprocess by `_run_worker`, as `python -m benchmarks.speed --worker KIND JSON`), the
timing helpers, the GEMM rate, and the FLOP and memory models used to plan the rows."""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("parallel", "sequential")
DATA_SIZE = 2


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def gemm_gflops(D: int, cols: int = 64, reps: int = 5) -> float:
    """Best-of-`reps` rate of a float32 (D x D) @ (D x cols) product, in GFLOP/s."""
    from benchmarks._harness import gemm_gflops as rate

    return rate(D, cols, reps)


def _timed(call, reps: int, budget_s: float, warmup_s: float = 15.0) -> dict:
    """Median wall time of `call()` (which blocks until done). The first call is a
    warm-up if it takes under `warmup_s` seconds, else it counts as a timed step; timed
    steps stop after `reps` or when `budget_s` seconds have been spent (at least one runs)."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    walls = [] if first < warmup_s else [first]
    while len(walls) < reps and (not walls or sum(walls) < budget_s):
        start = time.perf_counter()
        call()
        walls.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(walls),
        "steps_s": walls,
        "reps": len(walls),
        "warmup": int(first < warmup_s),
        "first_call_s": first,
    }


def _warp(width: int, depth: int, T: int, hyper_width: int, transition: str = "dense", rank=None):
    import jax

    import warp_phys as wp

    extra = {} if transition == "dense" else {"transition": transition}
    if rank is not None:
        extra["transition_rank"] = rank
    return wp.WARP(
        DATA_SIZE,
        root_width=width,
        root_depth=depth,
        hyper_width=hyper_width,
        hyper_depth=1,
        seq_len=T,
        key=jax.random.PRNGKey(0),
        **extra,
    )


def _train_step_timing(
    model, mode: str, batch: int, T: int, reps: int, budget_s: float, warmup_s: float = 15.0
):
    """Compile one Adam training step (teacher-forced MSE over a batch) and time it."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks._harness import oscillations as _trajectories

    data = _trajectories(jax.random.PRNGKey(1), batch, T)
    optimizer = optax.adam(1e-4)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def train_step(model, opt_state, data):
        def loss(model):
            pred = jax.vmap(lambda xs: model(xs, mode))(data) if mode else jax.vmap(model)(data)
            return jnp.mean((pred - data[:, 1:]) ** 2)

        value, grads = eqx.filter_value_and_grad(loss)(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, value

    start = time.perf_counter()
    compiled = train_step.lower(model, opt_state, data).compile()
    compile_s = time.perf_counter() - start
    state = [model, opt_state]

    def call():
        new_model, new_state, value = compiled(state[0], state[1], data)
        jax.block_until_ready((new_model, new_state, value))
        state[:] = [new_model, new_state]

    timing = _timed(call, reps, budget_s, warmup_s)
    timing["compile_s"] = compile_s
    return timing


def worker_warp_step(spec: dict) -> dict:
    """One WARP training-step configuration: `spec` has width, depth, T, batch, mode,
    hyper_width, reps, budget_s, and optionally forward=True to also time the vmapped
    recurrence alone (forward only), transition (kind, default dense) and rank (lowrank),
    gemm=False to skip the GEMM rate beside it (a D x D GEMM: not at large D) and
    warmup_s (default 15: a first step under it is a warm-up, not timed)."""
    import equinox as eqx
    import jax

    width, depth, T, batch, mode = (spec[k] for k in ("width", "depth", "T", "batch", "mode"))
    rss_start = _rss_gb()
    kind = spec.get("transition", "dense")
    model = _warp(width, depth, T, spec["hyper_width"], kind, spec.get("rank"))
    D = model.theta_size
    gemm = [gemm_gflops(D)] if spec.get("gemm", True) else []
    out = {"D_theta": D, "T": T, "batch": batch, "mode": mode, "root": [width, depth]}
    if kind != "dense":
        out["transition"] = kind
    out.update(
        A_entries=sum(x.size for x in jax.tree.leaves(eqx.filter(model.transition, eqx.is_array))),
        step_cost=int(model.transition.step_cost),
        preferred_mode=model.transition.preferred_mode(T, DATA_SIZE),
        rss_model_gb=_rss_gb(),
    )
    warmup_s = spec.get("warmup_s", 15.0)
    out.update(_train_step_timing(model, mode, batch, T, spec["reps"], spec["budget_s"], warmup_s))
    if spec.get("forward"):
        from benchmarks._harness import oscillations as _trajectories

        data = _trajectories(jax.random.PRNGKey(1), batch, T)
        forward = eqx.filter_jit(lambda m, d: jax.vmap(lambda xs: m.weight_trajectory(xs, mode))(d))
        compiled = forward.lower(model, data).compile()
        timing = _timed(lambda: jax.block_until_ready(compiled(model, data)), spec["reps"], 60.0)
        out["forward_s"] = timing["median_s"]
        out["forward_reps"] = timing["reps"]
    if gemm:
        gemm.append(gemm_gflops(D))
    out.update(
        gemm_gflops=gemm,
        feature_size=model.hypernetwork.feature_size,
        params=_count(model),
        rss_start_gb=rss_start,
        peak_rss_gb=_rss_gb(),
    )
    return out


def _count(model) -> int:
    import warp_phys as wp

    return int(wp.count_parameters(model))


def worker_gru_step(spec: dict) -> dict:
    """A GRU with the parameter count `spec["params"]`, one training step timed."""
    import jax

    import warp_phys as wp

    hidden = wp.hidden_size_for("gru", params=spec["params"], data_size=DATA_SIZE)
    model = wp.GRU(DATA_SIZE, hidden_size=hidden, key=jax.random.PRNGKey(0))
    out = {"hidden_size": hidden, "params": _count(model), "T": spec["T"], "batch": spec["batch"]}
    out.update(
        _train_step_timing(model, None, spec["batch"], spec["T"], spec["reps"], spec["budget_s"])
    )
    out["peak_rss_gb"] = _rss_gb()
    return out


def worker_inference(spec: dict) -> dict:
    """Trajectories per second of jitted `reconstruct` on MSD test trajectories."""
    import jax
    import jax.numpy as jnp

    import systems
    import warp_phys as wp

    path = Path(spec["model_path"]) if spec.get("model_path") else None
    if path is not None and path.exists():
        model, source = wp.load_model(path), f"trained ({path.relative_to(ROOT)})"
    else:
        model = wp.WARP(
            DATA_SIZE,
            root_width=16,
            root_depth=2,
            hyper_width=16,
            decoder_options={"final_activation": 5.0},
            key=jax.random.PRNGKey(0),
        )
        source = "untrained, the demo's architecture (run `make demo` for the trained one)"
    batch, context, horizon = spec["batch"], spec["context"], spec["horizon"]
    data = systems.generate("msd", batch, split="test").y[:, : context + horizon]
    data = jnp.asarray(wp.Normalizer.fit(data).apply(data))[:, :context]
    run = jax.jit(lambda c: wp.reconstruct(model, c, horizon))
    compiled = run.lower(data).compile()
    timing = _timed(lambda: jax.block_until_ready(compiled(data)), spec["reps"], 60.0)
    return {
        "model": source,
        "D_theta": model.theta_size,
        "batch": batch,
        "context": context,
        "horizon": horizon,
        "seconds": timing["median_s"],
        "reps": timing["reps"],
        "trajectories_per_s": batch / timing["median_s"],
        "peak_rss_gb": _rss_gb(),
    }


def worker_gemm(spec: dict) -> dict:
    return {"D": spec["D"], "cols": 64, "gflops": gemm_gflops(spec["D"], reps=spec.get("reps", 9))}


WORKERS = {
    "warp_step": worker_warp_step,
    "gru_step": worker_gru_step,
    "inference": worker_inference,
    "gemm": worker_gemm,
}


def _run_worker(kind: str, spec: dict, isolate: bool = True) -> dict:
    """Run a worker in a fresh Python process (or in this one when not `isolate`, as the
    smoke run does; peak RSS is then the whole process's); a crash (e.g. killed for
    memory) comes back as `{"error": ...}` instead of stopping the benchmark."""
    load = os.getloadavg()[0]
    if not isolate:
        result = WORKERS[kind](spec)
        result["load_average"] = [load, os.getloadavg()[0]]
        return result
    command = [sys.executable, "-m", "benchmarks.speed", "--worker", kind, json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"worker exited with {done.returncode}: {' | '.join(tail)}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average"] = [load, os.getloadavg()[0]]
    return result


def theta_size(width: int, depth: int) -> int:
    return sum(root_tensor_sizes(width, depth))


def root_tensor_sizes(width: int, depth: int) -> list[int]:
    """Sizes of the root MLP's parameter tensors ([tau, x_prev] -> `depth` hidden layers
    of `width` -> DATA_SIZE): a weight and a bias per layer, the block sizes D_b of a
    `block` transition."""
    sizes = [1 + DATA_SIZE] + [width] * depth + [DATA_SIZE]
    return [n for i, o in zip(sizes[:-1], sizes[1:], strict=True) for n in (i * o, o)]


def transition_entries(kind: str, width: int, depth: int, rank: int = 8) -> int:
    """Parameters of the transition A of `kind` for the root (`width`, `depth`): D^2
    (dense), D (diagonal, continuous), 2 D r (lowrank), sum_b D_b^2 (block)."""
    D = theta_size(width, depth)
    if kind == "dense":
        return D * D
    if kind == "lowrank":
        return 2 * D * rank
    if kind == "block":
        return sum(n * n for n in root_tensor_sizes(width, depth))
    return D


def flop_model(T: int, D: int, N: int, r: int, d: int = DATA_SIZE) -> dict:
    """FLOPs of one training step's recurrence (forward + backward ~ 3x forward)."""
    sequential = 6.0 * N * (T - 1) * D * D
    precompute = 3 * 2.0 * T * D * D * (r + 1 + d)
    if T * d <= 2048:
        convolution = 2.0 * T * T * d * D  # Toeplitz GEMM
    else:
        convolution = (
            2.5 * d * D * (2 * T) * max(1, (2 * T).bit_length() - 1)
        )  # FFT, ~5 n log2 n / 2
    per_sample = 3 * (2.0 * T * D * (r + 1) + convolution)
    return {
        "sequential": sequential,
        "parallel_precompute": precompute,
        "parallel_per_sample": per_sample,
        "parallel": precompute + N * per_sample,
        "convolution": "gemm" if T * d <= 2048 else "fft",
    }


def memory_estimate_gb(
    T: int, D: int, N: int, r: int, mode: str, A_entries: int | None = None
) -> float:
    """A rough upper estimate of a training step's memory: the (N, T, D) states, their
    cotangents and the decoder's copies of them (about 4 such arrays; the parallel form's
    FFT path adds a zero-padded (N, 2T, D) complex buffer and its transpose), the
    parallel powers (T, D, r + 1 + d) and A's training state (16 bytes per entry: A, its
    gradient, two Adam moments; `A_entries` default D^2, the dense A)."""
    A_entries = D * D if A_entries is None else A_entries
    states = 4 * N * T * D * 4
    if mode == "parallel":
        states += 3 * T * D * (r + 1 + DATA_SIZE) * 4
        if T * DATA_SIZE > 2048:
            states += 2 * N * (2 * T) * D * 8
    return (states + 16 * A_entries + 0.5 * 2**30) / 2**30


def available_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def total_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")
