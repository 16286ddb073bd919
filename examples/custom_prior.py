"""Your own physics, end to end: the README's "Your own physics" walk-through in Python.

The prior is a Duffing oscillator (`examples/duffing_prior.py`, a system the package does
not ship), named by its import path `duffing_prior:duffing` exactly as on the command
line. This script simulates training and test data with known parameters, trains WARP
with that prior, forecasts the test trajectories from their first 20 steps, reads the
identified (alpha, beta, delta) next to the truth and plots them:

    python examples/custom_prior.py [--steps 600] [--out runs/duffing]

About a minute on a laptop CPU with the defaults.
"""

import argparse
from pathlib import Path

import matplotlib
import numpy as np
from duffing_prior import simulate  # this script's folder is on sys.path

import systems
import warp_phys as wp

matplotlib.use("Agg")
from warp_phys.plotting import plot_run, save_figure  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    parser.add_argument("--n", type=int, default=128, help="training trajectories")
    parser.add_argument("--out", default="runs/duffing", help="folder for data and the run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # 1. data with known parameters (params/alpha, params/beta, params/delta)
    np.savez(out / "duffing.npz", **simulate(args.n, 80, seed=0))
    np.savez(out / "duffing_test.npz", **simulate(32, 80, seed=1))
    # 2. train with the prior named by import path (it computes in the data's units; the
    #    run normalises the data and maps them back for the prior)
    config = wp.RunConfig(
        data=str(out / "duffing.npz"), decoder="duffing_prior:duffing", context=20,
        steps=args.steps, batch_size=16, lr=3e-3, val_every=100,
    )  # fmt: skip
    run, _ = wp.train_run(config, out / "run", overwrite=True, progress=False)
    # 3. forecast the test trajectories from 20 observed steps
    test = systems.load(out / "duffing_test.npz")
    scores = wp.evaluate_run(run, data=test)
    print(
        f"forecast of {scores['n']} test trajectories after {scores['context']} steps: MSE "
        f"{scores['mse']:.4f} (repeating the last value: {scores['mse_repeat_last']:.4f})"
    )
    # 4. the identified parameters, per trajectory, next to the truth
    table = wp.parameter_table(run, data=out / "duffing_test.npz")
    for name, row in table["parameters"].items():
        value, true = np.asarray(row["value"]), np.asarray(row["true"])
        error = np.median(np.abs(value - true) / np.abs(true))
        print(
            f"{name:>5}: trajectory 0 read {value[0]:.3f} (true {true[0]:.3f}); median "
            f"error over {len(value)} trajectories {100 * error:.0f}%"
        )
    # 5. the parameters read from theta_t over time, against the truth
    fig = plot_run("physics", run, data=out / "duffing_test.npz", forecast=True)
    print(f"figure: {save_figure(fig, out / 'physics.png')}")


if __name__ == "__main__":
    main()
