"""A user's prior on a system the package does not ship (a Duffing oscillator), end to
end from the command line in fresh processes, with its module only on PYTHONPATH:
train -> resume -> reconstruct -> evaluate --input -> params -> plot. And the example
that walks through the same in Python."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def warp_phys(*argv, cwd):
    """`warp-phys ARGV` in a new process that finds the prior only through PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLES), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, "-m", "warp_phys.cli", *map(str, argv)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def duffing_files(tmp_path_factory):
    sys.path.insert(0, str(EXAMPLES))
    try:
        from duffing_prior import simulate
    finally:
        sys.path.remove(str(EXAMPLES))
    folder = tmp_path_factory.mktemp("duffing")
    np.savez(folder / "train.npz", **simulate(12, 24, seed=0))
    np.savez(folder / "test.npz", **simulate(3, 24, seed=1))
    return folder


def test_a_user_prior_end_to_end_from_the_command_line(duffing_files):
    cwd = duffing_files
    tiny = ["--context", 8, "--hyper-width", 4, "--batch-size", 4,
            "--val-every", 2, "--quiet"]  # fmt: skip
    out = warp_phys("train", "--data", "train.npz", "--decoder", "duffing_prior:duffing",
                    "--steps", 2, *tiny, "--out", "run", cwd=cwd)  # fmt: skip
    assert "(normalised units)" in out  # as in the README: the prior maps them back itself
    config = json.loads((cwd / "run/config.json").read_text())
    assert config["decoder"] == "duffing_prior:duffing"
    # a fresh process rebuilds the model by importing the prior again
    assert "step 4" in warp_phys("train", "--out", "run", "--resume", "--steps", 4, "--quiet",
                                 cwd=cwd)  # fmt: skip
    out = warp_phys("reconstruct", "--run", "run", "--input", "test.npz", "--out", "f.npz", cwd=cwd)
    with np.load(cwd / "f.npz") as f:
        assert f["prediction"].shape == (3, 16, 2)
    out = warp_phys("evaluate", "--run", "run", "--input", "test.npz", cwd=cwd)
    scores = json.loads((cwd / "run/eval_test.json").read_text())
    assert scores["n"] == 3 and scores["input"] == "test.npz" and np.isfinite(scores["mse"])
    out = warp_phys("params", "--run", "run", "--input", "test.npz", "--out", "p.json", cwd=cwd)
    assert "alpha: median" in out
    table = json.loads((cwd / "p.json").read_text())
    assert list(table["parameters"]) == ["alpha", "beta", "delta"]  # the prior's, nothing else
    with np.load(cwd / "test.npz") as f:
        np.testing.assert_allclose(table["parameters"]["beta"]["true"], f["params/beta"])
    assert all(v > 0 for row in table["parameters"].values() for v in row["value"])  # softplus
    out = warp_phys("plot", "physics", "--run", "run", "--data", "test.npz", "--out", "p.png",
                    cwd=cwd)  # fmt: skip
    assert (cwd / "p.png").stat().st_size > 0


def test_the_custom_prior_example_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "custom_prior.py"), "--steps", "2", "--n", "8",
         "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "median error over 32 trajectories" in done.stdout
    assert (tmp_path / "physics.png").stat().st_size > 0
