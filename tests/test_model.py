"""WARP predictions, autoregressive rollouts and reconstruction."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp

T = 48


@pytest.fixture(scope="module")
def model():
    model = wp.WARP(
        2, root_width=8, root_depth=1, hyper_width=8, seq_len=T, key=jax.random.PRNGKey(0)
    )
    D = model.theta_size
    ka, kb = jax.random.split(jax.random.PRNGKey(7))
    A = 0.97 * jnp.eye(D) + 0.03 * jax.random.normal(ka, (D, D)) / jnp.sqrt(D)
    return eqx.tree_at(lambda m: (m.A, m.B), model, (A, 0.2 * jax.random.normal(kb, (D, 2))))


@pytest.fixture(scope="module")
def xs():
    t = np.linspace(0, 1, T)
    return jnp.asarray(np.stack([np.cos(9 * t), -np.sin(9 * t)], axis=1), jnp.float32)


def loop_rollout(model, xs, observed):
    """Plain Python loop of the clean convention, one step at a time."""
    theta = model.initial_state(xs[0])
    u_prev = xs[0]
    preds = [model.decode(theta, 1, xs[0])]
    for t in range(1, len(xs) - 1):
        u = xs[t] if observed[t] else preds[-1]
        theta = model.A @ theta + model.B @ (u - u_prev)
        preds.append(model.decode(theta, t + 1, u))
        u_prev = u
    return jnp.stack(preds)


def test_teacher_forced_prediction_shapes_and_modes_agree(model, xs):
    par, seq = model(xs, "parallel"), model(xs, "sequential")
    assert par.shape == (T - 1, 2)
    np.testing.assert_allclose(par, seq, atol=1e-4)


def test_rollout_matches_python_loop(model, xs):
    observed = np.random.default_rng(0).random(T) < 0.3
    observed[0] = True
    expected = loop_rollout(model, xs, observed)
    got = jax.jit(wp.rollout)(model, xs, jnp.asarray(observed))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def loop_states(model, xs, context):
    """The free-running walk the plots drew with their own scan: theta_t for every
    t < T, observed for t < L, then fed the mean prediction of x_t."""
    theta, u_prev = model.initial_state(xs[0]), xs[0]
    thetas, inputs = [theta], [xs[0]]
    for t in range(1, len(xs)):
        u = xs[t] if t < context else model.decode(theta, t, u_prev)
        theta = model.A @ theta + model.B @ (u - u_prev)
        thetas.append(theta)
        inputs.append(u)
        u_prev = u
    return jnp.stack(thetas), jnp.stack(inputs)


def test_rollout_returns_the_states_the_plots_walk(model, xs):
    from warp_phys.plotting import state_trajectory

    observed = jnp.arange(T) < 7
    preds, thetas, inputs = wp.rollout(model, xs, observed, return_states=True)
    np.testing.assert_array_equal(preds, wp.rollout(model, xs, observed))
    want_thetas, want_inputs = loop_states(model, xs, 7)
    assert thetas.shape == (T - 1, model.theta_size) and inputs.shape == (T - 1, 2)
    np.testing.assert_allclose(thetas, want_thetas[:-1], atol=1e-5)
    np.testing.assert_allclose(inputs, want_inputs[:-1], atol=1e-5)
    got_thetas, got_inputs = state_trajectory(model, xs, 7)
    assert got_thetas.shape == (T, model.theta_size)
    np.testing.assert_allclose(got_thetas, want_thetas, atol=1e-5)
    np.testing.assert_allclose(got_inputs, want_inputs, atol=1e-5)
    # the reference convention's states: one per step, the last consumed v_t
    outs, states, used = wp.rollout(model, xs, observed, convention="reference",
                                    return_states=True)
    assert outs.shape == (T, 2) and states.shape == (T, model.theta_size)
    np.testing.assert_array_equal(used[:7], xs[:7])


def test_fully_observed_rollout_is_teacher_forcing(model, xs):
    got = wp.rollout(model, xs, jnp.ones(T, bool))
    np.testing.assert_allclose(got, model(xs, "sequential"), atol=1e-6)


@pytest.mark.parametrize("L", [1, 5, T - 10])
def test_reconstruct_matches_python_loop(model, xs, L):
    horizon = T - L
    observed = np.arange(T) < L
    expected = loop_rollout(model, xs, observed)[L - 1 :]
    got = wp.reconstruct(model, xs[:L], horizon)
    assert got.shape == (horizon, 2)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_reconstruct_never_reads_the_future(model, xs):
    corrupted = xs.at[10:].set(1e6)
    np.testing.assert_array_equal(
        wp.reconstruct(model, xs[:10], 7), wp.reconstruct(model, corrupted[:10], 7)
    )


def test_reconstruct_horizon_zero(model, xs):
    out = wp.reconstruct(model, xs[:5], 0)
    assert out.shape == (0, 2)


def test_reconstruct_under_jit_and_vmap(model, xs):
    contexts = jnp.stack([xs[:6], 0.5 * xs[:6], -xs[:6]])
    jitted = eqx.filter_jit(jax.vmap(lambda c: wp.reconstruct(model, c, 9)))(contexts)
    batched = wp.reconstruct(model, contexts, 9)
    single = jnp.stack([wp.reconstruct(model, c, 9) for c in contexts])
    assert jitted.shape == (3, 9, 2)
    np.testing.assert_allclose(jitted, single, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-5)


@pytest.mark.parametrize(
    "context, horizon, message",
    [
        (np.zeros((5, 3)), 4, r"shape \(T, 2\)"),
        (np.zeros((5,)), 4, r"shape \(T, 2\)"),
        (np.zeros((0, 2)), 4, "at least one"),
        (np.zeros((5, 2)), -1, "horizon"),
        (np.zeros((5, 2)), 2.5, "horizon"),
    ],
)
def test_reconstruct_rejects_bad_input(model, context, horizon, message):
    with pytest.raises(ValueError, match=message):
        wp.reconstruct(model, context, horizon)


def test_gradients_reach_A_B_and_phi(xs):
    model = wp.WARP(
        2, root_width=8, root_depth=1, hyper_width=8, seq_len=T, key=jax.random.PRNGKey(2)
    )
    model = eqx.tree_at(lambda m: m.B, model, 0.01 * jnp.ones_like(model.B))  # B has left 0

    def loss(m):
        return wp.mse(m(xs), xs[1:])

    grads = eqx.filter_grad(loss)(model)
    for name, g in [
        ("A", grads.A),
        ("B", grads.B),
        ("phi.weight", grads.hypernetwork.weight),
        ("phi.bias", grads.hypernetwork.bias),
        ("phi.hidden", grads.hypernetwork.hidden[0].weight),
    ]:
        assert np.all(np.isfinite(g)), name
        assert np.abs(g).max() > 0, name


def test_probabilistic_model_returns_mean_and_std(xs):
    model = wp.WARP(
        2,
        root_width=8,
        root_depth=1,
        decoder_options={"probabilistic": True, "std_lower_bound": 0.05},
        seq_len=T,
        key=jax.random.PRNGKey(4),
    )
    mean, std = model(xs)
    assert mean.shape == std.shape == (T - 1, 2)
    assert float(std.min()) >= 0.05
    m2, s2 = wp.reconstruct(model, xs[:4], 6)
    assert m2.shape == s2.shape == (6, 2)
    assert np.isfinite(float(wp.gaussian_nll(mean, std, xs[1:])))


def test_constructor_errors():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="unknown decoder 'nope'.*mlp"):
        wp.WARP(2, decoder="nope", key=key)
    with pytest.raises(ValueError, match="data_size"):
        wp.WARP(0, key=key)
    with pytest.raises(ValueError, match="does not accept"):
        wp.WARP(2, decoder_options={"colour": "red"}, key=key)


def test_theta_size_counts_root_parameters():
    model = wp.WARP(2, root_width=5, root_depth=2, key=jax.random.PRNGKey(0))
    # [tau, x_prev] (3) -> 5 -> 5 -> 2, weights and biases
    assert model.theta_size == (3 * 5 + 5) + (5 * 5 + 5) + (5 * 2 + 2)
