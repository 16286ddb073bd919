"""Training lowers the loss; checkpoints round-trip exactly and fail loudly."""

import dataclasses
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp
from warp_phys.training.checkpoint import MAGIC, checkpoint_digest, read_header
from warp_phys.training.metrics_log import read_metrics

T = 40


def damped_sines(n: int, seed: int) -> np.ndarray:
    """(n, T, 2) position/velocity of damped oscillators, a cheap stand-in data set."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)[None, :]
    w = rng.uniform(6, 12, (n, 1))
    g = rng.uniform(0.2, 1.0, (n, 1))
    pos = np.exp(-g * t) * np.cos(w * t)
    vel = np.exp(-g * t) * (-w * np.sin(w * t) - g * np.cos(w * t)) / w
    return np.stack([pos, vel], axis=-1).astype(np.float32)


def tiny_model(seed=0):
    return wp.WARP(
        2, root_width=8, root_depth=1, hyper_width=8, seq_len=T, key=jax.random.PRNGKey(seed)
    )


@pytest.fixture(scope="module")
def data():
    return damped_sines(32, 0), damped_sines(8, 1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    train, val = data
    folder = tmp_path_factory.mktemp("run")
    model, history = wp.train(
        tiny_model(),
        train,
        steps=60,
        batch_size=8,
        optimizer=wp.OptimizerOptions(lr=3e-3),
        val_data=val,
        validation=wp.ValidationOptions(context=10, every=20),
        checkpoint_dir=folder,
        key=jax.random.PRNGKey(0),
        progress=False,
    )
    return model, history, folder


def test_autoregressive_training_lowers_the_loss(trained):
    _, history, _ = trained
    losses = np.asarray(history["loss"])
    assert np.all(np.isfinite(losses))
    assert losses[-10:].mean() < 0.5 * losses[:5].mean()


def test_best_model_is_the_best_validated(trained, data):
    model, history, _ = trained
    val = jnp.asarray(data[1])
    assert history["val_step"] == [20, 40, 60]
    assert float(wp.forecast_mse(model, val, 10)) == pytest.approx(
        min(history["val_mse"]), rel=1e-5
    )


def test_teacher_forced_training_lowers_the_loss(data):
    _, history = wp.train(
        tiny_model(1),
        data[0],
        steps=40,
        batch_size=8,
        optimizer=wp.OptimizerOptions(lr=3e-3),
        objective=wp.ObjectiveOptions(kind="teacher_forced"),
        key=jax.random.PRNGKey(1),
        progress=False,
    )
    assert np.mean(history["loss"][-5:]) < 0.5 * np.mean(history["loss"][:3])


def test_log_mean_training_lowers_its_loss_and_the_plain_mse(data):
    """time_reduction="log_mean" trains: its loss (a mean of logs) falls, and so does
    the plain MSE of the same model; an NLL model is refused (an NLL can be negative)."""
    from warp_phys.training.protocol import batch_loss

    objective = wp.ObjectiveOptions(time_reduction="log_mean")
    train = jnp.asarray(data[0])
    model, history = wp.train(
        tiny_model(2),
        train,
        steps=40,
        batch_size=8,
        optimizer=wp.OptimizerOptions(lr=3e-3),
        objective=objective,
        key=jax.random.PRNGKey(2),
        progress=False,
    )
    assert np.mean(history["loss"][-5:]) < np.mean(history["loss"][:3]) - 0.5  # e^0.5 = 1.6x
    key = jax.random.PRNGKey(9)
    assert batch_loss(model, train, train, key) < batch_loss(tiny_model(2), train, train, key)
    nll = wp.WARP(
        2,
        root_width=4,
        root_depth=1,
        hyper_width=4,
        seq_len=T,
        decoder_options={"probabilistic": True},
        key=jax.random.PRNGKey(0),
    )
    with pytest.raises(ValueError, match="log_mean"):
        wp.train(nll, data[0], steps=1, objective=objective, key=key, progress=False)


def test_the_run_default_resolves_the_time_reduction_by_the_loss(tmp_path):
    """`warp-phys train`'s "auto": log_mean for an MSE model, mean for an NLL one (its
    terms can be negative); config.json stores the resolved word and a resume with
    "auto" again continues the run. The library's `ObjectiveOptions` keeps the mean."""
    tiny = dict(system="sine", decoder="mlp", n_train=4, n_val=2, n_test=2, context=4,
                hyper_width=2, steps=1, val_every=1, batch_size=4, normalize=False)  # fmt: skip
    for loss, expected in (("mse", "log_mean"), ("nll", "mean")):
        run, _ = wp.train_run(wp.RunConfig(**tiny, loss=loss), tmp_path / loss, progress=False)
        stored = json.loads((tmp_path / loss / "config.json").read_text())
        assert run.config.time_reduction == stored["time_reduction"] == expected
    more = wp.RunConfig(**{**tiny, "steps": 2})
    _, history = wp.train_run(more, tmp_path / "mse", resume=True, progress=False)
    assert history["step"] == [2]
    assert wp.RunConfig().time_reduction == "auto"
    assert wp.ObjectiveOptions().time_reduction == "mean"


def test_checkpoint_round_trip_is_bit_identical(trained, data):
    model, _, folder = trained
    loaded = wp.load_model(folder / "best.eqx")
    x = jnp.asarray(data[1][0])
    np.testing.assert_array_equal(loaded(x), model(x))
    np.testing.assert_array_equal(
        wp.reconstruct(loaded, x[:7], 12), wp.reconstruct(model, x[:7], 12)
    )
    assert loaded.config == model.config
    assert not list(folder.glob("*.tmp"))  # atomic writes leave no temporaries


def test_truncated_checkpoint_is_a_clear_error(trained, tmp_path):
    _, _, folder = trained
    raw = (folder / "last.eqx").read_bytes()
    (tmp_path / "cut.eqx").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ValueError, match="truncated"):
        wp.load_model(tmp_path / "cut.eqx")


def test_corrupt_checkpoints_are_clear_errors(trained, tmp_path):
    _, _, folder = trained
    raw = bytearray((folder / "last.eqx").read_bytes())
    (tmp_path / "text.eqx").write_text("hello")
    with pytest.raises(ValueError, match="not a warp-phys checkpoint"):
        wp.load_model(tmp_path / "text.eqx")
    raw[-3] ^= 0xFF
    (tmp_path / "flipped.eqx").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        wp.load_model(tmp_path / "flipped.eqx")
    with pytest.raises(FileNotFoundError):
        wp.load_model(tmp_path / "missing.eqx")


def test_checkpoint_of_another_architecture_is_refused(trained, tmp_path):
    _, _, folder = trained
    other = wp.WARP(2, root_width=9, root_depth=1, seq_len=T, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="does not match"):
        wp.load_model(folder / "best.eqx", like=other)
    # a header edited to claim another shape fails on the hash, which covers the header
    raw = (folder / "best.eqx").read_bytes()
    header_end = raw.index(b"\n", len(MAGIC))
    header = json.loads(raw[len(MAGIC) : header_end])
    header["config"]["decoder_options"]["width"] = 9
    forged = MAGIC + json.dumps(header).encode() + raw[header_end:]
    (tmp_path / "forged.eqx").write_bytes(forged)
    with pytest.raises(ValueError, match="corrupt"):
        wp.load_model(tmp_path / "forged.eqx")
    # and one with a matching hash (written as save_model would) fails on the payload
    header["sha256"] = checkpoint_digest(header, raw[header_end + 1 :])
    forged = MAGIC + json.dumps(header).encode() + raw[header_end:]
    (tmp_path / "forged.eqx").write_bytes(forged)
    with pytest.raises(ValueError, match="does not match the model architecture"):
        wp.load_model(tmp_path / "forged.eqx")


def test_nan_in_training_data_names_the_index():
    data = damped_sines(4, 2)
    data[2, 17, 1] = np.nan
    with pytest.raises(ValueError, match="trajectory 2, time step 17, channel 1"):
        wp.train(tiny_model(), data, steps=1, key=jax.random.PRNGKey(0), progress=False)


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match="3 channels"):
        wp.train(
            tiny_model(), np.zeros((4, T, 3)), steps=1, key=jax.random.PRNGKey(0), progress=False
        )


def test_diverging_training_stops_with_a_clear_error(data, tmp_path):
    """Every step is non-finite: the run stops after max_non_finite of them in a row,
    with the (finite) state before them in last.eqx."""
    model = tiny_model()
    model = eqx.tree_at(lambda m: m.A, model, 50.0 * model.A)  # explodes along the sequence
    with pytest.raises(FloatingPointError, match="steps 1-3; stopped with the model from step 0"):
        wp.train(model, data[0] * 1e30, steps=5, batch_size=4, max_non_finite=3,
                 checkpoint_dir=tmp_path, key=jax.random.PRNGKey(0), progress=False)  # fmt: skip
    saved = wp.load_model(tmp_path / "last.eqx")
    for a, b in zip(params(model), params(saved), strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_header(tmp_path / "last.eqx")[0]["metadata"]["step"] == 0


def params(model) -> list:
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))


def _poisoned(data):
    """The training set with trajectory 0 scaled to overflow the loss: one minibatch
    per epoch (of 4) is non-finite."""
    poisoned = data[0].copy()
    poisoned[0] *= 1e30
    return poisoned


def _fit(data, steps, folder=None):
    return wp.train(tiny_model(), _poisoned(data), steps=steps, batch_size=8,
                    optimizer=wp.OptimizerOptions(lr=3e-3), checkpoint_dir=folder,
                    key=jax.random.PRNGKey(0), progress=False)  # fmt: skip


def test_a_non_finite_step_is_skipped_and_training_goes_on(data, tmp_path):
    model, history = _fit(data, 12, tmp_path)
    bad = [s for s, loss in zip(history["step"], history["loss"], strict=True)
           if not np.isfinite(loss)]  # fmt: skip
    assert history["skipped"] == bad and len(bad) == 3  # one minibatch per epoch
    assert history["stopped"] == "steps" and history["step"][-1] == 12
    assert all(np.all(np.isfinite(p)) for p in params(model))
    assert read_metrics(tmp_path / "metrics.jsonl")[-1]["skipped"] == 3
    # a skipped step leaves the model as it was: the run stopped there equals the run
    # stopped just before it
    first = next(s for s in bad if s > 1)
    before, _ = _fit(data, first - 1)
    at, _ = _fit(data, first)
    for a, b in zip(params(before), params(at), strict=True):
        np.testing.assert_array_equal(a, b)


def _failing_from(first_bad: int, last_bad: float, factors: list):
    """`prepare` whose compiled steps report steps `first_bad..last_bad` as non-finite
    (state unchanged, as the real ones do) and record every learning-rate factor."""
    from warp_phys.training import loop

    real_prepare = loop.prepare

    def prepare(*args, **kwargs):
        setup, chain = real_prepare(*args, **kwargs)
        real_steps = setup.train_steps

        def steps(model, opt_state, inputs, targets, ts, key, numbers, factors_, bad, limit):
            factors.append(float(factors_[0]))
            if first_bad <= int(numbers[0]) <= last_bad:
                return model, opt_state, jnp.full(1, jnp.nan), jnp.zeros(1, bool)
            return real_steps(model, opt_state, inputs, targets, ts, key, numbers, factors_,
                              bad, limit)  # fmt: skip

        return dataclasses.replace(setup, train_steps=steps), chain

    return prepare


def test_a_run_of_non_finite_steps_goes_back_to_the_best_model_at_half_the_rate(
    data, tmp_path, monkeypatch
):
    """Steps 5-7 overflow: after the third (max_non_finite 3) the run continues from its
    best validated model with half the learning rate; a run that keeps overflowing stops
    with `FloatingPointError` once MAX_RESCUES rescues are spent."""
    from warp_phys.training import _state, loop

    train, val = data
    factors = []
    monkeypatch.setattr(loop, "prepare", _failing_from(5, 7, factors))
    options = dict(steps=12, batch_size=8, max_non_finite=3, key=jax.random.PRNGKey(0),
                   optimizer=wp.OptimizerOptions(lr=1e-3, schedule="constant"),
                   validation=wp.ValidationOptions(every=2, context=10),
                   progress=False)  # fmt: skip
    model, history = wp.train(tiny_model(), train, val_data=val, checkpoint_dir=tmp_path, **options)
    assert history["rescues"] == [7] and history["stopped"] == "steps" and history["step"][-1] == 12
    assert factors[:7] == [1.0] * 7 and factors[7:] == [_state.RESCUE_LR_FACTOR] * 5
    rescue = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "rescue" in r]
    assert rescue == [{"step": 7, "rescue": 1, "back_to_step": rescue[0]["back_to_step"]}]
    assert rescue[0]["back_to_step"] in (2, 4)  # the best of the validations before step 5
    assert read_header(tmp_path / "last.eqx")[0]["metadata"]["rescues"] == 1
    assert all(np.all(np.isfinite(p)) for p in params(model))

    monkeypatch.setattr(loop, "prepare", _failing_from(5, math.inf, []))
    with pytest.raises(FloatingPointError, match="non-finite"):
        wp.train(tiny_model(), train, val_data=val, **dict(options, steps=40))
