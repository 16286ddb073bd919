"""Resuming a run gives the uninterrupted result; early stopping; NaN keeps the last
good checkpoint; metrics.jsonl."""

import dataclasses
import shutil

import equinox as eqx
import jax
import numpy as np
import pytest

import warp_phys as wp
from warp_phys.training.checkpoint import read_header
from warp_phys.training.metrics_log import read_metrics

T = 24


def sines(n, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)[None, :]
    w, phase = rng.uniform(4, 8, (n, 1)), rng.uniform(0, 1, (n, 1))
    return np.stack([np.sin(w * t + phase), np.cos(w * t + phase)], -1).astype(np.float32)


TRAIN, VAL = sines(20, 0), sines(6, 1)  # 20 // 8 = 2 batches per epoch: several epochs
OPTIONS = dict(
    batch_size=8,
    optimizer=wp.OptimizerOptions(name="adabelief", lr=3e-3),
    objective=wp.ObjectiveOptions(forcing_prob=0.5),
    val_data=VAL,
    validation=wp.ValidationOptions(context=6, every=3),
    log_every=1,
    key=jax.random.PRNGKey(3),
    progress=False,
)


def model():
    return wp.WARP(
        2, root_width=4, root_depth=1, hyper_width=4, seq_len=T, key=jax.random.PRNGKey(0)
    )


def leaves(m):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    full_dir, split_dir = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("split")
    full = wp.train(model(), TRAIN, steps=20, checkpoint_dir=full_dir, **OPTIONS)
    first = wp.train(model(), TRAIN, steps=10, checkpoint_dir=split_dir, **OPTIONS)
    second = wp.train(model(), TRAIN, steps=20, checkpoint_dir=split_dir, resume=True, **OPTIONS)
    return full, first, second, full_dir, split_dir


def test_resume_is_identical_to_an_uninterrupted_run(runs):
    (full_model, full_hist), (_, first_hist), (resumed, second_hist), full_dir, split_dir = runs
    assert first_hist["step"] == list(range(1, 11))
    assert second_hist["step"] == list(range(11, 21))
    assert first_hist["loss"] + second_hist["loss"] == full_hist["loss"]  # bit-for-bit
    for a, b in zip(leaves(full_model), leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)  # the best models
    last_full = wp.load_model(full_dir / "last.eqx")
    last_split = wp.load_model(split_dir / "last.eqx")
    for a, b in zip(leaves(last_full), leaves(last_split), strict=True):
        np.testing.assert_array_equal(a, b)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "seq_per_s")}  # noqa: E731
                          for r in rows]  # fmt: skip
    assert strip(read_metrics(full_dir / "metrics.jsonl")) == strip(
        read_metrics(split_dir / "metrics.jsonl")
    )
    header, _ = read_header(full_dir / "last.eqx")
    assert header["metadata"]["step"] == 20 and header["has_train_state"]
    assert header["metadata"]["best_step"] in (3, 6, 9, 12, 15, 18, 20)


def test_resume_with_other_options_is_refused(runs):
    split_dir = runs[4]
    changed = dict(OPTIONS, optimizer=dataclasses.replace(OPTIONS["optimizer"], clip_value=0.5))
    with pytest.raises(ValueError, match="options differ.*clip_value"):
        wp.train(model(), TRAIN, steps=30, checkpoint_dir=split_dir, resume=True, **changed)
    with pytest.raises(ValueError, match="options differ.*data"):
        wp.train(model(), TRAIN[:16], steps=30, checkpoint_dir=split_dir, resume=True, **OPTIONS)


def test_the_learning_rate_may_change_on_resume(runs, tmp_path):
    """A new rate applies from the next step: the first resumed step is that of an
    unchanged resume scaled by the rate (the optimiser's direction comes from the kept
    state and the new gradient)."""
    split_dir = runs[4]
    outcomes = {}
    for lr in (3e-3, 3e-2):
        copy = tmp_path / f"lr{lr}"
        shutil.copytree(split_dir, copy)
        optimizer = dataclasses.replace(OPTIONS["optimizer"], lr=lr)
        options = dict(OPTIONS, optimizer=optimizer)
        _, history = wp.train(model(), TRAIN, steps=21, checkpoint_dir=copy, resume=True,
                              **options)  # fmt: skip
        assert history["step"] == [21]
        outcomes[lr] = leaves(wp.load_model(copy / "last.eqx"))
    before = leaves(wp.load_model(split_dir / "last.eqx"))
    for old, same, faster in zip(before, outcomes[3e-3], outcomes[3e-2], strict=True):
        # AdaBelief's step is (rate x a direction set by the kept state): 10x the rate
        np.testing.assert_allclose(faster - old, 10 * (same - old), rtol=1e-3, atol=1e-6)
    assert any(np.any(a != b) for a, b in zip(outcomes[3e-3], outcomes[3e-2], strict=True))


def test_a_run_from_before_an_option_existed_resumes_at_its_old_value(runs, tmp_path):
    """A last.eqx whose fingerprint lacks `time_reduction` (written before the option)
    was trained with the plain mean: it resumes as such, and refuses another value."""
    from warp_phys.training.checkpoint import load_train_state, save_model

    old = tmp_path / "old"
    shutil.copytree(runs[4], old)
    header, _ = read_header(old / "last.eqx")
    metadata = header["metadata"]
    del metadata["train_options"]["time_reduction"]
    last = wp.load_model(old / "last.eqx")
    chain = wp.make_optimizer(last, OPTIONS["optimizer"])
    _, opt_state = load_train_state(
        old / "last.eqx", chain.init(eqx.filter(last, eqx.is_inexact_array))
    )
    save_model(old / "last.eqx", last, metadata=metadata, train_state=opt_state)
    _, history = wp.train(model(), TRAIN, steps=21, checkpoint_dir=old, resume=True, **OPTIONS)
    assert history["step"] == [21]
    log_mean = dict(
        OPTIONS, objective=dataclasses.replace(OPTIONS["objective"], time_reduction="log_mean")
    )
    with pytest.raises(ValueError, match="options differ.*time_reduction"):
        wp.train(model(), TRAIN, steps=22, checkpoint_dir=old, resume=True, **log_mean)


def test_resume_of_a_finished_run_is_a_clear_error(runs):
    split_dir = runs[4]
    with pytest.raises(ValueError, match="already finished at step 20.*raise steps"):
        wp.train(model(), TRAIN, steps=20, checkpoint_dir=split_dir, resume=True, **OPTIONS)


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        wp.train(model(), TRAIN, steps=5, checkpoint_dir=tmp_path, resume=True, **OPTIONS)


def test_early_stopping(runs, tmp_path):
    full_history = runs[0][1]
    best, expected = np.inf, None  # the first validation that does not improve
    for step, value in zip(full_history["val_step"], full_history["val_mse"], strict=True):
        if value >= best:
            expected = step
            break
        best = value
    assert expected is not None, "validation always improved: the test would be vacuous"
    patient = dict(OPTIONS, validation=dataclasses.replace(OPTIONS["validation"], patience=1))
    _, history = wp.train(model(), TRAIN, steps=20, checkpoint_dir=tmp_path, **patient)
    assert history["stopped"] == "early_stopping" and history["step"][-1] == expected
    header, _ = read_header(tmp_path / "last.eqx")
    assert header["metadata"]["stopped"] == "early_stopping"
    assert header["metadata"]["step"] == expected


def test_non_finite_loss_keeps_the_last_good_checkpoint(tmp_path):
    start = model()
    start = eqx.tree_at(lambda m: m.A, start, 50.0 * start.A)  # explodes along the sequence
    with pytest.raises(FloatingPointError, match="step 1.*last good state"):
        wp.train(start, TRAIN * 1e30, steps=3, checkpoint_dir=tmp_path, max_non_finite=1,
                 **OPTIONS)  # fmt: skip
    header, _ = read_header(tmp_path / "last.eqx")
    assert header["metadata"]["step"] == 0 and header["metadata"]["stopped"] == "non-finite"
    for a, b in zip(leaves(start), leaves(wp.load_model(tmp_path / "last.eqx")), strict=True):
        np.testing.assert_array_equal(a, b)
