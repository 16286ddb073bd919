"""WARP's feature drive (`drive_features`): every path that drives theta (the sequential
and parallel states of each transition kind, the scan and kernel rollouts, their
gradients) against a plain Python loop of theta_t = A theta_{t-1} + B e(x_{t-1}, x_t) /
(T - 1); the state now depends on the middle of the sequence; checkpoints; the default
(the feature drive for a WARP run; older run folders load); one-line errors.

A is contractive (random, spectral radius < 1) and B random, so every term matters.
"""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp
from warp_phys._kernel_rollout import kernel_rollout
from warp_phys.training.config import stored_config
from warp_phys.training.models import DEFAULT_DRIVE_FEATURES, build_model

T = 12
D_FEATURES = 5


def _perturbed(model, key):
    """`model` with a random contractive A (where dense or diagonal) and a random B."""
    k_a, k_b = jax.random.split(key)
    D = model.theta_size
    if model.transition.kind == "dense":
        A = 0.9 * jnp.eye(D) + 0.1 * jax.random.normal(k_a, (D, D)) / jnp.sqrt(D)
        model = eqx.tree_at(lambda m: m.transition.matrix, model, A)
    elif model.transition.kind == "diagonal":
        model = eqx.tree_at(
            lambda m: m.transition.a, model, jax.random.uniform(k_a, (D,), minval=0.8, maxval=1)
        )
    return eqx.tree_at(lambda m: m.B, model, 0.5 * jax.random.normal(k_b, model.B.shape))


def _model(transition="dense", **options):
    model = wp.WARP(
        2,
        decoder="mlp",
        root_width=4,
        root_depth=1,
        seq_len=T,
        transition=transition,
        drive_features=D_FEATURES,
        key=jax.random.PRNGKey(0),
        **options,
    )
    return _perturbed(model, jax.random.PRNGKey(1))


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def xs():
    return jax.random.normal(jax.random.PRNGKey(2), (T, 2))


def loop_states(model, xs):
    """The recurrence step by step in Python, from the model's parts."""
    A = np.asarray(model.transition.as_matrix(), np.float64)
    B = np.asarray(model.B, np.float64)
    theta = np.asarray(model.hypernetwork(xs[0]), np.float64)
    states = [theta]
    for t in range(1, xs.shape[0]):
        e = np.asarray(model.drive.mlp(jnp.concatenate([xs[t - 1], xs[t]])), np.float64)
        theta = A @ theta + B @ e / (T - 1)
        states.append(theta)
    return np.stack(states)


@pytest.mark.parametrize("transition", ["dense", "diagonal", "lowrank", "block"])
@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_states_match_python_loop(transition, mode, model, xs):
    m = model if transition == "dense" else _model(transition)
    expected = loop_states(m, xs)
    np.testing.assert_allclose(m.weight_trajectory(xs, mode), expected, atol=2e-5, rtol=1e-5)


def test_advance_is_one_step_of_the_loop(model, xs):
    theta = model.initial_state(xs[0])
    for t in range(1, T):
        theta = model.advance(theta, xs[t], xs[t - 1])
    np.testing.assert_allclose(theta, loop_states(model, xs)[-1], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("convention", ["clean", "reference"])
def test_kernel_rollout_matches_scan_rollout(convention, model, xs):
    observed = jnp.arange(T) < 5
    scan = wp.rollout(model, xs, observed, convention=convention)
    kernel = kernel_rollout(model, xs, observed, convention=convention, stages=2)
    np.testing.assert_allclose(kernel, scan, atol=2e-5, rtol=1e-5)


def test_kernel_rollout_gradients_match_scan(model, xs):
    observed = jnp.arange(T) < 5

    def loss(m, rollout):
        return jnp.mean(rollout(m, xs, observed) ** 2)

    g_scan = eqx.filter_grad(loss)(model, wp.rollout)
    g_kernel = eqx.filter_grad(loss)(model, kernel_rollout)
    drive_scan, drive_kernel = (jax.tree.leaves(g.drive) for g in (g_scan, g_kernel))
    assert any(np.abs(g).max() > 0 for g in drive_scan)  # the drive's MLP is trained
    for a, b in zip(drive_scan + [g_scan.B], drive_kernel + [g_kernel.B], strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4 * float(np.abs(a).max()) + 1e-7)


def test_fully_observed_rollout_is_teacher_forcing(model, xs):
    full = wp.rollout(model, xs, jnp.ones(T, bool))
    np.testing.assert_allclose(model(xs, "sequential"), full, atol=2e-5, rtol=1e-5)


def test_middle_of_the_sequence_reaches_the_last_state(xs):
    """With A = I the difference drive telescopes to B (x_T - x_0); the feature drive
    does not."""
    changed = xs.at[T // 2].add(1.0)
    for features in (0, D_FEATURES):
        m = wp.WARP(
            2,
            root_width=4,
            root_depth=1,
            seq_len=T,
            drive_features=features,
            key=jax.random.PRNGKey(0),
        )
        m = eqx.tree_at(lambda m: m.B, m, jax.random.normal(jax.random.PRNGKey(3), m.B.shape))
        gap = np.abs(m.encode(changed) - m.encode(xs)).max()
        assert (gap > 1e-3) if features else (gap < 1e-5)


def test_save_load_round_trip(model, xs, tmp_path):
    path = wp.save_model(tmp_path / "drive.eqx", model)
    loaded = wp.load_model(path)
    assert loaded.config == model.config and loaded.config["drive_features"] == D_FEATURES
    np.testing.assert_array_equal(loaded.encode(xs), model.encode(xs))


def test_default_model_is_unchanged():
    m = wp.WARP(2, key=jax.random.PRNGKey(0))
    assert m.drive is None and m.B.shape == (m.theta_size, 2)
    assert set(m.config) == {
        "data_size",
        "decoder",
        "decoder_options",
        "root_width",
        "root_depth",
        "data_scale",
        "data_shift",
        "hyper_width",
        "hyper_depth",
        "seq_len",
    }
    same = wp.WARP(2, drive_features=0, key=jax.random.PRNGKey(0))
    assert same.config_json == m.config_json


def test_scale_free_drive_sees_the_direction_of_each_step_pair(xs):
    """`drive_scale_free`: e reads the pair (x_{t-1}, x_t) minus the physical zero (data
    units), divided by its norm (numpy reference), so a trajectory scaled about that zero
    drives theta alike; every recurrence mode agrees; the config round-trips."""
    scale, shift = [2.0, 0.5], [0.3, -1.0]
    m = _model(drive_scale_free=True, data_scale=scale, data_shift=shift)
    origin = -np.asarray(shift) / np.asarray(scale)
    pair = np.concatenate([xs[0], xs[1]]) - np.tile(origin, 2)
    expected = m.drive.mlp(jnp.asarray(pair / np.linalg.norm(pair), jnp.float32)) / (T - 1)
    np.testing.assert_allclose(m.drive(xs[1], xs[0]), expected, rtol=1e-5, atol=1e-7)
    louder = jnp.asarray(origin + 3.7 * (np.asarray(xs) - origin), jnp.float32)
    np.testing.assert_allclose(
        m.drive.pseudo_inputs(louder), m.drive.pseudo_inputs(xs), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        m.weight_trajectory(xs, "parallel"), m.weight_trajectory(xs, "sequential"), atol=2e-5
    )
    assert m.config["drive_scale_free"] is True
    assert wp.WARP(**m.config, key=jax.random.PRNGKey(0)).drive.origin == m.drive.origin
    with pytest.raises(ValueError, match="needs the feature drive"):
        wp.WARP(2, drive_scale_free=True, key=jax.random.PRNGKey(0))
    built = build_model(wp.RunConfig(drive_scale_free=True), 2, T, key=jax.random.PRNGKey(0))
    assert built.drive.origin == (0.0, 0.0)  # raw data: the zero is the data's


def test_run_config_builds_the_drive():
    config = wp.RunConfig(model="warp", drive_features=3)
    m = build_model(config, 2, T, key=jax.random.PRNGKey(0))
    assert m.B.shape[1] == 3 and m.config["drive_features"] == 3
    difference = wp.RunConfig(drive_features=0)
    assert build_model(difference, 2, T, key=jax.random.PRNGKey(0)).drive is None


def test_a_warp_run_takes_the_feature_drive_by_default():
    def build(time_step=None, **options):
        config = wp.RunConfig(**options)
        return build_model(config, 2, T, key=jax.random.PRNGKey(0), time_step=time_step)

    for decoder in ("damped_oscillator", "mlp"):
        m = build(decoder=decoder)
        assert m.B.shape[1] == DEFAULT_DRIVE_FEATURES and m.drive is not None
    assert build(decoder="damped_oscillator", drive_features=0).drive is None
    assert build(transition="continuous", time_step=0.1).drive is None  # needs a regular grid
    gru, matched = build(model="gru", match_warp=True), build(drive_features=0)
    size = wp.count_parameters(matched)  # the baselines match the paper's WARP
    assert abs(wp.count_parameters(gru) - size) < 0.02 * size
    assert wp.RunConfig(decoder="sinusoid").drive_features is None  # auto until a run resolves it


SINE_RUN = dict(system="sine", decoder="sinusoid", n_train=4, n_val=2, n_test=2, hyper_width=2,
                context=4, steps=1, val_every=1, batch_size=4, normalize=False)  # fmt: skip


def test_a_run_stores_the_resolved_drive_and_older_runs_still_load(tmp_path):
    """config.json records the number the automatic drive resolved to; a run folder written
    before the option existed (no `drive_features` key) used the difference drive."""
    run, _ = wp.train_run(wp.RunConfig(**SINE_RUN), tmp_path / "auto", progress=False)
    stored = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert stored["drive_features"] == DEFAULT_DRIVE_FEATURES == run.config.drive_features
    legacy = tmp_path / "legacy"
    wp.train_run(wp.RunConfig(**SINE_RUN, drive_features=0), legacy, progress=False)
    stored = json.loads((legacy / "config.json").read_text())
    del stored["drive_features"]
    (legacy / "config.json").write_text(json.dumps(stored))
    loaded = wp.load_run(legacy)
    assert loaded.model.drive is None and loaded.config.drive_features == 0
    assert stored_config(stored) == stored_config(loaded.config) != stored_config(run.config)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(drive_features=-1), "drive_features must be >= 0"),
        (dict(drive_features=2.5), "drive_features must be an int >= 0"),
        (dict(drive_features=True), "drive_features must be an int >= 0"),
        (dict(drive_features=4, transition="continuous"), "applies to regular grids only"),
    ],
)
def test_bad_values_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message) as info:
        wp.WARP(2, key=jax.random.PRNGKey(0), **options)
    assert "\n" not in str(info.value)


def test_run_config_rejects_negative_features():
    with pytest.raises(ValueError, match="option drive_features must be >= 0"):
        wp.RunConfig(drive_features=-2)
