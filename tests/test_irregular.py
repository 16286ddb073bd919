"""Irregular time grids: the time-aware `continuous` transition, rollouts and forecasts at
given time stamps, the `msd_irregular` data set, training and evaluation on it."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import systems
from warp_phys import (
    WARP,
    ObjectiveOptions,
    RunConfig,
    evaluate_run,
    load_model,
    load_run,
    reconstruct,
    reconstruct_run,
    rollout,
    save_model,
    train,
    train_run,
)
from warp_phys.plotting import state_trajectory

T, DT = 12, 0.1


@pytest.fixture(scope="module")
def model():
    """A continuous WARP with random decaying rates and a non-zero B."""
    m = WARP(2, transition="continuous", root_width=8, seq_len=T, time_step=DT,
             key=jax.random.key(0))  # fmt: skip
    m = eqx.tree_at(lambda m: m.B, m, 0.3 * jax.random.normal(jax.random.key(1), m.B.shape))
    rate = -jnp.abs(jax.random.normal(jax.random.key(2), m.transition.rate.shape))
    return eqx.tree_at(lambda m: m.transition.rate, m, rate.at[:5].set(0.0))  # phi's z = 0 branch


@pytest.fixture(scope="module")
def sequence():
    xs = jax.random.normal(jax.random.key(3), (T, 2))
    gaps = jax.random.uniform(jax.random.key(4), (T,), minval=0.2 * DT, maxval=4 * DT)
    return xs, 3.0 + jnp.cumsum(gaps)


def reference_states(model, xs, ts):
    """theta_t = exp(h rate) theta + phi(h rate) B du in float64, one step at a time."""
    rate = np.asarray(model.transition.rate, np.float64)
    B, X = np.asarray(model.B, np.float64), np.asarray(xs, np.float64)
    clock = (np.asarray(ts, np.float64) - float(ts[0])) / DT
    theta = np.asarray(model.initial_state(xs[0]), np.float64)
    states = [theta]
    for t in range(1, len(X)):
        z = (clock[t] - clock[t - 1]) * rate
        gain = np.where(z == 0, 1.0, np.expm1(z) / np.where(z == 0, 1.0, z))
        theta = np.exp(z) * theta + gain * (B @ (X[t] - X[t - 1]))
        states.append(theta)
    return np.stack(states)


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_states_match_a_float64_loop(model, sequence, mode):
    xs, ts = sequence
    states = model.weight_trajectory(xs, mode, ts)
    np.testing.assert_allclose(states, reference_states(model, xs, ts), rtol=1e-5, atol=1e-5)


def test_gradients_agree_across_modes_and_checkpoints_round_trip(model, sequence, tmp_path):
    xs, ts = sequence

    def loss(m, mode):
        return jnp.mean(m(xs, mode, ts) ** 2)

    grads = {mode: eqx.filter_jit(eqx.filter_grad(loss))(model, mode)
             for mode in ("sequential", "parallel")}  # fmt: skip
    rate_grads = [np.asarray(grads[mode].transition.rate) for mode in grads]
    assert np.isfinite(rate_grads[0]).all() and np.abs(rate_grads[0]).max() > 0
    np.testing.assert_allclose(rate_grads[1], rate_grads[0],
                               atol=1e-4 * np.abs(rate_grads[0]).max())  # fmt: skip
    save_model(tmp_path / "m.eqx", model)
    loaded = load_model(tmp_path / "m.eqx")
    assert loaded.config == model.config and loaded.time_step == DT
    np.testing.assert_array_equal(loaded(xs, ts=ts), model(xs, ts=ts))


def test_regular_time_stamps_equal_no_time_stamps(model, sequence):
    xs, _ = sequence
    regular = 7.0 + DT * jnp.arange(T)
    for mode in ("sequential", "parallel"):
        np.testing.assert_allclose(
            model.weight_trajectory(xs, mode, regular), model.weight_trajectory(xs, mode),
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip
    np.testing.assert_allclose(model(xs, ts=regular), model(xs), rtol=1e-5, atol=1e-6)


def test_rollouts_and_forecasts_follow_the_time_stamps(model, sequence):
    xs, ts = sequence
    teacher_forced = model(xs, ts=ts)
    np.testing.assert_allclose(rollout(model, xs, jnp.ones(T, bool), ts=ts), teacher_forced,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    L = 4
    free = rollout(model, xs, jnp.arange(T) < L, ts=ts)
    forecast = reconstruct(model, xs[:L], T - L, ts=ts)
    np.testing.assert_allclose(forecast, free[L - 1 :], rtol=1e-5, atol=1e-6)
    batched = reconstruct(model, jnp.stack([xs[:L], xs[:L]]), T - L, ts=jnp.stack([ts, ts]))
    np.testing.assert_allclose(batched[1], forecast, rtol=1e-6, atol=1e-6)
    thetas, inputs = state_trajectory(model, xs, L, ts)  # the plots' free-running states
    decoded = jax.vmap(model.decode)(thetas[L - 1 : -1], model.clock(ts)[L:], inputs[L - 1 : -1])
    np.testing.assert_allclose(decoded, forecast, rtol=1e-5, atol=1e-6)
    # the times matter: a regular grid forecasts differently
    assert not np.allclose(reconstruct(model, xs[:L], T - L), forecast, atol=1e-3)


def test_time_stamp_errors(model, sequence):
    xs, ts = sequence
    dense = WARP(2, root_width=8, seq_len=T, key=jax.random.key(0))
    with pytest.raises(ValueError, match="time-aware.*transition='dense'"):
        dense(xs, ts=ts)
    with pytest.raises(ValueError, match="strictly increasing"):
        model(xs, ts=ts[::-1])
    with pytest.raises(ValueError, match="ts has 11 time stamps for 12 steps"):
        model(xs, ts=ts[1:])
    with pytest.raises(ValueError, match=r"ts must have shape \(13,\), got \(12,\)"):
        reconstruct(model, xs[:4], T - 3, ts=ts)
    with pytest.raises(ValueError, match="clean convention only"):
        rollout(model, xs, jnp.ones(T, bool), ts=ts, convention="reference")
    with pytest.raises(ValueError, match="time_step applies to transition='continuous'"):
        WARP(2, time_step=0.1, key=jax.random.key(0))


@pytest.fixture(scope="module")
def irregular():
    """A small irregularly sampled MSD set: 24 trajectories of 16 steps."""
    return systems.generate("msd_irregular", 24, n_steps=16, split="train")


def test_irregular_msd_samples_the_ode_at_its_own_times(irregular):
    t = irregular.extras["t"]
    assert t.shape == (24, 16) and irregular.y.shape == (24, 16, 2)
    assert np.all(t[:, 0] == 0) and np.all(np.diff(t, axis=1) > 0) and np.all(t <= 1)
    fine = 1.0 / (4 * 15)  # the grid the times are drawn from
    np.testing.assert_allclose(t / fine, np.round(t / fine), atol=1e-3)
    assert len({tuple(row) for row in t}) > 1  # each trajectory has its own times
    for i in (0, 7):
        p = {k: float(v[i]) for k, v in irregular.params.items()}
        sol = scipy.integrate.solve_ivp(
            lambda _, y, p=p: [y[1], -(p["c"] * y[1] + p["k"] * y[0]) / p["m"]], (0, 1),
            irregular.y0[i], t_eval=t[i].astype(float), rtol=1e-10, atol=1e-12,
        )  # fmt: skip
        np.testing.assert_allclose(irregular.y[i], sol.y.T, atol=1e-4)
    with pytest.raises(ValueError, match="irregular must be 0 or an int >= 2"):
        systems.get_system("msd", irregular=1)
    with pytest.raises(ValueError, match="cannot be sampled irregularly"):
        systems.generate("lotka_volterra_repeat", 2, irregular=2)


def test_training_uses_the_time_stamps_and_plain_models_warn(irregular):
    plain = WARP(2, root_width=8, seq_len=16, key=jax.random.key(0))
    with pytest.warns(UserWarning, match="not time-aware"):
        train(plain, irregular, steps=1, batch_size=4,
              objective=ObjectiveOptions(kind="teacher_forced"),
              key=jax.random.key(1), progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="times .* do not match"):
        train(WARP(2, transition="continuous", root_width=8, seq_len=16, key=jax.random.key(0)),
              irregular.y, times=irregular.extras["t"][:, :8], steps=1,
              key=jax.random.key(1), progress=False)  # fmt: skip


def test_run_on_irregular_data_end_to_end(tmp_path, irregular):
    config = RunConfig(
        transition="continuous", root_width=8, hyper_width=8, steps=6, batch_size=4,
        val_every=3, context=6, val_fraction=0.25, objective="teacher_forced",
    )  # fmt: skip
    run, history = train_run(config, tmp_path / "run", data=irregular, progress=False)
    assert np.isfinite(history["val_mse"]).all()
    loaded = load_run(tmp_path / "run")
    expected = float(np.mean(np.diff(irregular.extras["t"], axis=1)))
    assert loaded.model.time_step == pytest.approx(expected, rel=0.05)
    scored = evaluate_run(loaded, data=irregular)
    assert np.isfinite(scored["mse"])
    t = irregular.extras["t"][:2]
    out = reconstruct_run(loaded, irregular.y[:2], context=6, times=t)
    by_hand = reconstruct(loaded.model, loaded.normalizer.apply(irregular.y[:2, :6]), 10, ts=t)
    np.testing.assert_allclose(out["prediction"], loaded.normalizer.invert(by_hand), rtol=1e-5,
                               atol=1e-5)  # fmt: skip
