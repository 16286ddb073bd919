"""A user's prior on a system the package does not ship (a Duffing oscillator), end to
end from the command line in fresh processes, with its module only on PYTHONPATH:
train -> resume -> reconstruct -> evaluate --input -> params -> plot. And the example
that walks through the same in Python.

Each process pays the imports and compiles its own programs (about 20 s of CPU a
command), so `train` runs alone in one process and the five commands after it run one
after another in a second one through `warp_phys.cli.main`, the console script's entry
point: the second process still knows the prior only by its import path in the run
folder and PYTHONPATH, and each command's exit status and output are checked on their
own. The two processes share a JAX compilation cache in a fresh temporary folder, so the
second loads the training step the first compiled instead of compiling it again.
Measured CPU time (one core, a shared one): 130 -> 70-78 s."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# runs `warp_phys.cli.main` on each argv of a JSON list (argv[1]) until one fails, and
# prints [[exit status, its stdout], ...] as JSON on the last line
CHAIN = """
import contextlib, io, json, sys
from warp_phys.cli import main
done = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        status = main(argv)
    done.append([status, out.getvalue()])
    if status:
        break
print(json.dumps(done))
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """This process's environment with the prior's folder (and the checkout) as the only
    PYTHONPATH, so a new process finds the prior only through it, and a compilation cache
    of this module's own."""
    cache = tmp_path_factory.mktemp("jax_cache")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLES), str(ROOT)]),
                JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # fmt: skip


def warp_phys(*argv, cwd, env):
    """`warp-phys ARGV` in a new process; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "warp_phys.cli", *map(str, argv)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def warp_phys_chain(*commands, cwd, env):
    """Several `warp-phys` commands, one after another, in one new process; returns the
    stdout of each."""
    argvs = [[str(a) for a in argv] for argv in commands]
    done = subprocess.run(
        [sys.executable, "-c", CHAIN, json.dumps(argvs)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for argv, (status, _) in zip(argvs, results, strict=False):
        assert status == 0, f"warp-phys {' '.join(argv)}: exit {status}: {done.stderr}"
    assert len(results) == len(argvs)
    return [out for _, out in results]


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


def test_a_user_prior_end_to_end_from_the_command_line(duffing_files, env):
    cwd = duffing_files
    tiny = ["--context", 8, "--hyper-width", 4, "--batch-size", 4,
            "--val-every", 2, "--quiet"]  # fmt: skip
    out = warp_phys("train", "--data", "train.npz", "--decoder", "duffing_prior:duffing",
                    "--steps", 2, *tiny, "--out", "run", cwd=cwd, env=env)  # fmt: skip
    assert "(normalised units)" in out  # as in the README: the prior maps them back itself
    config = json.loads((cwd / "run/config.json").read_text())
    assert config["decoder"] == "duffing_prior:duffing"
    # a fresh process rebuilds the model by importing the prior again
    resumed, reconstructed, evaluated, params, plotted = warp_phys_chain(
        ["train", "--out", "run", "--resume", "--steps", 4, "--quiet"],
        ["reconstruct", "--run", "run", "--input", "test.npz", "--out", "f.npz"],
        ["evaluate", "--run", "run", "--input", "test.npz"],
        ["params", "--run", "run", "--input", "test.npz", "--out", "p.json"],
        ["plot", "physics", "--run", "run", "--data", "test.npz", "--out", "p.png"],
        cwd=cwd, env=env,
    )  # fmt: skip
    assert "step 4" in resumed
    assert "reconstructed 3 trajectories of test.npz" in reconstructed
    with np.load(cwd / "f.npz") as f:
        assert f["prediction"].shape == (3, 16, 2)
    scores = json.loads((cwd / "run/eval_test.json").read_text())
    assert scores["n"] == 3 and scores["input"] == "test.npz" and np.isfinite(scores["mse"])
    assert "json: run/eval_test.json" in evaluated
    assert "alpha: median" in params
    table = json.loads((cwd / "p.json").read_text())
    assert list(table["parameters"]) == ["alpha", "beta", "delta"]  # the prior's, nothing else
    with np.load(cwd / "test.npz") as f:
        np.testing.assert_allclose(table["parameters"]["beta"]["true"], f["params/beta"])
    assert all(v > 0 for row in table["parameters"].values() for v in row["value"])  # softplus
    assert "physics: p.png" in plotted
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
