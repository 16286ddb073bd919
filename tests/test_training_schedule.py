"""The learning-rate schedule: sized in steps, or in wall-clock time when a run has a
time budget and no step count; a time-sized run ends at its low rate inside the
budget and resumes on the same clock; the defaults of `warp-phys train`."""

import jax
import numpy as np
import optax
import pytest

import warp_phys as wp
from warp_phys import cli
from warp_phys._train_flags import config_from_args
from warp_phys.training._setup import DEFAULT_STEPS, run_length
from warp_phys.training.checkpoint import read_header
from warp_phys.training.config import automatic_options
from warp_phys.training.metrics_log import read_metrics
from warp_phys.training.optim import COSINE_FLOOR, schedule_factor

T = 16
COSINE = wp.OptimizerOptions(lr=1e-2, schedule="cosine")


def sines(n, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)[None, :]
    w = rng.uniform(4, 8, (n, 1))
    return np.stack([np.sin(w * t), np.cos(w * t)], -1).astype(np.float32)


DATA = sines(16, 0)


def model():
    return wp.WARP(2, root_width=4, root_depth=1, hyper_width=4, seq_len=T,
                   key=jax.random.PRNGKey(0))  # fmt: skip


def fit(folder, **options):
    """A run of one step per call (one compilation shared by every test here)."""
    options = dict(dict(batch_size=4, optimizer=COSINE, steps_per_call=1, log_every=1), **options)
    return wp.train(model(), DATA, checkpoint_dir=folder, key=jax.random.PRNGKey(1),
                    progress=False, **options)  # fmt: skip


def test_cosine_factor_is_optax_cosine_and_warms_up():
    progress = np.linspace(0, 1, 11)
    expected = optax.cosine_decay_schedule(1.0, decay_steps=10, alpha=COSINE_FLOOR)(np.arange(11))
    np.testing.assert_allclose(schedule_factor(COSINE, progress), expected, rtol=1e-6)
    warm = wp.OptimizerOptions(schedule="cosine", warmup=0.2)
    rise = schedule_factor(warm, np.array([0.0, 0.1, 0.2]))
    np.testing.assert_allclose(rise, [0.01, 0.505, 1.0], rtol=1e-5)
    assert float(schedule_factor(warm, 1.0)) == pytest.approx(COSINE_FLOOR)
    assert float(schedule_factor(wp.OptimizerOptions(), 0.7)) == 1.0  # constant


def test_make_optimizer_cosine_matches_train(tmp_path):
    """`make_optimizer`'s schedule is the factor `train` applies by step."""
    chain = wp.make_optimizer(model(), COSINE, steps=8)
    state = chain.init(np.zeros(3, np.float32))
    sizes = []
    for _ in range(8):
        update, state = chain.update(np.ones(3, np.float32), state)
        sizes.append(float(-update[0]))
    factors = [float(schedule_factor(COSINE, (s - 1) / 8)) for s in range(1, 9)]
    np.testing.assert_allclose(sizes, np.multiply(factors, 1e-2), rtol=1e-4)
    fit(tmp_path, steps=8)
    logged = [row["lr"] for row in read_metrics(tmp_path / "metrics.jsonl")]
    np.testing.assert_allclose(logged, np.multiply(factors, 1e-2), rtol=1e-6)


@pytest.fixture(scope="module")
def timed_run(tmp_path_factory):
    """A run on a 3 s budget and no step count (compiled beforehand, so the budget is
    spent on steps), then resumed on a 5 s budget."""
    fit(None, steps=2)
    folder = tmp_path_factory.mktemp("timed")
    first = fit(folder, max_seconds=3.0)
    rows = read_metrics(folder / "metrics.jsonl")
    seconds = read_header(folder / "last.eqx")[0]["metadata"]["seconds"]
    second = fit(folder, max_seconds=5.0, resume=True)
    return first, rows, seconds, second, read_metrics(folder / "metrics.jsonl"), folder


def test_a_time_budget_without_steps_trains_for_that_time(timed_run):
    (_, history), rows, seconds, *_ = timed_run
    assert history["stopped"] == "time" and 3.0 <= seconds == history["seconds"][-1]
    assert len(history["step"]) > 20  # many steps, not the default count nor one call
    lrs = np.array([row["lr"] for row in rows])
    assert lrs[0] == pytest.approx(1e-2, rel=1e-6)  # progress 0: the full rate
    assert np.all(np.diff(lrs) <= 0) and lrs[-1] < 0.1 * lrs[0]  # decays inside the budget


def test_a_timed_run_resumes_on_its_clock(timed_run):
    (_, first), _, seconds, (_, second), rows, folder = timed_run
    assert second["step"][0] == first["step"][-1] + 1 and second["stopped"] == "time"
    assert second["seconds"][-1] >= 5.0 > seconds
    resumed = next(row for row in rows if row["step"] == second["step"][0])
    expected = 1e-2 * float(schedule_factor(COSINE, seconds / 5.0))
    assert resumed["lr"] == pytest.approx(expected, rel=1e-6)  # the schedule goes on
    with pytest.raises(ValueError, match="already trained .* raise max_seconds"):
        fit(folder, max_seconds=5.0, resume=True)


def test_cli_defaults_train_for_the_time_given():
    args = cli.build_parser().parse_args(
        ["train", "--system", "msd", "--decoder", "damped_oscillator", "--max-seconds", "900",
         "--out", "x"]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.steps is None and config.max_seconds == 900.0
    assert (config.optimizer, config.lr, config.clip, config.clip_value) == (
        "adam", 3e-3, "global_norm", 1.0)  # fmt: skip
    assert config.schedule == "cosine" and config.batch_size == 32 and config.n_train == 20480
    assert (config.root_width, config.root_depth, config.context) == (8, 2, 100)
    # a physical prior holds its state and trains the forecast it is scored on
    auto = automatic_options(config)
    assert (auto["free_run"], auto["forcing_prob"], auto["train_context"]) == ("hold", 0.0, 100)


def test_the_length_of_a_run():
    assert run_length(None, None) == DEFAULT_STEPS == 5000  # neither: the default count
    assert run_length(None, 60.0) is None  # the time budget alone: as many as fit
    assert run_length(7, 60.0) == 7  # steps: step-sized, the budget a cap
