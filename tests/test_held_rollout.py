"""WARP with free_run="hold": the state moves on observations only.

Checked against a plain Python loop over the recurrence (the independent reference),
in both drives; the forecast against the rollout; the read-out
parameters of a physical prior constant after the context; and the errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp
from warp_phys._held_rollout import held_rollout
from warp_phys.training._setup import forecast_trained
from warp_phys.training.config import stored_config
from warp_phys.training.models import build_model, trained_on_forecast

T, D = 16, 2


def _model(decoder: str, drive_features: int, free_run: str = "hold") -> wp.WARP:
    """A held WARP with nonzero B and A != I, so every term of the recurrence shows."""
    key_b, key_a = jax.random.split(jax.random.PRNGKey(1))
    model = wp.WARP(
        D, decoder=decoder, free_run=free_run, drive_features=drive_features, seq_len=T,
        key=jax.random.PRNGKey(0),
    )
    model = eqx.tree_at(lambda m: m.B, model, 0.1 * jax.random.normal(key_b, model.B.shape))
    A = model.transition.matrix
    noise = 0.05 / np.sqrt(A.shape[0]) * jax.random.normal(key_a, A.shape)  # |eig - 1| ~ 0.05
    return eqx.tree_at(lambda m: m.transition.matrix, model, A + noise)


@pytest.fixture(scope="module")
def data():
    xs = jax.random.normal(jax.random.PRNGKey(2), (T, D))
    observed = jax.random.bernoulli(jax.random.PRNGKey(3), 0.4, (T,)).at[0].set(True)
    return xs, observed


def _loop_reference(model, xs, observed):
    """The held rollout by its definition: theta advances on each observation, driven
    by it and the previous observation; every prediction is fed back where unobserved."""
    theta, last_observed = model.initial_state(xs[0]), xs[0]
    out = model.decode(theta, 1, xs[0])
    outs = [out]
    for t in range(1, T - 1):
        if bool(observed[t]):
            theta, last_observed = model.advance(theta, xs[t], last_observed), xs[t]
            u = xs[t]
        else:
            u = out
        out = model.decode(theta, t + 1, u)
        outs.append(out)
    return jnp.stack(outs)


@pytest.mark.parametrize("decoder", ["damped_oscillator", "mlp"])
@pytest.mark.parametrize("drive_features", [0, 4])
def test_held_rollout_matches_a_plain_loop(data, decoder, drive_features):
    xs, observed = data
    model = _model(decoder, drive_features)
    reference = _loop_reference(model, xs, observed)
    scale = float(jnp.max(jnp.abs(reference)))
    got = held_rollout(model, xs, observed)
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_array_equal(wp.rollout(model, xs, observed), got)


def test_forecast_is_the_rollout_after_the_context_and_parameters_are_held(data):
    xs, _ = data
    model = _model("damped_oscillator", 4)
    L = 6
    forecast = wp.reconstruct(model, xs[:L], T - L, ar_algorithm="kernel")
    rollout = wp.rollout(model, xs, jnp.arange(T) < L)
    np.testing.assert_allclose(forecast, rollout[L - 1 :], rtol=1e-5, atol=1e-6)
    _, states, _ = wp.rollout(model, xs, jnp.arange(T) < L, return_states=True)
    # theta_{L-1} predicts x_L; it is never moved by the model's own outputs
    after = states[L - 1 :]
    np.testing.assert_array_equal(after, jnp.broadcast_to(states[L - 1], after.shape))
    assert not np.allclose(states[0], states[L - 1])  # while observations drive it


def test_advance_and_hold_agree_when_everything_is_observed(data):
    xs, _ = data
    held, advancing = (_model("damped_oscillator", 4, how) for how in ("hold", "advance"))
    everything = jnp.ones(T, bool)
    outs = [wp.rollout(model, xs, everything) for model in (held, advancing)]
    np.testing.assert_allclose(*outs, rtol=1e-5, atol=1e-6)


def test_hold_errors_name_the_problem(data):
    xs, observed = data
    with pytest.raises(ValueError, match="free_run must be"):
        wp.WARP(D, free_run="freeze", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="regular grid"):
        wp.WARP(D, free_run="hold", transition="continuous", key=jax.random.PRNGKey(0))
    model = _model("mlp", 0)
    with pytest.raises(ValueError, match="clean convention"):
        wp.rollout(model, xs, observed, convention="reference")
    assert model.config["free_run"] == "hold"
    assert "free_run" not in wp.WARP(D, key=jax.random.PRNGKey(0)).config  # old configs unchanged


@pytest.mark.parametrize(
    ("options", "free_run", "forcing_prob", "train_context"),
    [
        (dict(decoder="damped_oscillator"), "hold", 0.0, 100),
        (dict(decoder="sympy:A*cos(omega*t)+x0*0"), "hold", 0.0, 100),
        (dict(decoder="mlp"), "advance", 0.0, 100),
        (dict(model="gru"), "advance", 0.0, 100),
        (dict(model="lstm"), "advance", 0.25, 1),
        (dict(model="transformer"), "advance", 0.25, 1),
        (dict(decoder="mlp", loss="nll"), "advance", 0.25, 1),
        (dict(model="gru", eval_protocol="full"), "advance", 0.25, 1),
        (dict(decoder="hybrid", free_run="advance"), "advance", 0.25, 1),
        (dict(decoder="damped_oscillator", free_run="advance"), "advance", 0.25, 1),
        (dict(decoder="damped_oscillator", forcing_prob=0.1, train_context=20), "hold", 0.1, 20),
    ],
)
def test_automatic_options_hold_a_physical_prior_and_train_its_forecast(
    options, free_run, forcing_prob, train_context
):
    """A held WARP, and on forecast data a GRU and the plain WARP (MSE), train on the
    forecast by default; the others with the paper's teacher forcing from step 1. The
    built model answers as its config does."""
    config = wp.RunConfig(system="msd", context=100, **options)
    stored = stored_config(config)
    assert (stored["free_run"], stored["forcing_prob"], stored["train_context"]) == (
        free_run, forcing_prob, train_context
    )
    data_size = 1 if config.decoder.startswith("sympy:") else 2  # the formula's channels
    model = build_model(config, data_size, 32, key=jax.random.PRNGKey(0))
    forecast = forecast_trained(model, config.eval_protocol.replace("auto", "forecast"), 100)
    assert forecast == trained_on_forecast(config) == (stored["train_context"] != 1)


def test_runs_stored_before_hold_existed_keep_their_meaning():
    """A config.json written before these options: the advancing WARP, forcing 0.25 from
    step 1; an MLP-root or baseline run of today's defaults with that protocol given is
    the same run."""

    def written_before(**options):
        stored = stored_config(wp.RunConfig(system="msd", context=100, **options))
        for key in ("free_run", "train_context"):
            stored.pop(key)
        return stored | {"forcing_prob": 0.25}  # what every earlier run stored

    for options in (dict(decoder="mlp"), dict(model="gru"), dict(model="lstm")):
        paper = dict(options, forcing_prob=0.25, train_context=1)
        today = stored_config(wp.RunConfig(system="msd", context=100, **paper))
        assert stored_config(written_before(**options)) == today
    old_phys = stored_config(written_before(decoder="damped_oscillator"))
    assert (old_phys["free_run"], old_phys["train_context"]) == ("advance", 1)


def test_a_held_run_warns_when_asked_for_a_context_it_did_not_train():
    """A held WARP's read-out is good only after the context lengths it trained on:
    `reconstruct_run` / `evaluate_run` warn outside train_context..train_context_max."""
    import types
    import warnings

    from warp_phys.training.evaluation import warn_untrained_context

    model = wp.WARP(2, decoder="damped_oscillator", free_run="hold", root_width=4,
                    key=jax.random.PRNGKey(0))  # fmt: skip
    run = lambda low, high, m=model: types.SimpleNamespace(
        model=m, config=types.SimpleNamespace(train_context=low, train_context_max=high)
    )
    with pytest.warns(UserWarning, match="after 100 observed steps, not 50"):
        warn_untrained_context(run(100, None), 50)
    with pytest.warns(UserWarning, match="after 25..100 observed steps, not 120"):
        warn_untrained_context(run(25, 100), 120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_untrained_context(run(100, None), 100)
        warn_untrained_context(run(25, 100), 50)
        advancing = wp.WARP(2, decoder="damped_oscillator", root_width=4, key=jax.random.PRNGKey(0))
        warn_untrained_context(run(100, None, advancing), 50)  # its state moves on: no claim
