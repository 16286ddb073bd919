"""What every benchmark shares, so that a benchmark script only measures and reports:
`parser` / `parse` (the common flags `--smoke`, `--out`, `--render [JSON]`, `--no-readme`,
`--figure`, the hidden `--worker KIND SPEC`); `report` / `finish` (JSON, figure, Markdown,
spliced into the README between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, never
for a smoke run); `run_worker` (one configuration in a fresh process: its peak RSS is its
own, a crash comes back as `{"error": ...}`); `timed`, the one timing policy; `table`.
"""

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from systems import atomic_write_bytes, atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS, FIGURES, README = ROOT / "benchmarks" / "results", ROOT / "figures", ROOT / "README.md"


def device() -> str:
    """`"PLATFORM: CPU model (or accelerator kind), N cores, jax VERSION"`."""
    import jax

    dev = jax.devices()[0]
    kind = dev.device_kind
    if dev.platform == "cpu":
        info = Path("/proc/cpuinfo")
        names = re.findall(r"model name\s*:\s*(.*)", info.read_text()) if info.exists() else []
        kind = names[0].strip() if names else platform.processor() or "cpu"
    return f"{dev.platform}: {kind}, {os.cpu_count()} cores, jax {jax.__version__}"


def load() -> float:
    """The 1-minute load average (a shared machine's load moves every timing)."""
    return os.getloadavg()[0]


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- timing
def timed(call, *, reps: int, budget_s: float = math.inf, warmup_s: float = 15.0) -> dict:
    """Median wall time of `call()` (blocking) as `median_s`, with `steps_s`, `cpu_s`, `reps`,
    `warmup`, `first_call_s`: the first call is an untimed warm-up when under `warmup_s`
    (`inf`: always; 0: never); timed calls stop after `reps` or `budget_s` seconds."""
    walls, cpus = [], []
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        warmup = int(walls[0] < warmup_s)
        steps = walls[warmup:]
        if len(steps) >= reps or (steps and sum(steps) >= budget_s):
            break
    cpu_s = statistics.median(cpus[warmup:])
    out = dict(median_s=statistics.median(steps), steps_s=steps, reps=len(steps), cpu_s=cpu_s)
    return dict(out, warmup=warmup, first_call_s=walls[0])


def gemm_gflops(D: int, cols: int = 64, reps: int = 5) -> float:
    """The float32 GEMM rate now, (D x D) @ (D x `cols`), in GFLOP/s: the best of `reps`
    calls after a compiling one (the load changes it, so it is measured beside a row)."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(0), (D, D))
    x = jax.random.normal(jax.random.PRNGKey(1), (D, cols))
    product = jax.jit(lambda a, x: a @ x)
    call = lambda: jax.block_until_ready(product(a, x))
    call()
    best = min(timed(call, reps=1, warmup_s=0)["median_s"] for _ in range(reps))
    return 2.0 * D * D * cols / best / 1e9


def oscillations(key, batch: int, T: int):
    """`(batch, T, 2)` damped oscillations (position, velocity / omega) on [0, 1] with
    random frequency, damping and phase: stand-in data for timing."""
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


def time_training_step(model, loss, optimizer, data, *, reps: int, **policy) -> dict:
    """One training step (`loss(model, data, key)`, its gradient, an `optimizer` update;
    call i gets `PRNGKey(i)`) compiled ahead of time and `timed(**policy)`: `timed`'s keys,
    `compile_s` and `final_loss`."""
    import equinox as eqx
    import jax

    def params(model):
        return eqx.filter(model, eqx.is_inexact_array)

    @eqx.filter_jit
    def step(model, opt_state, data, key):
        value, grads = eqx.filter_value_and_grad(loss)(model, data, key)
        updates, opt_state = optimizer.update(grads, opt_state, params(model))
        return eqx.apply_updates(model, updates), opt_state, value

    state, calls = [model, optimizer.init(params(model)), None], iter(range(10**9))
    start = time.perf_counter()
    compiled = step.lower(*state[:2], data, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - start

    def call():
        key = jax.random.PRNGKey(next(calls))
        state[:] = jax.block_until_ready(compiled(*state[:2], data, key))

    timing = timed(call, reps=reps, **policy)
    return dict(timing, compile_s=compile_s, final_loss=float(state[2]))


# -------------------------------------------------------------------------- workers
def run_worker(module: str, kind: str, spec: dict, *, workers=None) -> dict:
    """`WORKERS[kind](spec)` of `benchmarks.<module>` in a fresh process (at most two
    hours), or in this one when its `workers` are given: the worker's dict plus
    `load_average` `[before, after]`, or `{"error": ...}` (a crash, a kill, a timeout)."""
    before = load()
    if workers is not None:
        return dict(workers[kind](spec), load_average=[before, load()])
    command = [sys.executable, "-m", f"benchmarks.{module}", "--worker", kind, json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=7200)
    except subprocess.TimeoutExpired:
        return {"error": "worker ran past its 7200 s"}
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"error": f"worker exited with {done.returncode}: {tail}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), load_average=[before, load()])


def checked(result: dict, what: str) -> dict:
    """`result`, or a one-line `RuntimeError` when the worker for `what` failed."""
    if "error" in result:
        raise RuntimeError(f"{what}: {result['error']}")
    return result


# ---------------------------------------------------------------- results and README
def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write_json(path: Path, value, strict: bool = True) -> None:
    """Indented JSON, written atomically; strict (no NaN or infinity) unless told."""
    if strict:
        atomic_write_json(path, value)
    else:
        atomic_write_bytes(path, (json.dumps(value, indent=2) + "\n").encode())


def fmt(x, spec: str = ".3g", none: str = "-") -> str:
    """`x` formatted by `spec`, or `none` when it is missing (None) or not finite."""
    return none if x is None or not math.isfinite(x) else format(x, spec)


def table(head: str, rows) -> str:
    """A Markdown table: the `head` cells ("a | b | c"), then one line per row, a string
    of cells in that form or a sequence of cells."""
    lines = [head, *(r if isinstance(r, str) else " | ".join(map(str, r)) for r in rows)]
    lines = [f"| {line} |" for line in lines]
    return "\n".join([lines[0], "|" + "---|" * (head.count(" | ") + 1), *lines[1:]])


def block_pattern(name: str) -> re.Pattern:
    start, end = (re.escape(f"<!-- {x}bench:{name} -->") for x in ("", "/"))
    return re.compile(f"{start}\n(.*?)\n{end}", flags=re.DOTALL)


def splice_readme(name: str, markdown: str, readme: Path = README) -> bool:
    """Replace the block `name` of `readme` with `markdown`; False (the file left alone)
    when the README has no such block."""
    text, pattern = Path(readme).read_text(), block_pattern(name)
    if not pattern.search(text):
        return False
    block = f"<!-- bench:{name} -->\n{markdown.strip()}\n<!-- /bench:{name} -->"
    atomic_write_bytes(readme, pattern.sub(lambda _: block, text, count=1).encode())
    return True


def save_figure(fig, path: Path, dpi: int = 130) -> None:
    """Write `fig` as a palette PNG (committed figures stay small) and close it."""
    import matplotlib.pyplot as plt

    from warp_phys.plotting import save_figure as save

    save(fig, path, dpi=dpi, palette=True)
    plt.close(fig)


# ------------------------------------------------------------------- command line
def parser(name: str, doc: str, *, figure: bool = False) -> argparse.ArgumentParser:
    """The flags every benchmark has; `parse` fills in the default paths."""
    prog, raw = f"python -m benchmarks.{name}", argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog, description=doc, formatter_class=raw)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (the tests); no README")
    p.add_argument("--out", type=Path, help=f"result JSON (default results/{name}.json)")
    default = RESULTS / f"{name}.json"
    what = "measure nothing: report from this (the committed) JSON"
    p.add_argument("--render", nargs="?", type=Path, const=default, metavar="JSON", help=what)
    p.add_argument("--no-readme", action="store_true", help="do not update README.md")
    if figure:
        p.add_argument("--figure", type=Path, help=f"figure PNG (default figures/{name}.png)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    p.set_defaults(name=name)
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse `argv`; a smoke run writes to the temp folder unless told otherwise."""
    args = p.parse_args(argv)
    tmp, name = Path(tempfile.gettempdir()), args.name
    args.out = args.out or (tmp / f"{name}_smoke.json" if args.smoke else RESULTS / f"{name}.json")
    if "figure" in args and args.figure is None:
        args.figure = tmp / f"{name}_smoke.png" if args.smoke else FIGURES / f"{name}.png"
    return args


def report(args, measure, markdown, draw=None, workers=None) -> dict:
    """Serve a `--worker` (`run_worker`'s other side: the result printed as JSON), else
    `finish` with the `--render` JSON or what `measure()` returns."""
    if args.worker:
        result = workers[args.worker[0]](json.loads(args.worker[1]))
        print(json.dumps(result))
        return result
    return finish(args, read_json(args.render) if args.render else measure(), markdown, draw)


def finish(args, result: dict, markdown, draw=None) -> dict:
    """Write a measured `result` to `--out`, draw the figure (`draw(result)`), print the
    Markdown block and splice it into the README unless this is a smoke result or
    `--no-readme` was given; returns `result`."""
    if not args.render:
        write_json(args.out, result)
    if draw is not None:
        draw(result)
    text = markdown(result)
    print(text)
    if not (args.smoke or result.get("smoke") or args.no_readme):
        splice_readme(args.name, text)
    return result
