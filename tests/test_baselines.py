"""GRU, LSTM and Transformer baselines: same interface, same rollouts, same loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp
from warp_phys.baselines import GRU, LSTM, Transformer, count_parameters, hidden_size_for

T = 24
KEY = jax.random.PRNGKey(0)
BUILDERS = {
    "gru": lambda **o: GRU(2, hidden_size=8, key=KEY, **o),
    "lstm": lambda **o: LSTM(2, hidden_size=8, key=KEY, **o),
    "transformer": lambda **o: Transformer(2, d_model=8, layers=1, max_len=T, key=KEY, **o),
}


def sines(n, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)[None, :]
    w, phase = rng.uniform(4, 8, (n, 1)), rng.uniform(0, 1, (n, 1))
    return np.stack([np.sin(w * t + phase), np.cos(w * t + phase)], -1).astype(np.float32)


@pytest.fixture(scope="module")
def xs():
    return jnp.asarray(sines(1, 5)[0])


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_teacher_forcing_equals_the_fully_observed_rollout(name, xs):
    L = 7

    @eqx.filter_jit
    def outputs(model, xs):
        return (
            model(xs),
            wp.rollout(model, xs, jnp.ones(T, bool)),
            wp.rollout(model, xs, jnp.arange(T) < L)[L - 1 :],
            wp.reconstruct(model, xs[:L], T - L),
        )

    forced, rolled, expected, forecast = outputs(BUILDERS[name](), xs)
    np.testing.assert_allclose(forced, rolled, atol=1e-5)
    # reconstruct = the rollout with the first L inputs observed
    np.testing.assert_allclose(forecast, expected, atol=1e-5)


def test_probabilistic_heads_give_positive_std(xs):
    models = [
        BUILDERS["lstm"](probabilistic=True, std_lower_bound=0.1),
        BUILDERS["transformer"](probabilistic=True, std_lower_bound=0.1, positions="sinusoidal"),
    ]
    for mean, std in eqx.filter_jit(lambda ms: [m(xs) for m in ms])(models):
        assert mean.shape == std.shape == (T - 1, 2) and float(std.min()) >= 0.1


def test_gru_reference_convention_matches_the_spec_loop(xs):
    """Spec section 5: zero initial hidden state, output_t scored against x_t, the same
    teacher forcing / context indexing as WARP's reference."""
    model = BUILDERS["gru"]()
    observed = np.random.default_rng(2).random(T) < 0.5
    h, hidden, outs = xs[0], jnp.zeros(8), []
    for t in range(T):
        v = xs[t] if observed[t] else h
        hidden = model.cell(v, hidden)
        h = model.head(hidden)
        outs.append(h)
    got = wp.rollout(model, xs, jnp.asarray(observed), convention="reference")
    np.testing.assert_allclose(got, jnp.stack(outs), atol=1e-5)


def test_transformer_cache_limit_is_a_clear_error(xs):
    model = Transformer(2, d_model=8, max_len=10, key=KEY)
    with pytest.raises(ValueError, match="max_length"):
        wp.reconstruct(model, xs[:6], 8)
    with pytest.raises(ValueError, match="max_len"):
        model(xs)
    with pytest.raises(ValueError, match="multiple of heads"):
        Transformer(2, d_model=9, heads=2, key=KEY)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_parameter_matching(kind):
    target = 3000
    size = hidden_size_for(kind, params=target, data_size=2)
    cls = {"gru": GRU, "lstm": LSTM, "transformer": Transformer}[kind]
    arg = "d_model" if kind == "transformer" else "hidden_size"
    def count(s):
        return count_parameters(eqx.filter_eval_shape(lambda: cls(2, **{arg: s}, key=KEY)))

    step = 2 if kind == "transformer" else 1
    count, neighbours = count(size), [count(size - step), count(size + step)]
    assert all(abs(count - target) <= abs(n - target) for n in neighbours)
    assert abs(count - target) < 0.15 * target


def check_trains_and_reconstructs(name, objective, tmp_path):
    train, val = sines(32, 0), sines(8, 1)
    model, history = wp.train(
        BUILDERS[name](),
        train,
        steps=30,
        batch_size=8,
        optimizer=wp.OptimizerOptions(lr=1e-2),
        objective=wp.ObjectiveOptions(kind=objective, forcing_prob=0.5),
        val_data=val,
        validation=wp.ValidationOptions(context=8, every=30),
        checkpoint_dir=tmp_path,
        key=jax.random.PRNGKey(1),
        progress=False,
    )
    losses = np.asarray(history["loss"])
    assert losses[-5:].mean() < 0.6 * losses[:3].mean()
    # reconstruct from 8 observed steps (the validation's compiled forecast)
    score = float(wp.forecast_mse(model, jnp.asarray(val), 8))
    assert np.isfinite(score) and score == pytest.approx(history["val_mse"][-1], rel=1e-6)
    loaded = wp.load_model(tmp_path / "best.eqx")
    assert type(loaded) is type(model)
    assert float(wp.forecast_mse(loaded, jnp.asarray(val), 8)) == score


@pytest.mark.parametrize(
    "name, objective",
    [("gru", "autoregressive"), ("lstm", "autoregressive"), ("transformer", "teacher_forced")],
)
def test_baseline_trains_reconstructs_and_round_trips(name, objective, tmp_path):
    check_trains_and_reconstructs(name, objective, tmp_path)


@pytest.mark.slow
def test_transformer_trains_autoregressively(tmp_path):
    check_trains_and_reconstructs("transformer", "autoregressive", tmp_path)
