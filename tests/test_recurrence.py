"""The weight recurrence: parallel form vs sequential scan vs a float64 numpy loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp

T = 256


@pytest.fixture(scope="module")
def model():
    """A tiny WARP whose A is near the identity and B non-zero, so theta moves."""
    model = wp.WARP(
        2, root_width=8, root_depth=1, hyper_width=8, seq_len=T, key=jax.random.PRNGKey(0)
    )
    D = model.theta_size
    ka, kb = jax.random.split(jax.random.PRNGKey(1))
    A = jnp.eye(D) + 0.05 * jax.random.normal(ka, (D, D)) / jnp.sqrt(D)
    B = 0.3 * jax.random.normal(kb, (D, 2))
    return eqx.tree_at(lambda m: (m.A, m.B), model, (A, B))


@pytest.fixture(scope="module")
def xs():
    t = np.linspace(0, 1, T)
    return jnp.asarray(np.stack([np.cos(12 * t) * np.exp(-t), np.sin(7 * t)], axis=1), jnp.float32)


def numpy_states(model, xs):
    """The definition, in float64: theta_0 = phi(x_0), theta_t = A theta_{t-1} + B dx_t."""
    A, B = np.asarray(model.A, np.float64), np.asarray(model.B, np.float64)
    theta = np.asarray(model.initial_state(xs[0]), np.float64)
    x = np.asarray(xs, np.float64)
    out = [theta]
    for t in range(1, len(x)):
        theta = A @ theta + B @ (x[t] - x[t - 1])
        out.append(theta)
    return np.stack(out)


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_modes_match_float64_loop(model, xs, mode):
    reference = numpy_states(model, xs)
    thetas = np.asarray(eqx.filter_jit(lambda m, x: m.weight_trajectory(x, mode))(model, xs))
    assert thetas.shape == (T, model.theta_size)
    scale = np.abs(reference).max()
    # float32 rounding accumulated over 255 steps (and an FFT of length 512)
    np.testing.assert_allclose(thetas, reference, atol=2e-5 * scale, rtol=0)
    assert np.abs(reference[-1] - reference[0]).max() > 0.1 * scale  # theta really moved


def test_parallel_equals_sequential_batched(model, xs):
    batch = jnp.stack([xs, 2.0 * xs[::-1], xs**2])
    par = jax.vmap(lambda x: model.weight_trajectory(x, "parallel"))(batch)
    seq = jax.vmap(lambda x: model.weight_trajectory(x, "sequential"))(batch)
    np.testing.assert_allclose(par, seq, atol=2e-5 * float(jnp.abs(seq).max()), rtol=0)


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_constant_input_gives_powers_of_A(model, xs, mode):
    const = jnp.broadcast_to(xs[3], (40, 2))
    thetas = np.asarray(model.weight_trajectory(const, mode), np.float64)
    A = np.asarray(model.A, np.float64)
    expected = [np.asarray(model.initial_state(const[0]), np.float64)]
    for _ in range(39):
        expected.append(A @ expected[-1])
    np.testing.assert_allclose(thetas, np.stack(expected), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_identity_A_constant_input_weights_never_move(mode):
    model = wp.WARP(2, root_width=8, root_depth=1, hyper_width=8, key=jax.random.PRNGKey(3))
    model = eqx.tree_at(lambda m: m.B, model, jnp.ones_like(model.B))
    const = jnp.ones((30, 2)) * jnp.array([0.3, -1.2])
    thetas = model.weight_trajectory(const, mode)
    np.testing.assert_allclose(thetas, jnp.broadcast_to(thetas[0], thetas.shape), atol=1e-6)


def test_fresh_model_is_identity_and_zero():
    model = wp.WARP(3, key=jax.random.PRNGKey(0))
    assert model.A.shape == (model.theta_size, model.theta_size)
    assert model.B.shape == (model.theta_size, 3)
    np.testing.assert_array_equal(model.A, np.eye(model.theta_size))
    np.testing.assert_array_equal(model.B, 0.0)
    assert model.A.dtype == jnp.float32


def test_unknown_mode_is_rejected(model, xs):
    with pytest.raises(ValueError, match="mode"):
        model.weight_trajectory(xs, "fourier")


@pytest.mark.parametrize("T", [5, 300])
def test_gemm_and_fft_convolutions_match_a_loop(T):
    from warp_phys._recurrence import fft_convolution, toeplitz_convolution

    rng = np.random.default_rng(T)
    kernel = rng.normal(size=(T, 3, 7)).astype(np.float32)
    signal = rng.normal(size=(T, 3)).astype(np.float32)
    expected = np.stack([sum(kernel[t - s].T @ signal[s] for s in range(t + 1)) for t in range(T)])
    scale = np.abs(expected).max()
    for conv in (toeplitz_convolution, fft_convolution):
        np.testing.assert_allclose(conv(kernel, signal), expected, atol=1e-5 * scale, rtol=0)


def test_auto_mode_follows_the_cost_rule(model, xs):
    from warp_phys._recurrence import preferred_mode

    assert preferred_mode(256, 2, 4898) == "parallel"
    assert preferred_mode(256, 2, 746) == "sequential"
    np.testing.assert_allclose(
        model.weight_trajectory(xs, "auto"), model.weight_trajectory(xs, "sequential"), atol=1e-5
    )
