"""Time `systems.generate` on the paper-size MSD training set against a scipy loop.

The diffrax time is the median wall time of `--runs` full generations after a compiling
warm-up (sampling, integration of all 20,480 x 256 trajectories, transfer to NumPy); the
JSON also records their process CPU time and the load average, since a shared machine
inflates wall times. scipy's
`solve_ivp` (RK45) runs in a Python loop over the FIRST `--scipy-subset` trajectories of the
same data set (same parameters and initial conditions) with a NumPy right-hand side; its
time is extrapolated linearly to all trajectories. Two scipy settings are timed: the
reference's (default tolerances, rtol=1e-3, atol=1e-6) and ours (rtol=1e-7, atol=1e-9).

    python benchmarks/generation.py            # full run, writes benchmarks/results/generation.json
    python benchmarks/generation.py --smoke    # a few seconds, for the test suite
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import numpy as np
from scipy.integrate import solve_ivp

import systems

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "generation.json"


def _msd_rhs(t, y, m, k, c):
    return [y[1], -(c * y[1] + k * y[0]) / m]


def time_scipy(ds: systems.Dataset, count: int, rtol: float, atol: float) -> float:
    """Seconds for `solve_ivp` (RK45) on the first `count` trajectories of `ds`, in a loop."""
    t = ds.t.astype(np.float64)
    start = time.perf_counter()
    for i in range(count):
        args = (float(ds.params["m"][i]), float(ds.params["k"][i]), float(ds.params["c"][i]))
        solve_ivp(_msd_rhs, (t[0], t[-1]), ds.y0[i].astype(np.float64), method="RK45",
                  t_eval=t, args=args, rtol=rtol, atol=atol)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, prints a table and writes the JSON result; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="trajectories (default 20480)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--scipy-subset", type=int, default=200, help="trajectories for scipy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, runs in seconds")
    args = parser.parse_args(argv)
    system = systems.get_system("msd")
    n = args.n or system.split_sizes["train"]
    runs, subset = args.runs, args.scipy_subset
    if args.smoke:
        n, runs, subset = 64, 1, 8
    subset = min(subset, n)
    gen = lambda: systems.generate(system, n, split="train", seed=args.seed, progress=False)

    start = time.perf_counter()
    ds = gen()
    first_s = time.perf_counter() - start
    times, cpu_times = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        ds = gen()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    ours = statistics.median(times)
    scale = n / subset
    ref_s = time_scipy(ds, subset, rtol=1e-3, atol=1e-6) * scale
    matched_s = time_scipy(ds, subset, rtol=system.rtol, atol=system.atol) * scale

    result = {
        "smoke": args.smoke, "system": "msd", "n_trajectories": n, "n_steps": system.n_steps,
        "diffrax_s": ours, "diffrax_runs_s": times, "diffrax_cpu_s": statistics.median(cpu_times),
        "diffrax_first_call_s": first_s, "load_average": os.getloadavg()[0],
        "diffrax_rtol": system.rtol, "diffrax_atol": system.atol,
        "scipy_subset": subset, "scipy_extrapolated_s": ref_s, "ratio": ref_s / ours,
        "scipy_matched_extrapolated_s": matched_s, "ratio_matched": matched_s / ours,
        "jax": jax.__version__, "device": str(jax.devices()[0]), "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    rows = [
        ("systems.generate (diffrax Tsit5, vmap)", f"rtol={system.rtol:g}, atol={system.atol:g}",
         ours, 1.0),
        (f"solve_ivp RK45 loop (x{scale:.0f} from {subset})", "rtol=1e-3, atol=1e-6 (ref.)",
         ref_s, ref_s / ours),
        (f"solve_ivp RK45 loop (x{scale:.0f} from {subset})",
         f"rtol={system.rtol:g}, atol={system.atol:g}", matched_s, matched_s / ours),
    ]
    print(f"MSD training set: {n} trajectories x {system.n_steps} steps "
          f"({os.cpu_count()} CPU cores, {jax.devices()[0]}); first call incl. compile "
          f"{first_s:.2f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"{'method':<44} {'tolerances':<28} {'time [s]':>10} {'ratio':>8}")
    for method, tol, sec, ratio in rows:
        print(f"{method:<44} {tol:<28} {sec:>10.2f} {ratio:>8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
