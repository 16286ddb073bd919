"""Time `systems.generate` on the paper-size MSD training set against a scipy loop.

The diffrax time is the median of `--runs` full generations (20,480 x 256 trajectories,
transfer to NumPy included) after a compiling one, with their CPU time and the load
average. scipy's `solve_ivp` (RK45, NumPy right-hand side) runs in a Python loop over the
first `--scipy-subset` trajectories of the same data set, extrapolated linearly to all of
them, at the reference's tolerances (rtol=1e-3, atol=1e-6) and at ours.

    python -m benchmarks.generation            # writes benchmarks/results/generation.json
    python -m benchmarks.generation --render   # the table, from the committed JSON
"""

import time

import numpy as np
from scipy.integrate import solve_ivp

import systems
from benchmarks import _harness as harness


def _msd_rhs(t, y, m, k, c):
    return [y[1], -(c * y[1] + k * y[0]) / m]


def time_scipy(ds: systems.Dataset, count: int, rtol: float, atol: float) -> float:
    """Seconds for `solve_ivp` (RK45) on the first `count` trajectories of `ds`, in a loop."""
    t = ds.t.astype(np.float64)
    start = time.perf_counter()
    for i in range(count):
        args = tuple(float(ds.params[p][i]) for p in ("m", "k", "c"))
        y0 = ds.y0[i].astype(np.float64)
        solve_ivp(_msd_rhs, (t[0], t[-1]), y0, t_eval=t, args=args, rtol=rtol, atol=atol)
    return time.perf_counter() - start


def measure(n: int | None, runs: int, subset: int, seed: int, smoke: bool) -> dict:
    system = systems.get_system("msd")
    n = n or system.split_sizes["train"]
    if smoke:
        n, runs, subset = 64, 1, 8
    subset, made = min(subset, n), {}

    def generate():
        made["ds"] = systems.generate(system, n, split="train", seed=seed, progress=False)

    timing = harness.timed(generate, reps=runs, warmup_s=float("inf"))  # first call compiles
    ours, scale = timing["median_s"], n / subset
    ref_s = time_scipy(made["ds"], subset, rtol=1e-3, atol=1e-6) * scale
    matched_s = time_scipy(made["ds"], subset, rtol=system.rtol, atol=system.atol) * scale
    out = dict(smoke=smoke, system="msd", n_trajectories=n, n_steps=system.n_steps, diffrax_s=ours)
    out.update(diffrax_runs_s=timing["steps_s"], diffrax_cpu_s=timing["cpu_s"])
    out.update(diffrax_first_call_s=timing["first_call_s"], load_average=harness.load())
    out.update(diffrax_rtol=system.rtol, diffrax_atol=system.atol, scipy_subset=subset)
    out.update(scipy_extrapolated_s=ref_s, ratio=ref_s / ours)
    out.update(scipy_matched_extrapolated_s=matched_s, ratio_matched=matched_s / ours)
    return dict(out, device=harness.device(), date=harness.stamp())


def markdown(r: dict) -> str:
    subset = r["scipy_subset"]
    scipy = f"solve_ivp RK45 loop (x{r['n_trajectories'] / subset:.0f} from {subset})"
    ours = f"rtol={r['diffrax_rtol']:g}, atol={r['diffrax_atol']:g}"
    rows = [
        ("systems.generate (diffrax Tsit5, vmap)", ours, r["diffrax_s"], 1.0),
        (scipy, "rtol=1e-3, atol=1e-6 (ref.)", r["scipy_extrapolated_s"], r["ratio"]),
        (scipy, ours, r["scipy_matched_extrapolated_s"], r["ratio_matched"]),
    ]
    rows = [f"{method} | {tol} | {sec:.2f} | {ratio:.1f}" for method, tol, sec, ratio in rows]
    return (
        f"MSD training set: {r['n_trajectories']} trajectories x {r['n_steps']} steps on "
        f"{r['device']}; first call incl. compile {r['diffrax_first_call_s']:.2f} s; load "
        f"average {r['load_average']:.1f}\n\n"
        + harness.table("method | tolerances | time [s] | ratio", rows)
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark (or `--render`s), prints the table, writes the JSON; returns it."""
    parser = harness.parser("generation", __doc__)
    parser.add_argument("--n", type=int, default=None, help="trajectories (default 20480)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--scipy-subset", type=int, default=200, help="trajectories for scipy")
    parser.add_argument("--seed", type=int, default=0)
    args = harness.parse(parser, argv)
    if args.render:
        return harness.finish(args, harness.read_json(args.render), markdown)
    result = measure(args.n, args.runs, args.scipy_subset, args.seed, args.smoke)
    return harness.finish(args, result, markdown)


if __name__ == "__main__":
    main()
