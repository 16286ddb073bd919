"""Index conventions and the stochastic variant, each against a plain Python loop
written directly from the spec text (section 1.6)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp
from warp_phys._conventions import reference_context

T = 24


def perturbed(model, seed=7):
    """A, B away from their (I, 0) initialisation, so every index matters."""
    D = model.theta_size
    ka, kb = jax.random.split(jax.random.PRNGKey(seed))
    A = 0.97 * jnp.eye(D) + 0.03 * jax.random.normal(ka, (D, D)) / jnp.sqrt(D)
    return eqx.tree_at(lambda m: (m.A, m.B), model, (A, 0.3 * jax.random.normal(kb, (D, 2))))


@pytest.fixture(scope="module")
def model():
    return perturbed(
        wp.WARP(2, root_width=6, root_depth=1, hyper_width=6, seq_len=T, key=jax.random.PRNGKey(0))
    )


@pytest.fixture(scope="module")
def prob_model():
    return perturbed(
        wp.WARP(
            2,
            root_width=6,
            root_depth=1,
            hyper_width=6,
            decoder_options={"probabilistic": True, "std_lower_bound": 0.05},
            seq_len=T,
            key=jax.random.PRNGKey(1),
        )
    )


@pytest.fixture(scope="module")
def xs():
    t = np.linspace(0, 1, T)
    return jnp.asarray(np.stack([np.cos(7 * t), -np.sin(7 * t)], axis=1), jnp.float32)


def spec_reference_loop(model, xs, observed):
    """Spec 1.6(c), literally: carry (theta, h, p, tau_prev) = (theta_0, x_0, x_0, tau_0);
    v_t = x_t if observed else h; theta <- A theta + B (v_t - p); out_t = root_theta at
    tau_t + (tau_t - tau_prev) with p as the previous observation; carry <- (theta, out_t,
    h, tau_t)."""
    T = len(xs)
    theta, h, p, tau_prev = model.hypernetwork(xs[0]), xs[0], xs[0], 0.0
    outs = []
    for t in range(T):
        tau_t = t / (T - 1)
        v = xs[t] if observed[t] else h
        theta = model.A @ theta + model.B @ (v - p)
        out = model.decoder.decode(theta, tau_t + (tau_t - tau_prev), p)
        theta, h, p, tau_prev = theta, out, h, tau_t
        outs.append(out)
    return jnp.stack(outs)


def spec_clean_loop(model, xs, observed, sample=None):
    """Spec 1.6 clean convention: u_t = x_t if observed else the prediction of x_t;
    theta_t = A theta_{t-1} + B (u_t - u_{t-1}); x_hat_{t+1} = root_{theta_t}(tau_{t+1}, u_t).
    `sample(out, t)` gives the fed-back value (default: the mean)."""
    sample = sample or (lambda out, t: out[0] if isinstance(out, tuple) else out)
    T = len(xs)
    theta, u_prev = model.hypernetwork(xs[0]), xs[0]
    outs = [model.decoder.decode(theta, 1 / (T - 1), xs[0])]
    fed = sample(outs[-1], 1)
    for t in range(1, T - 1):
        u = xs[t] if observed[t] else fed
        theta = model.A @ theta + model.B @ (u - u_prev)
        outs.append(model.decoder.decode(theta, (t + 1) / (T - 1), u))
        fed, u_prev = sample(outs[-1], t + 1), u
    return jax.tree.map(lambda *a: jnp.stack(a), *outs)


@pytest.mark.parametrize("forcing", [0.0, 0.4, 1.0])
def test_reference_convention_matches_the_spec_loop(model, xs, forcing):
    observed = np.random.default_rng(3).random(T) < forcing
    got = jax.jit(lambda m, x, o: wp.rollout(m, x, o, convention="reference"))(
        model, xs, jnp.asarray(observed)
    )
    assert got.shape == (T, 2)
    expected = spec_reference_loop(model, xs, observed)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)


def test_clean_convention_matches_the_spec_loop(model, xs):
    observed = np.random.default_rng(4).random(T) < 0.4
    observed[0] = True
    got = wp.rollout(model, xs, jnp.asarray(observed))
    assert got.shape == (T - 1, 2)
    np.testing.assert_allclose(got, spec_clean_loop(model, xs, observed), atol=2e-5)


def test_conventions_differ_in_what_they_score(model, xs):
    """Reference out_t (scored against x_t) is not the clean prediction of x_t."""
    full = jnp.ones(T, bool)
    clean = wp.rollout(model, xs, full)
    ref = wp.rollout(model, xs, full, convention="reference")
    assert not np.allclose(ref[1:], clean, atol=1e-3)


def test_reference_reconstruct_is_the_rollout_after_the_context(model, xs):
    L = 9
    observed = np.arange(T) < L
    expected = spec_reference_loop(model, xs, observed)[L:]
    got = wp.reconstruct(model, xs[:L], T - L, convention="reference")
    np.testing.assert_allclose(got, expected, atol=2e-5)
    corrupted = xs.at[L:].set(1e6)  # the future is never read
    np.testing.assert_array_equal(
        got, wp.reconstruct(model, corrupted[:L], T - L, convention="reference")
    )


def test_reference_context_cut_follows_tau_rule():
    assert reference_context(256, 100) == 100  # the paper's MSD protocol: steps 0..99
    for length in [2, 16, 50, 256]:
        for L in range(length + 1):
            brute = sum(t / (length - 1) <= L / length + 1e-12 for t in range(length))
            assert reference_context(length, L) == max(brute, 0), (length, L)


def test_stochastic_rollout_feeds_back_samples(prob_model, xs):
    observed = np.arange(T) < 5
    key = jax.random.PRNGKey(11)

    def sample(out, t):
        mean, std = out
        return mean + std * jax.random.normal(jax.random.fold_in(key, t), mean.shape)

    mean, std = wp.rollout(prob_model, xs, jnp.asarray(observed), noise_key=key)
    exp_mean, exp_std = spec_clean_loop(prob_model, xs, observed, sample)
    np.testing.assert_allclose(mean, exp_mean, atol=2e-5)
    np.testing.assert_allclose(std, exp_std, atol=2e-5)
    other, _ = wp.rollout(prob_model, xs, jnp.asarray(observed), noise_key=jax.random.PRNGKey(12))
    smooth, _ = wp.rollout(prob_model, xs, jnp.asarray(observed))
    assert not np.allclose(other[5:], mean[5:])
    np.testing.assert_allclose(smooth, spec_clean_loop(prob_model, xs, observed)[0], atol=2e-5)
    # context steps do not depend on the noise
    np.testing.assert_array_equal(other[:4], mean[:4])


def test_stochastic_needs_a_probabilistic_model(model, xs):
    with pytest.raises(ValueError, match="probabilistic"):
        wp.rollout(model, xs, jnp.ones(T, bool), noise_key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="convention"):
        wp.rollout(model, xs, jnp.ones(T, bool), convention="paper")


def test_losses_and_protocols_align_predictions_with_targets(model, xs):
    from warp_phys.training.protocol import predict, sequence_loss

    key = jax.random.PRNGKey(5)
    targets = -xs  # inputs and targets may differ (the LV repeat-copy task)
    clean = sequence_loss(model, xs, targets, key, objective="teacher_forced")
    np.testing.assert_allclose(clean, wp.mse(model(xs), targets[1:]), rtol=1e-6)
    ref = sequence_loss(model, xs, targets, key, objective="teacher_forced", convention="reference")
    full = wp.rollout(model, xs, jnp.ones(T, bool), convention="reference")
    np.testing.assert_allclose(ref, wp.mse(full, targets), rtol=1e-6)
    batch = xs[None]
    (pred, start), (ref_pred, ref_start) = [
        predict(model, batch, protocol="full", convention=c) for c in ("clean", "reference")
    ]
    assert (start, ref_start) == (1, 0) and pred.shape == (1, T - 1, 2)
    np.testing.assert_allclose(ref_pred[0], full, atol=1e-5)
    # the reference context cut: T = 24, L = 10 -> tau_t <= 10/24 -> steps 0..9 observed
    pred, start = predict(model, batch, context=10, convention="reference")
    assert start == reference_context(T, 10) == 10 and pred.shape == (1, T - 10, 2)


def test_stochastic_noise_enters_only_through_feedback(prob_model, xs):
    from warp_phys.training.protocol import sequence_loss

    def loss(key, forcing, stochastic):
        return float(
            sequence_loss(prob_model, xs, xs, key, forcing_prob=forcing, stochastic=stochastic)
        )

    key = jax.random.PRNGKey(8)
    # everything observed: nothing is fed back, so the noise cannot matter
    assert loss(key, 1.0, True) == loss(key, 1.0, False)
    # nothing observed: the samples are fed back and change the loss
    assert loss(key, 0.0, True) != loss(key, 0.0, False)


def test_prediction_metrics_count_diverged_forecasts_without_dropping_them():
    from warp_phys.training.protocol import prediction_metrics

    rng = np.random.default_rng(0)
    targets = rng.normal(size=(4, 6, 2)).astype(np.float32)
    prediction = targets[:, 2:] + 0.1 * rng.normal(size=(4, 4, 2)).astype(np.float32)
    clean = prediction_metrics(jnp.asarray(prediction), targets, 2)
    assert clean["diverged"] == 0 and "mse_finite" not in clean

    prediction[1, 3, 0] = np.inf
    prediction[3, 0, 1] = np.nan
    out = prediction_metrics(jnp.asarray(prediction), targets, 2)
    assert out["diverged"] == 2 and not np.isfinite(out["mse"])
    kept = [0, 2]
    expected = np.mean((prediction[kept] - targets[kept, 2:]) ** 2)
    np.testing.assert_allclose(out["mse_finite"], expected, rtol=1e-6)


def test_the_batch_loss_reduces_step_losses_over_time(model, prob_model, xs):
    from warp_phys.training.protocol import batch_loss, sequence_loss, sequence_step_losses

    key = jax.random.PRNGKey(3)
    batch = jnp.stack([xs, 0.5 * xs, -xs])
    keys = jax.random.split(key, 3)
    steps = jnp.stack(
        [
            sequence_step_losses(model, x, x, k, batch_size=3)
            for x, k in zip(batch, keys, strict=True)
        ]
    )
    assert steps.shape == (3, T - 1)
    # "mean": every squared error alike, the mean of the sequences' losses
    per_sequence = [
        sequence_loss(model, x, x, k, batch_size=3) for x, k in zip(batch, keys, strict=True)
    ]
    np.testing.assert_allclose(
        batch_loss(model, batch, batch, key), np.mean(per_sequence), rtol=1e-6
    )
    # "log_mean": the mean over steps of the log of each step's batch MSE, by hand
    by_hand = np.mean(np.log(np.mean(np.asarray(steps, np.float64), axis=0) + 1e-12))
    log_mean = batch_loss(model, batch, batch, key, time_reduction="log_mean")
    np.testing.assert_allclose(log_mean, by_hand, rtol=1e-5)
    with pytest.raises(ValueError, match="time reduction"):
        batch_loss(model, batch, batch, key, time_reduction="median")
    # the NLL terms of a probabilistic model, per step, average to its loss
    nll_steps = sequence_step_losses(prob_model, xs, xs, key)
    np.testing.assert_allclose(
        jnp.mean(nll_steps), sequence_loss(prob_model, xs, xs, key), rtol=1e-6
    )


def test_log_mean_weighs_each_step_by_one_over_its_error():
    """The gradient of log_mean does not change when one step's errors are scaled (a
    step whose errors are 1000x larger pulls no harder), unlike the plain mean's."""
    from warp_phys.training.losses import reduce_over_time

    rng = np.random.default_rng(0)
    residuals = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)  # (N, T)
    scale = jnp.asarray([1000.0, 1, 1, 1, 1, 1])

    def grad(how, s):
        return jax.grad(lambda r: reduce_over_time((s * r) ** 2, how))(residuals)

    # d/dr of log(mean (s r)^2) is the same for any s: the step's weight is 1 / its MSE
    np.testing.assert_allclose(grad("log_mean", scale), grad("log_mean", 1.0), rtol=1e-4)
    plain_ratio = np.abs(grad("mean", scale)[:, 0]) / np.abs(grad("mean", 1.0)[:, 0])
    np.testing.assert_allclose(plain_ratio, 1000.0**2, rtol=1e-4)


def test_a_drawn_training_context_covers_its_range_and_keeps_the_old_coin():
    """`train_context_max`: each sequence observes a context drawn from
    train_context..train_context_max (both ends reached), then free-running at
    forcing_prob 0; without it the mask is the fixed context's, from the same key."""
    from warp_phys._conventions import teacher_forcing_mask

    keys = jax.random.split(jax.random.PRNGKey(3), 400)
    masks = jax.vmap(lambda k: teacher_forcing_mask(k, 64, 0.0, 5, 9))(keys)
    lengths = np.asarray(masks.sum(axis=1))
    assert set(lengths.tolist()) == {5, 6, 7, 8, 9}
    assert np.all(np.asarray(masks)[np.arange(400), lengths - 1])  # a prefix each
    plain = teacher_forcing_mask(keys[0], 64, 0.3, 5)
    np.testing.assert_array_equal(plain, teacher_forcing_mask(keys[0], 64, 0.3, 5, None))
    with pytest.raises(ValueError, match="train_context_max must be >= 10"):
        wp.ObjectiveOptions(context=10, context_max=4)
    config = wp.RunConfig(system="msd", decoder="damped_oscillator", train_context_max=100)
    assert config.objective_options.context_max == 100
