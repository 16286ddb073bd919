"""Your own data, without writing model code: a CSV of noisy pendulum recordings, trained
on and forecast with the `warp-phys` command line.

1. Writes `pendulum.csv` (48 recordings) and `pendulum_new.csv` (8 unseen ones) as long
   tables `trajectory,time,theta,omega` (angle in rad, angular velocity in rad/s, 64
   samples 0.063 s apart), simulated with `systems` and blurred with sensor noise. Swap in
   your own recordings in the same layout.
2. `warp-phys train --data pendulum.csv ...`: a fifth of the recordings is held out for
   validation (seeded), the channels are standardised with the training part's statistics.
3. `warp-phys reconstruct --input pendulum_new.csv --context 16`: forecasts the last 48
   samples of each new recording from its first 16 and writes them as a CSV in the same
   layout, time column included.

Takes a minute or two on a laptop CPU (training stops after 200 steps or 60 s, so on a
busy machine the numbers vary; a few hundred more steps improve the forecast):

    python examples/own_data.py [--out runs/own_data] [--steps 200]
"""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

import systems

STEPS, CONTEXT = 64, 16


def write_recordings(path: Path, n: int, split: str, seed: int) -> None:
    """`n` simulated pendulum recordings with sensor noise, as a long CSV at `path`."""
    clean = systems.generate("pendulum", n, split=split, seed=seed, progress=False)
    every = (clean.y.shape[1] - 1) // (STEPS - 1)  # 256 steps on [0, 4] s -> 64 samples
    y = clean.y[:, ::every][:, :STEPS]
    times = np.round(clean.t[::every][:STEPS].astype(np.float64), 6)  # s, 0.063 s apart
    noise = np.random.default_rng(seed).normal(size=y.shape) * np.array([0.01, 0.05])
    systems.save_csv(path, y + noise, channels=["theta", "omega"],
                     times=np.broadcast_to(times, y.shape[:2]),
                     ids=[f"{split}-{i:02d}" for i in range(n)])  # fmt: skip


def warp_phys(*argv) -> None:
    """Run the `warp-phys` command line (as `python -m warp_phys.cli`, the same thing)."""
    command = [sys.executable, "-m", "warp_phys.cli", *map(str, argv)]
    print("$ warp-phys " + " ".join(map(str, argv)), flush=True)
    subprocess.run(command, check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/own_data", help="folder for the CSVs and run")
    parser.add_argument("--steps", type=int, default=200, help="training steps (60 s at most)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_recordings(out / "pendulum.csv", 48, "train", seed=0)
    write_recordings(out / "pendulum_new.csv", 8, "test", seed=0)
    print(f"wrote {out / 'pendulum.csv'}:")
    print("".join((out / "pendulum.csv").read_text().splitlines(keepends=True)[:3]) + "...")

    warp_phys("data", "--from", out / "pendulum.csv", "--out", out / "pendulum.npz")
    warp_phys("train", "--data", out / "pendulum.csv", "--context", CONTEXT,
              "--steps", args.steps, "--val-every", 50, "--batch-size", 16, "--lr", 3e-3,
              "--root-width", 16, "--hyper-width", 16, "--max-seconds", 60,
              "--out", out / "run", "--overwrite", "--quiet")  # fmt: skip
    warp_phys("reconstruct", "--run", out / "run", "--input", out / "pendulum_new.csv",
              "--context", CONTEXT)  # fmt: skip

    forecast = systems.load(out / "run" / "reconstruction.csv")
    new = systems.load(out / "pendulum_new.csv")
    truth, last = new.y[:, CONTEXT:], new.y[:, CONTEXT - 1 : CONTEXT]
    print(f"forecast of {len(new)} new recordings, t = {forecast.t[0]:g}..{forecast.t[-1]:g} s:")
    print(f"  WARP MSE             {np.mean((forecast.y - truth) ** 2):.4f}")
    print(f"  repeat-last-value    {np.mean((last - truth) ** 2):.4f}")


if __name__ == "__main__":
    main()
