"""Speed and memory of WARP on CPU: parallel vs sequential recurrence, FLOP/s, inference.

Measured in one run (issue 8, section 2), each configuration in its own subprocess so
that its peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`) is its own:

- training-step time (teacher-forced, non-autoregressive: forward + backward + Adam
  update, jitted and compiled ahead of time) of WARP in `mode="parallel"` vs
  `mode="sequential"` for T in {64, 256, 1024, 4096}, D_theta ~1k and ~5k (root MLP
  [tau, x_prev] -> 2 with two hidden layers of width 28 or 67: D_theta 982 and 4960),
  data_size 2, batch 64, hypernetwork width r = 32 (the package default);
- the sequential recurrence's achieved FLOP/s (FLOP model 6 N (T-1) D^2 per training
  step: 2 forward, 4 backward), as a fraction of a dense float32 (D x D) @ (D x 64)
  GEMM timed in the same worker just before and after the row;
- inference: trajectories per second of `reconstruct` (context 100, horizon 156) for the
  demo's trained MSD model (`runs/demo/best.eqx`; the same architecture untrained if
  `make demo` has not been run, which the JSON says);
- WARP vs a GRU of equal parameter count, seconds per training step (T 256, batch 64);
- peak memory vs D_theta (sequential, T 64, batch 64), with the dense A's training state
  (A, its gradient, two Adam moments: 16 D^2 bytes) against the machine's memory;
- the paper-MSD rows (scan vs kernel autoregressive training, issue 11) are copied from
  `benchmarks/results/paper_speed.json` (its source and date recorded); `--paper-msd`
  re-measures them with `benchmarks.paper_speed` first (batch 1024 takes ~15 min more).

Timings are medians of the steps that ran after compilation: the first call is a
warm-up when it takes under 15 s, and timed steps stop after `--reps` or once
`--rep-budget` seconds have been spent (at least one); the counts are in the JSON. A
configuration whose estimated memory exceeds 70 % of the memory available when it starts
is skipped with the reason recorded, never extrapolated.

Budget: about 40 minutes on 2 shared CPU cores (`make bench-speed`); `--smoke` runs tiny
sizes in seconds for the test suite.

    python -m benchmarks.speed    # writes results/speed.json, figures/speed.png, README
    python -m benchmarks.speed --smoke --out /tmp/speed.json --figure /tmp/speed.png
    python -m benchmarks.speed --render benchmarks/results/speed.json   # redraw only
"""

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "speed.json"
DEFAULT_FIGURE = ROOT / "figures" / "speed.png"
PAPER_SPEED = ROOT / "benchmarks" / "results" / "paper_speed.json"
DEMO_MODEL = ROOT / "runs" / "demo" / "best.eqx"
MODES = ("parallel", "sequential")
DATA_SIZE = 2
MEMORY_FRACTION = 0.7  # skip a configuration estimated to need more of the available memory

# root MLP (width, depth) with [tau, x_prev] input and 2 outputs: D = w^2 + 7 w + 2
FULL = {
    "sizes": {"1k": (28, 2), "5k": (67, 2)},
    "lengths": (64, 256, 1024, 4096),
    "batch": 64,
    "hyper_width": 32,
    "memory_sizes": ((13, 2), (28, 2), (47, 2), (67, 2), (97, 2)),
    "memory_length": 64,
    "gru_length": 256,
    "inference": {"batch": 256, "context": 100, "horizon": 156},
}
SMOKE = {
    "sizes": {"tiny": (4, 1)},
    "lengths": (8,),
    "batch": 4,
    "hyper_width": 4,
    "memory_sizes": ((4, 1),),
    "memory_length": 8,
    "gru_length": 8,
    "inference": {"batch": 8, "context": 6, "horizon": 10},
}


# --------------------------------------------------------------------------- workers


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def gemm_gflops(D: int, cols: int = 64, reps: int = 5) -> float:
    """Best-of-`reps` rate of a float32 (D x D) @ (D x cols) product, in GFLOP/s."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(0), (D, D))
    x = jax.random.normal(jax.random.PRNGKey(1), (D, cols))
    product = jax.jit(lambda a, x: a @ x)
    jax.block_until_ready(product(a, x))
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(product(a, x))
        best = min(best, time.perf_counter() - start)
    return 2.0 * D * D * cols / best / 1e9


def _timed(call, reps: int, budget_s: float) -> dict:
    """Median wall time of `call()` (which blocks until done). The first call is a
    warm-up if it takes under 15 s, else it counts as a timed step; timed steps stop
    after `reps` or when `budget_s` seconds have been spent (at least one runs)."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    walls = [] if first < 15.0 else [first]
    while len(walls) < reps and (not walls or sum(walls) < budget_s):
        start = time.perf_counter()
        call()
        walls.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(walls),
        "steps_s": walls,
        "reps": len(walls),
        "warmup": int(first < 15.0),
        "first_call_s": first,
    }


def _warp(width: int, depth: int, T: int, hyper_width: int):
    import jax

    import warp_phys as wp

    return wp.WARP(
        DATA_SIZE,
        root_width=width,
        root_depth=depth,
        hyper_width=hyper_width,
        hyper_depth=1,
        seq_len=T,
        key=jax.random.PRNGKey(0),
    )


def _train_step_timing(model, mode: str, batch: int, T: int, reps: int, budget_s: float):
    """Compile one Adam training step (teacher-forced MSE over a batch) and time it."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks.paper_speed import _trajectories

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

    timing = _timed(call, reps, budget_s)
    timing["compile_s"] = compile_s
    return timing


def worker_warp_step(spec: dict) -> dict:
    """One WARP training-step configuration: `spec` has width, depth, T, batch, mode,
    hyper_width, reps, budget_s, and optionally forward=True to also time the vmapped
    recurrence alone (forward only)."""
    import equinox as eqx
    import jax

    width, depth, T, batch, mode = (spec[k] for k in ("width", "depth", "T", "batch", "mode"))
    rss_start = _rss_gb()
    model = _warp(width, depth, T, spec["hyper_width"])
    D = model.theta_size
    gemm = [gemm_gflops(D)]
    out = {"D_theta": D, "T": T, "batch": batch, "mode": mode, "root": [width, depth]}
    out.update(_train_step_timing(model, mode, batch, T, spec["reps"], spec["budget_s"]))
    if spec.get("forward"):
        from benchmarks.paper_speed import _trajectories

        data = _trajectories(jax.random.PRNGKey(1), batch, T)
        forward = eqx.filter_jit(lambda m, d: jax.vmap(lambda xs: m.weight_trajectory(xs, mode))(d))
        compiled = forward.lower(model, data).compile()
        timing = _timed(lambda: jax.block_until_ready(compiled(model, data)), spec["reps"], 60.0)
        out["forward_s"] = timing["median_s"]
        out["forward_reps"] = timing["reps"]
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


# --------------------------------------------------------------------------- planning


def theta_size(width: int, depth: int) -> int:
    sizes = [1 + DATA_SIZE] + [width] * depth + [DATA_SIZE]
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:], strict=True))


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


def memory_estimate_gb(T: int, D: int, N: int, r: int, mode: str) -> float:
    """A rough upper estimate of a training step's memory: the (N, T, D) states, their
    cotangents and the decoder's copies of them (about 4 such arrays; the parallel form's
    FFT path adds a zero-padded (N, 2T, D) complex buffer and its transpose), the
    parallel powers (T, D, r + 1 + d) and the dense A's training state (16 D^2 bytes)."""
    states = 4 * N * T * D * 4
    if mode == "parallel":
        states += 3 * T * D * (r + 1 + DATA_SIZE) * 4
        if T * DATA_SIZE > 2048:
            states += 2 * N * (2 * T) * D * 8
    return (states + 16 * D * D + 0.5 * 2**30) / 2**30


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


def _device() -> str:
    from benchmarks.paper_speed import _device as device

    return device()


def _git_date(path: Path) -> str | None:
    done = subprocess.run(
        ["git", "log", "-1", "--format=%cI", "--", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return done.stdout.strip() or None


def paper_msd_rows(remeasure: bool, smoke: bool) -> dict:
    """The paper-MSD scan vs kernel rows from `paper_speed.json` (re-measured first
    with `benchmarks.paper_speed` when `remeasure`)."""
    from benchmarks import paper_speed

    source = PAPER_SPEED
    if remeasure:
        if smoke:
            source = Path(tempfile.mkdtemp()) / "paper_speed.json"
            paper_speed.main(["--smoke", "--reps", "1", "--warmup", "0", "--out", str(source)])
        else:
            paper_speed.main(["--out", str(source)])
    if not source.exists():
        return {"rows": [], "source": None, "note": f"{source} not found"}
    result = json.loads(source.read_text())
    keys = (
        "batch",
        "algorithm",
        "step_s",
        "peak_rss_gb",
        "cpu_s",
        "theta_size",
        "feature_size",
        "seq_len",
        "steps_s",
        "gemm_gflops",
    )
    rows = [{k: row[k] for k in keys if k in row} for row in result.get("paper_msd", [])]
    for row in rows:
        row["reps"] = len(row.get("steps_s", [])) or None
    measured = (
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        if remeasure
        else _git_date(source)
        or datetime.datetime.fromtimestamp(source.stat().st_mtime).isoformat()
    )
    return {
        "rows": rows,
        "source": str(source.relative_to(ROOT)) if source.is_relative_to(ROOT) else str(source),
        "measured": measured,
        "remeasured_in_this_run": remeasure,
        "device": result.get("device"),
        "smoke": result.get("smoke", False),
    }


# --------------------------------------------------------------------------- output


def _fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def _loads(result: dict) -> list[float]:
    loads = []
    for row in result["rows"]:
        for mode in MODES:
            loads += (row.get(mode) or {}).get("load_average", [])
    return loads


def markdown(result: dict) -> str:
    """The README block, generated from the JSON."""
    loads = _loads(result)
    load = (
        f" Load average during the rows: median {statistics.median(loads):.1f}, "
        f"max {max(loads):.1f} on 2 cores."
        if loads
        else ""
    )
    side = result.get("side_part")
    side = f" ({side['note']}: `{side['command']}`, finished {side['date']}.)" if side else ""
    lines = [
        f"Measured {result['date']} on {result['device']} (`{result['command']}`, "
        f"stated budget {result['budget']}; this run took {result['wall_s'] / 60:.0f} min)."
        f" {result['note']}{load}{side}",
        "",
        *(
            []
            if result.get("complete", True)
            else [
                "**Incomplete**: some configurations were not run; the rows say why.",
                "",
            ]
        ),
        f"Dense float32 GEMM (D x D) @ (D x 64) at D = {result['matmul_D']}: "
        f"**{result['matmul_gflops']:.0f} GFLOP/s** (this run).",
        "",
        "**Training step** (teacher-forced, forward + backward + Adam), batch "
        f"{result['rows'][0]['batch'] if result['rows'] else '-'}, data_size 2, hypernetwork "
        f"width r = {result['hyper_width']}; seconds per step, median of `reps` steps:",
        "",
        "| T | D_theta | parallel s | sequential s | parallel speed-up | FLOP model speed-up "
        "| recurrence GFLOP/s (sequential step) | % of GEMM | forward recurrence % of GEMM "
        "| GEMM GFLOP/s beside it | reps par/seq |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        speedup = (
            row["sequential_s"] / row["parallel_s"]
            if row["parallel_s"] and row["sequential_s"]
            else None
        )
        frac = row.get("recurrence_fraction")
        fwd = row.get("recurrence_forward_fraction")
        gemms = [g for m in MODES for g in (row.get(m) or {}).get("gemm_gflops", [])]
        gemm = statistics.median(gemms) if gemms else None
        reps = f"{row.get('parallel_reps') or '-'}/{row.get('sequential_reps') or '-'}"
        lines.append(
            f"| {row['T']} | {row['D_theta']} | {_fmt(row['parallel_s'], '.3g')} "
            f"| {_fmt(row['sequential_s'], '.3g')} | {_fmt(speedup, '.2f', '-')}"
            f"{'x' if speedup else ''} "
            f"| {row['flops']['sequential'] / row['flops']['parallel']:.2f}x "
            f"| {_fmt(row['recurrence_gflops'], '.1f')} | {_fmt(frac and 100 * frac, '.0f')} "
            f"| {_fmt(fwd and 100 * fwd, '.0f')} | {_fmt(gemm, '.0f')} | {reps} |"
        )
    skipped = [r for r in result["rows"] if r.get("skipped")]
    for row in skipped:
        lines.append(f"\nT {row['T']}, D_theta {row['D_theta']}: {'; '.join(row['skipped'])}")
    for rerun in result.get("rows_rerun", []):
        which = ", ".join(f"T {T} / D_theta {D}" for T, D in rerun["rows"])
        Ts = " ".join(str(T) for T in sorted({T for T, _ in rerun["rows"]}))
        lines.append(
            f"\nRows {which}: from `python -m benchmarks.speed --part rows --lengths {Ts}` "
            f"({rerun['date']}), a second invocation once the load had dropped "
            "(both modes side by side in it; in the "
            "first run the two modes of the T 1024 rows ran under very different load, and "
            "the T 4096 rows were cut by its time limit)."
        )
    lines += ["", result["analysis"], ""]
    target = result["targets"]
    lines += [
        f"Targets: parallel >= 5x faster at T 1024, D_theta ~5k: **{target['parallel_5x']}**; "
        f"sequential recurrence >= 60 % of GEMM FLOP/s at D_theta ~5k: "
        f"**{target['recurrence_60pct']}**.",
        "",
    ]
    msd, rows_msd = result["paper_msd_source"], result["paper_msd"]
    if rows_msd:
        lines += [
            f"**Paper MSD configuration** (D_theta 4898, T 256, autoregressive, teacher forcing "
            f"0.25; from `{msd['source']}`, measured {msd['measured']}):",
            "",
            "| batch | algorithm | s per step | peak RSS GB | reps |",
            "|---|---|---|---|---|",
        ]
        for row in rows_msd:
            lines.append(
                f"| {row['batch']} | {row['algorithm']} | {row['step_s']:.1f} "
                f"| {row['peak_rss_gb']:.1f} | {row.get('reps') or '-'} |"
            )
        lines.append("")
    inf = result["inference"]
    if "error" not in inf:
        lines += [
            f"**Inference**: {inf['trajectories_per_s']:.0f} trajectories/s "
            f"(`reconstruct`, context {inf['context']}, horizon {inf['horizon']}, batch "
            f"{inf['batch']}, D_theta {inf['D_theta']}, model {inf['model']}).",
            "",
        ]
    lines += [
        "**WARP vs GRU of equal parameter count** (T "
        f"{result['gru_length']}, s per training step):",
        "",
        "| D_theta | params | WARP parallel s | WARP sequential s | GRU hidden | GRU s |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["warp_vs_gru"]:
        lines.append(
            f"| {row['D_theta']} | {row['params']:,} | {_fmt(row['warp_parallel_s'], '.3g')} "
            f"| {_fmt(row['warp_sequential_s'], '.3g')} | {row.get('gru_hidden', '-')} "
            f"| {_fmt(row.get('gru_s'), '.3g')} |"
        )
    mem = result["memory"]
    lines += [
        "",
        f"**Peak memory vs D_theta** (sequential training step, T {mem['T']}, batch "
        f"{mem['batch']}; peak RSS of the worker process):",
        "",
        "| D_theta | peak RSS GB | dense A training state GB (16 D^2 bytes) |",
        "|---|---|---|",
    ]
    for row in mem["rows"]:
        lines.append(
            f"| {row['D_theta']} | {_fmt(row.get('peak_rss_gb'), '.2f')} "
            f"| {row['dense_state_gb']:.3f} |"
        )
    lines += [
        "",
        f"A dense A needs 16 D^2 bytes to train (A, gradient, two Adam moments): on this "
        f"{mem['machine_gb']:.0f} GB machine that alone stops fitting at D_theta ~ "
        f"{mem['dense_A_limit_D']:,} (computed, not measured), before the activations "
        "(N T D floats, several copies). Structured transitions "
        "(`transition='diagonal' | 'lowrank' | 'block'`) are not measured by this benchmark "
        "yet.",
    ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from warp_phys.plotting import save_figure

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    lengths = sorted({r["T"] for r in result["rows"]}) or [1, 2]
    for D in sorted({r["D_theta"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["D_theta"] == D]
        for mode, style in (("parallel", "o-"), ("sequential", "s--")):
            pts = [(r["T"], r[f"{mode}_s"]) for r in rows if r[f"{mode}_s"]]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=f"{mode}, D={D}")
    ax.set(
        xscale="log",
        xlim=(lengths[0] / 1.5, lengths[-1] * 1.5),
        xlabel="T",
        ylabel="s per training step",
        title=f"training step, batch {result['memory']['batch']} (load differs by row)",
    )
    if ax.lines:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax = axes[0, 1]
    for D in sorted({r["D_theta"] for r in result["rows"]}):
        pts = [
            (r["T"], 100 * r["recurrence_fraction"])
            for r in result["rows"]
            if r["D_theta"] == D and r.get("recurrence_fraction")
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", label=f"sequential recurrence, D={D}")
    ax.axhline(100, color="k", ls=":", label="dense GEMM timed beside the row")
    ax.axhline(60, color="grey", ls=":", label="60 % target")
    ax.set(
        xscale="log",
        xlim=(lengths[0] / 1.5, lengths[-1] * 1.5),
        xlabel="T",
        ylabel="% of the GEMM rate",
        title="recurrence FLOP/s (whole training step) / GEMM",
        ylim=(0, None),
    )
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    mem = result["memory"]["rows"]
    pts = [(r["D_theta"], r["peak_rss_gb"]) for r in mem if r.get("peak_rss_gb")]
    if pts:
        ax.plot(*zip(*pts, strict=True), "o-", label="peak RSS (measured)")
    grid = [10 ** (2 + k / 8) for k in range(25)]  # D_theta from 100 to 100k
    ax.plot(
        grid,
        [16 * D * D / 2**30 for D in grid],
        "--",
        color="C1",
        label="A + grad + Adam moments, 16 D^2 bytes (computed)",
    )
    ax.axhline(result["memory"]["machine_gb"], color="r", ls=":", label="machine memory")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="D_theta",
        ylabel="GB",
        title=f"memory, T {result['memory']['T']}, batch {result['memory']['batch']}",
    )
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    msd = result["paper_msd"]
    if msd:
        labels = [f"{r['algorithm']}\nbatch {r['batch']}" for r in msd]
        ax.bar(
            range(len(msd)),
            [r["step_s"] for r in msd],
            color=["C0" if r["algorithm"] == "scan" else "C1" for r in msd],
        )
        ax.set_xticks(range(len(msd)), labels, fontsize=8)
        ax.set(
            yscale="log",
            ylabel="s per training step",
            title="paper MSD (D 4898, T 256, autoregressive)",
        )
    else:
        ax.set_axis_off()
    fig.suptitle(
        f"WARP speed on {result['device']} ({result['date'][:10]}, shared machine)", fontsize=10
    )
    fig.tight_layout()
    save_figure(fig, path, palette=True)
    plt.close(fig)


def _write_json(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- main


def _analysis(cfg: dict) -> str:
    N, r, d = cfg["batch"], cfg["hyper_width"], DATA_SIZE
    return (
        "Why the parallel form is not 5x faster here (FLOP model, dense A): per sample it "
        "costs T D (2 r + 2 T d) (the T d term is the causal convolution as a Toeplitz "
        "GEMM for T d <= 2048, an FFT above, which XLA runs at a few GFLOP/s on CPU) "
        "against the scan's 2 T D^2, plus a per-batch precompute of A^k [W | b | B], "
        f"2 T D^2 (r + 1 + d). At batch N = {N}, r = {r}, d = {d} the precompute alone is "
        f"(r + 1 + d) / N = {(r + 1 + d) / N:.2f} of the whole scan, and at T = 1024, "
        "D ~ 5k the GEMM convolution's 2 T d = 4096 is close to D, so the model predicts "
        "about 1x, not 5x. A 5x gain needs N >= 5 (r + 1 + d) (r <= 10 at batch 64, or "
        "batch >= 175 at r = 32) and T d << D, or a structured A (diagonal / low rank) "
        "whose powers cost O(T D) instead of O(T D^2); the kernel form pays off at large "
        "batch (paper-MSD rows)."
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, prints tables, writes the JSON, figure and README block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--reps", type=int, default=3, help="timed steps at most")
    parser.add_argument(
        "--rep-budget",
        type=float,
        default=60.0,
        help="stop timing a configuration once this many seconds were spent",
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument(
        "--paper-msd",
        action="store_true",
        help="re-measure the paper-MSD rows with benchmarks.paper_speed",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--part",
        choices=("all", "rows", "side"),
        default="all",
        help="side: only inference, GRU and memory (to run beside a rows-only run)",
    )
    parser.add_argument(
        "--merge-rows",
        type=Path,
        nargs="+",
        default=None,
        help="with --render: replace the rows of the same (T, D_theta) by this run's",
    )
    parser.add_argument(
        "--merge-side",
        type=Path,
        default=None,
        help="with --render: take inference, GRU and memory from this --part side JSON",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="minutes: start no configuration after this (recorded as not run)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the workers in this process (default with --smoke)",
    )
    parser.add_argument(
        "--render", type=Path, default=None, help="redraw figure and README from this JSON only"
    )
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        result = WORKERS[kind](json.loads(spec))
        print(json.dumps(result))
        return result

    if args.render:
        result = json.loads(args.render.read_text())
        for path in args.merge_rows or []:
            result = merge_rows(result, json.loads(path.read_text()))
            _write_json(args.render, result)
        if args.merge_side:
            result = merge_side(result, json.loads(args.merge_side.read_text()))
            _write_json(args.render, result)
        plot(result, args.figure or DEFAULT_FIGURE)
        print(markdown(result))
        if not args.no_readme and not result["smoke"]:
            from benchmarks._readme import splice_readme

            splice_readme("speed", markdown(result))
        return result

    cfg = SMOKE if args.smoke else FULL
    out = args.out or DEFAULT_OUT
    figure = args.figure or DEFAULT_FIGURE
    lengths = args.lengths or cfg["lengths"]
    N, r = cfg["batch"], cfg["hyper_width"]
    started = time.perf_counter()
    isolate = not (args.in_process or args.smoke)
    limit_s = None if args.time_limit is None else 60.0 * args.time_limit

    def log(*parts):
        print(*parts, flush=True)

    def out_of_time() -> str | None:
        if limit_s is not None and time.perf_counter() - started > limit_s:
            return (
                f"not run: the --time-limit of {args.time_limit:g} min was spent "
                f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
            )
        return None

    big = max(cfg["sizes"].values(), key=lambda s: theta_size(*s))
    matmul_D = theta_size(*big)
    gemm = _run_worker("gemm", {"D": matmul_D}, isolate)
    log(f"dense GEMM ({matmul_D} x {matmul_D}) @ ({matmul_D} x 64): {gemm['gflops']:.1f} GFLOP/s")
    state = {"gemm": gemm, "rows": [], "warp_vs_gru": [], "memory_rows": [], "inference": None}

    def save(complete: bool) -> dict:
        result = _assemble(state, cfg, args, matmul_D, complete, time.perf_counter() - started)
        _write_json(out, result)
        return result

    log(
        f"{'T':>5} {'D':>6} {'mode':>10} {'step_s':>9} {'reps':>4} {'peak_GB':>7} "
        f"{'GEMM_GF/s':>9} {'load':>5}"
    )
    sizes = [(theta_size(w, d), w, d) for w, d in cfg["sizes"].values()]
    # the rows up to T = 1024 first (the targets), then the side measurements, then the
    # longest sequences, so a time limit cuts the least informative rows
    short = [(D, w, d, T) for D, w, d in sizes for T in lengths if T <= 1024]
    long = [(D, w, d, T) for D, w, d in sizes for T in lengths if T > 1024]
    if args.part == "side":
        short, long = [], []
    for D, width, depth, T in short:
        state["rows"].append(_row(D, width, depth, T, N, r, cfg, args, isolate, out_of_time, log))
        save(False)

    if args.part == "rows":
        sizes, cfg = [], dict(cfg, memory_sizes=())
    log("inference")
    reason = out_of_time() or ("not run: --part rows" if args.part == "rows" else None)
    spec = dict(cfg["inference"], reps=args.reps)
    spec["model_path"] = None if args.smoke else str(DEMO_MODEL)
    state["inference"] = {"error": reason} if reason else _run_worker("inference", spec, isolate)
    log(f"  {state['inference']}")
    save(False)

    log("WARP vs GRU of equal parameter count")
    for D, _, _ in sizes:
        match = next(
            (r_ for r_ in state["rows"] if r_["D_theta"] == D and r_["T"] == cfg["gru_length"]),
            None,
        )
        if match is None:  # --part side: the WARP times come from the rows at --merge-side
            width, depth = next(s_ for s_ in cfg["sizes"].values() if theta_size(*s_) == D)
            ref = {"params": _count(_warp(width, depth, cfg["gru_length"], r))}
            match = {"parallel_s": None, "sequential_s": None}
        else:
            ref = match.get("sequential") or match.get("parallel") or {}
        entry = {
            "D_theta": D,
            "T": cfg["gru_length"],
            "batch": N,
            "params": ref.get("params"),
            "warp_parallel_s": match["parallel_s"],
            "warp_sequential_s": match["sequential_s"],
        }
        reason = out_of_time()
        if entry["params"] and not reason:
            spec = {"params": entry["params"], "T": cfg["gru_length"], "batch": N}
            spec.update(reps=args.reps, budget_s=args.rep_budget)
            res = _run_worker("gru_step", spec, isolate)
            if "error" in res:
                entry["gru_error"] = res["error"]
            else:
                entry.update(
                    gru_hidden=res["hidden_size"],
                    gru_params=res["params"],
                    gru_s=res["median_s"],
                    gru_reps=res["reps"],
                    gru_peak_rss_gb=res["peak_rss_gb"],
                    gru_load_average=res["load_average"],
                )
        elif reason:
            entry["gru_error"] = reason
        log(
            f"  D {D}: params {entry['params']:,}  WARP par {entry['warp_parallel_s']}  "
            f"seq {entry['warp_sequential_s']}  GRU {entry.get('gru_s')}"
        )
        state["warp_vs_gru"].append(entry)
        save(False)

    log("peak memory vs D_theta")
    T_mem = cfg["memory_length"]
    for width, depth in cfg["memory_sizes"]:
        D = theta_size(width, depth)
        entry = {
            "D_theta": D,
            "dense_A_gb": 4 * D * D / 2**30,
            "dense_state_gb": 16 * D * D / 2**30,
        }
        reuse = next(
            (
                r_
                for r_ in state["rows"]
                if r_["D_theta"] == D and r_["T"] == T_mem and r_.get("sequential_s")
            ),
            None,
        )
        reason = None if reuse else out_of_time()
        if reuse:
            res = reuse["sequential"]
        elif reason:
            res = {"error": reason}
        else:
            spec = {"width": width, "depth": depth, "T": T_mem, "batch": N}
            spec.update(mode="sequential", hyper_width=r, reps=1, budget_s=0.0)
            res = _run_worker("warp_step", spec, isolate)
        if "error" in res:
            entry["error"] = res["error"]
        else:
            entry.update(
                peak_rss_gb=res["peak_rss_gb"],
                rss_start_gb=res["rss_start_gb"],
                step_s=res["median_s"],
            )
        log(
            f"  D {D}: peak RSS {entry.get('peak_rss_gb')} GB, "
            f"dense state {entry['dense_state_gb']:.3f} GB"
        )
        state["memory_rows"].append(entry)
        save(False)

    for D, width, depth, T in long:
        state["rows"].append(_row(D, width, depth, T, N, r, cfg, args, isolate, out_of_time, log))
        save(False)

    result = save(True)
    plot(result, figure)
    log(markdown(result))
    if not args.smoke and not args.no_readme and out == DEFAULT_OUT:
        from benchmarks._readme import splice_readme

        splice_readme("speed", markdown(result))
    log(f"wrote {out}, {figure} in {result['wall_s']:.0f} s")
    return result


def _row(D, width, depth, T, N, r, cfg, args, isolate, out_of_time, log) -> dict:
    """Both modes of one (T, D_theta) configuration, each in its own worker."""
    row = {
        "T": T,
        "D_theta": D,
        "batch": N,
        "parallel_s": None,
        "sequential_s": None,
        "recurrence_gflops": None,
        "flops": flop_model(T, D, N, r),
        "skipped": [],
    }
    for mode in MODES:
        reason = out_of_time()
        need, have = memory_estimate_gb(T, D, N, r, mode), available_gb()
        if reason is None and need > MEMORY_FRACTION * have:
            reason = (
                f"skipped: estimated {need:.1f} GB > "
                f"{100 * MEMORY_FRACTION:.0f} % of the {have:.1f} GB available"
            )
        if reason:
            row["skipped"].append(f"{mode} {reason}")
            log(f"{T:>5} {D:>6} {mode:>10}   {reason}")
            continue
        spec = {"width": width, "depth": depth, "T": T, "batch": N, "mode": mode}
        spec.update(hyper_width=r, reps=args.reps, budget_s=args.rep_budget)
        spec["forward"] = mode == "sequential" and T == cfg["gru_length"]
        res = _run_worker("warp_step", spec, isolate)
        row[mode] = res
        if "error" in res:
            row["skipped"].append(f"{mode} failed: {res['error']}")
            log(f"{T:>5} {D:>6} {mode:>10}   failed: {res['error'][:100]}")
            continue
        row[f"{mode}_s"] = res["median_s"]
        row[f"{mode}_reps"] = res["reps"]
        log(
            f"{T:>5} {D:>6} {mode:>10} {res['median_s']:>9.3f} {res['reps']:>4} "
            f"{res['peak_rss_gb']:>7.2f} {statistics.mean(res['gemm_gflops']):>9.1f} "
            f"{max(res['load_average']):>5.1f}"
        )
    seq = row.get("sequential")
    if row["sequential_s"]:
        gemm = statistics.mean(seq["gemm_gflops"])
        row["recurrence_gflops"] = row["flops"]["sequential"] / row["sequential_s"] / 1e9
        row["recurrence_fraction"] = row["recurrence_gflops"] / gemm
        if "forward_s" in seq:
            fwd = 2.0 * N * (T - 1) * D * D / seq["forward_s"] / 1e9
            row["recurrence_forward_gflops"] = fwd
            row["recurrence_forward_fraction"] = fwd / gemm
    return row


def merge_rows(result: dict, other: dict) -> dict:
    """`result` with its rows of the same (T, D_theta) replaced by `other`'s (a
    `--part rows` re-run, e.g. of rows whose two modes ran under very different load)."""
    result = dict(result)
    new = {(r_["T"], r_["D_theta"]): r_ for r_ in other["rows"]}
    result["rows"] = [new.get((r_["T"], r_["D_theta"]), r_) for r_ in result["rows"]]
    result["rows_rerun"] = result.get("rows_rerun", []) + [
        {
            "rows": sorted(new),
            "command": other["command"],
            "date": other["date"],
            "note": "these rows come from a re-run (both modes side by side in it)",
        }
    ]
    result["targets"] = _targets(result["rows"])
    return result


def merge_side(result: dict, side: dict) -> dict:
    """`result` with its inference, WARP-vs-GRU and memory sections taken from a
    `--part side` run `side` (WARP's step times filled in from `result`'s rows)."""
    result = dict(result)
    if "error" in (result.get("inference") or {"error": None}):  # keep a measured one
        result["inference"] = side["inference"]
    result["memory"] = side["memory"]
    gru = []
    for entry in side["warp_vs_gru"]:
        entry = dict(entry)
        row = next(
            (
                r_
                for r_ in result["rows"]
                if r_["D_theta"] == entry["D_theta"] and r_["T"] == entry["T"]
            ),
            {},
        )
        entry["warp_parallel_s"] = row.get("parallel_s")
        entry["warp_sequential_s"] = row.get("sequential_s")
        gru.append(entry)
    result["warp_vs_gru"] = gru
    result["side_part"] = {
        "command": side["command"],
        "date": side["date"],
        "note": "inference, GRU and memory ran in a second process beside the rows' run",
    }
    result["complete"] = all(
        not any(x.startswith(("parallel not run", "sequential not run")) for x in r_["skipped"])
        for r_ in result["rows"]
    )
    return result


def _targets(rows: list[dict]) -> dict:
    """The issue's two speed targets, judged from the rows."""
    targets = {"parallel_5x": "not measured", "recurrence_60pct": "not measured"}
    if rows:
        five_k = [r_ for r_ in rows if r_["D_theta"] == max(r__["D_theta"] for r__ in rows)]
        at_1024 = next((r_ for r_ in five_k if r_["T"] == 1024), None)
        if at_1024 and at_1024["parallel_s"] and at_1024["sequential_s"]:
            ratio = at_1024["sequential_s"] / at_1024["parallel_s"]
            targets["parallel_5x"] = f"{'met' if ratio >= 5 else 'missed'} ({ratio:.2f}x)"
        whole = [r_["recurrence_fraction"] for r_ in five_k if r_.get("recurrence_fraction")]
        fwd = [
            r_["recurrence_forward_fraction"]
            for r_ in five_k
            if r_.get("recurrence_forward_fraction")
        ]
        best = max(whole + fwd, default=None)
        if best is not None:
            targets["recurrence_60pct"] = (
                f"{'met' if best >= 0.6 else 'missed'} (best {100 * best:.0f} % of the GEMM "
                f"rate measured beside it; whole training step: best "
                f"{100 * max(whole, default=0):.0f} %, forward recurrence alone: "
                + (f"{100 * max(fwd):.0f} %)" if fwd else "not measured)")
            )
    return targets


def _assemble(state, cfg, args, matmul_D, complete: bool, wall_s: float) -> dict:
    """The JSON result from what has been measured so far."""
    rows = sorted(state["rows"], key=lambda r_: (r_["D_theta"], r_["T"]))
    N, r = cfg["batch"], cfg["hyper_width"]
    machine_gb = total_gb()
    limit_D = int((machine_gb * 2**30 / 16) ** 0.5)
    memory = {
        "T": cfg["memory_length"],
        "batch": N,
        "mode": "sequential",
        "machine_gb": machine_gb,
        "dense_A_limit_D": limit_D,
        "structured": [],
        "rows": state["memory_rows"],
        "note": (
            f"A dense A needs 16 D^2 bytes to train (A, gradient, two Adam moments): on this "
            f"{machine_gb:.0f} GB machine that alone stops fitting at D_theta ~ {limit_D:,} "
            f"(computed, not measured), before activations (N T D floats, several copies). "
            "Structured transitions (`transition='diagonal' | 'lowrank' | 'block'`) are not "
            "measured by this benchmark yet."
        ),
    }
    paper = paper_msd_rows(args.paper_msd and complete, args.smoke)
    targets = _targets(rows)
    command = (
        "python -m benchmarks.speed"
        + (" --smoke" if args.smoke else "")
        + (" --paper-msd" if args.paper_msd else "")
        + (f" --time-limit {args.time_limit:g}" if args.time_limit is not None else "")
        + (f" --part {args.part}" if args.part != "all" else "")
        + (f" --lengths {' '.join(map(str, args.lengths))}" if args.lengths else "")
    )
    return {
        "device": _device(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "smoke": args.smoke,
        "complete": complete,
        "budget": "about 40 min on 2 otherwise idle CPU cores",
        "note": (
            "Shared, loaded machine (other engineers' jobs and a training run shared the "
            "2 cores, run under nice -n 5; load averages per configuration are in the "
            "JSON): absolute times are noisy and slow, compare within a row; each row's "
            "GEMM rate was measured beside it."
        ),
        "matmul_gflops": state["gemm"]["gflops"],
        "matmul_D": matmul_D,
        "hyper_width": r,
        "rep_policy": (
            f"first call is a warm-up if under 15 s; then up to {args.reps} timed steps, "
            f"stopping once {args.rep_budget:.0f} s were spent (at least one); median"
        ),
        "flop_model": (
            "sequential 6 N (T-1) D^2 per training step; parallel 3 x [2 T D^2 (r+1+d) "
            "+ N (2 T D (r+1) + conv)], conv = 2 T^2 d D (GEMM) or ~5 d D (2T) log2(2T) / 2 "
            "(FFT); recurrence_gflops = sequential FLOPs / whole step time"
        ),
        "rows": rows,
        "analysis": _analysis(cfg),
        "targets": targets,
        "warp_vs_gru": state["warp_vs_gru"],
        "gru_length": cfg["gru_length"],
        "memory": memory,
        "inference": state["inference"] or {"error": "not reached"},
        "paper_msd": paper.pop("rows"),
        "paper_msd_source": paper,
        "wall_s": wall_s,
    }


if __name__ == "__main__":
    main()
