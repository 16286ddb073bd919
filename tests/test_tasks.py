"""The tasks beyond forecasting (`warp_phys.tasks`): WARP's and the baselines'
`output_size`, the data, the objectives against independent references, a training
run through `fit`, the `warp-phys task` command, and the examples with tiny settings."""

import inspect
import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import warp_phys as wp
from warp_phys.cli import main as cli
from warp_phys.tasks import (
    Embedded,
    TaskOptions,
    _tasks,
    bits_per_dim,
    build_task_model,
    class_logits,
    icl_batch,
    least_squares_errors,
    masked_reconstruction_loss,
    step_outputs,
)
from warp_phys.tasks._data import optional
from warp_phys.tasks._fit import fit, step_keys

KEY = jax.random.PRNGKey(0)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def classifiers():
    """WARP and each baseline reading 3 channels and predicting 2 logits."""
    warp = wp.WARP(3, output_size=2, root_width=4, root_depth=1, seq_len=8,
                   decoder_options={"input_prev": False}, key=KEY)  # fmt: skip
    return {
        "warp": warp,
        "gru": wp.GRU(3, hidden_size=5, output_size=2, key=KEY),
        "lstm": wp.LSTM(3, hidden_size=5, output_size=2, key=KEY),
        "transformer": wp.Transformer(3, d_model=4, output_size=2, max_len=8, key=KEY),
    }


def test_output_size_changes_only_the_prediction(classifiers, tmp_path):
    xs = jax.random.normal(KEY, (7, 3))
    for name, model in classifiers.items():
        assert model(xs).shape == (6, 2), name
        path = wp.save_model(tmp_path / f"{name}.eqx", model)
        assert np.allclose(wp.load_model(path)(xs), model(xs)), name
    assert "output_size" not in wp.GRU(3, key=KEY).config  # old configs stay as they were
    with pytest.raises(ValueError, match="input_prev"):
        wp.WARP(3, output_size=2, root_width=4, key=KEY)


def test_logits_read_each_sequence_at_its_own_last_step(classifiers):
    """Padding after a sequence's end never changes its logits (causal models)."""
    xs = jax.random.normal(KEY, (7, 3))
    padded = xs.at[4:].set(100.0)
    for name, model in classifiers.items():
        direct = step_outputs(model, xs[:4])[-1]
        assert np.allclose(class_logits(model, padded, jnp.int32(4)), direct, atol=1e-5), name


def test_an_accumulated_embedding_gives_warp_a_memory_of_the_path():
    """With A = I (its initialisation) WARP's last state is theta_0 + B (x_T - x_0), so
    its logits ignore the middle of a sequence; behind an accumulating embedding its
    drive is B e_t / T and they do not."""
    xs = jax.random.normal(KEY, (7, 3))
    moved = xs.at[3].add(1.0)

    def last(model, x):
        return step_outputs(model, x)[-1]

    def warp(data_size):
        model = wp.WARP(data_size, output_size=2, root_width=4, root_depth=1, seq_len=8,
                        decoder_options={"input_prev": False}, key=KEY)  # fmt: skip
        return eqx.tree_at(lambda m: m.B, model, jax.random.normal(KEY, model.B.shape))

    assert np.allclose(last(warp(3), xs), last(warp(3), moved), atol=1e-5)
    embedded = Embedded(3, warp(4), features=4, accumulate=True, seq_len=7, key=KEY)
    assert not np.allclose(last(embedded, xs), last(embedded, moved), atol=1e-3)


def test_the_stream_is_causal_summed_features_then_the_raw_input():
    gru = wp.GRU(5 + 3, hidden_size=4, output_size=1, key=KEY)
    front = Embedded(3, gru, features=5, window=2, accumulate=True, raw=True, seq_len=7, key=KEY)
    xs = jax.random.normal(KEY, (7, 3))
    stream = front.stream(xs)
    windows = jnp.concatenate([jnp.concatenate([xs[:1], xs[:-1]]), xs], axis=-1)
    features = jax.vmap(front.embedding)(windows)
    assert np.allclose(stream[0, :5] * 7, features[0], atol=1e-5)
    assert np.allclose(jnp.diff(stream[:, :5], axis=0) * 7, features[1:], atol=1e-5)
    assert np.allclose(stream[:, 5:], xs)
    assert np.allclose(front.stream(xs.at[5].set(9.0))[:5], stream[:5])  # causal
    with pytest.raises(ValueError, match="reads 8 channels, the stream has 5"):
        Embedded(3, gru, features=5, key=KEY)


def test_task_models_behind_an_embedding_match_in_size_and_round_trip(tmp_path):
    xs = jax.random.normal(KEY, (9, 3))
    counts = {}
    for name in ("warp", "gru", "transformer"):
        options = TaskOptions(model=name, embed=4, root_width=8, transition_init="rotation")
        model = build_task_model(options, 3, 2, 8, input_prev=False, key=KEY)
        counts[name] = wp.count_parameters(model)
        path = wp.save_model(tmp_path / f"{name}.eqx", model)
        loaded = wp.load_model(path)
        assert isinstance(loaded, Embedded) and np.allclose(loaded(xs), model(xs)), name
        assert model.accumulate == (name == "warp"), name
    assert abs(counts["gru"] / counts["warp"] - 1) < 0.1, counts
    A = build_task_model(TaskOptions(transition_init="rotation", root_width=4), 3, 3, 8, key=KEY).A
    eye = np.eye(A.shape[0])
    assert not np.allclose(A, eye) and np.allclose(A.T @ A, eye, atol=1e-6)  # rotations
    # the option reaches WARP's own initialisation: the A of WARP(transition_init=...)
    warp = wp.WARP(3, root_width=4, root_depth=1, seq_len=9, transition_init="rotation", key=KEY)
    np.testing.assert_array_equal(A, warp.A)
    assert warp.config["transition_init"] == "rotation"


def _raw_keys(key) -> list[tuple]:
    """The raw words of a concrete key (or of each key of a batch); none of a tracer."""
    if isinstance(key, jax.core.Tracer):
        return []
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = np.asarray(key)
    return [tuple(row) for row in words.reshape(-1, words.shape[-1]).tolist()]


def _record_keys(monkeypatch, seen: set) -> None:
    """Wrap every `jax.random` function taking a `key` first (split, fold_in, normal,
    uniform, ...) to add the concrete keys it is given to `seen`."""
    for name in dir(jax.random):
        f = getattr(jax.random, name)
        try:
            first = next(iter(inspect.signature(f).parameters), None)
        except (TypeError, ValueError):
            continue
        if first != "key" or not callable(f):
            continue

        def wrapped(key, *args, _f=f, **kwargs):
            seen.update(_raw_keys(key))
            return _f(key, *args, **kwargs)

        monkeypatch.setattr(jax.random, name, wrapped)


@pytest.mark.parametrize("model", ["warp", "gru"])
def test_training_keys_differ_from_every_key_the_run_used_before(monkeypatch, model):
    """`run_task` builds the model (WARP: root, A = fold_in(., 2), drive = fold_in(., 3);
    the embedding fold_in(., 5); a baseline sized from that WARP) and draws ICL's val and
    test sets, then hands `fit` a key whose steps n fold in n. No key consumed before
    training may come back in its first steps: with the model's own key as the training
    key, step 2 drew with A's key and step 5 with the embedding's."""

    class Stop(Exception):
        pass

    handed = {}

    def no_training(model, loss, sample, *, key, **_):
        handed["key"] = key
        raise Stop

    seen = set()
    with monkeypatch.context() as patch:
        patch.setattr(_tasks, "fit", no_training)
        _record_keys(patch, seen)
        with pytest.raises(Stop):
            _tasks.run_task(task="icl", model=model, embed=4, root_width=4, icl_pairs=4)
    assert len(seen) > 10  # the recording saw the construction (A, drive, embedding, ...)
    train = handed["key"]
    used = set(_raw_keys(train))
    for n in range(1, 9):
        used.update(_raw_keys(jax.random.fold_in(train, n)))
        for k in step_keys(train, n):
            used.update(_raw_keys(k))
    assert len(used) == 1 + 3 * 8  # and they differ from one another
    assert not used & seen


def test_fit_draws_each_batch_and_each_loss_with_its_own_step_key():
    """Step n's minibatch is drawn with `step_keys(key, n)[0]` and its loss with `[1]`
    (the loss returns a uniform draw of its key, which `history` records)."""
    model = eqx.nn.Linear(1, 1, key=KEY)
    drawn = []

    def sample(k):
        drawn.append(k)
        return jnp.zeros(1)

    def loss(m, batch, k):
        return jax.random.uniform(k) + 0.0 * jnp.sum(m(batch))

    train = jax.random.PRNGKey(7)
    _, history = fit(model, loss, sample, steps=3, key=train)
    for n in range(1, 4):
        batch_key, loss_key = step_keys(train, n)
        assert _raw_keys(drawn[n - 1]) == _raw_keys(batch_key) != _raw_keys(loss_key)
        assert history["loss"][n - 1] == pytest.approx(float(jax.random.uniform(loss_key)))


def test_icl_tokens_and_least_squares():
    tokens, ys = icl_batch(KEY, 5, 6, 2, noise=0.0)
    assert tokens.shape == (5, 6, 3) and ys.shape == (5, 6)
    assert np.allclose(tokens[:, 1:, -1], ys[:, :-1]) and np.all(tokens[:, 0, -1] == 0)
    errors = least_squares_errors(tokens, ys)
    assert errors[0] > 0.01 and np.all(errors[3:] < 1e-10)  # exact from dim + 1 pairs


def test_masked_loss_with_every_step_observed_is_the_teacher_forced_mse(classifiers):
    model = wp.GRU(1, hidden_size=4, key=KEY)
    xs = jax.random.uniform(KEY, (3, 9, 1))
    full = masked_reconstruction_loss(model, (xs,), KEY, forcing_prob=1.0, loss_steps=8)
    reference = jnp.mean((jax.vmap(model)(xs) - xs[:, 1:]) ** 2)
    assert np.isclose(full, reference, rtol=1e-5)
    part = masked_reconstruction_loss(model, (xs,), KEY, forcing_prob=1.0, loss_steps=2)
    assert not np.isclose(part, reference)


def test_bits_per_dim_matches_scipy():
    target = np.array([0.0, 0.5, 1.0, 0.25])
    mean = np.array([0.1, 0.45, 0.8, 0.3])
    sigma, half = 0.2, 0.5 / 16
    mass = [
        norm.cdf((t + half - m) / sigma) if t == 0 else
        1 - norm.cdf((t - half - m) / sigma) if t == 1 else
        norm.cdf((t + half - m) / sigma) - norm.cdf((t - half - m) / sigma)
        for t, m in zip(target, mean, strict=True)
    ]  # fmt: skip
    assert np.isclose(bits_per_dim(mean, target, sigma), -np.mean(np.log2(mass)), rtol=1e-4)


def test_options_and_a_missing_extra_are_one_line_errors(monkeypatch):
    with pytest.raises(ValueError, match="option steps must be >= 1"):
        TaskOptions(steps=0)
    with pytest.raises(ValueError, match="option task must be one of"):
        TaskOptions(task="mnist")
    with pytest.raises(ValueError, match="embed is for classification and icl"):
        TaskOptions(task="digits", embed=4)
    with pytest.raises(ValueError, match="transition_init 'rotation' applies to transition="):
        TaskOptions(transition="diagonal", transition_init="rotation")  # before any data loads
    with pytest.raises(ImportError, match=r"pip install 'warp-phys\[tasks\]'"):
        optional("warp_phys_no_such_module")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as if not installed
    assert cli(["task", "--task", "digits", "--steps", "1"]) == 2


def test_task_command_trains_tests_and_writes_a_checkpoint(tmp_path, capsys):
    tiny = ["--steps", "3", "--batch-size", "4", "--root-width", "4", "--val-every", "2",
            "--icl-dim", "2", "--icl-pairs", "5"]  # fmt: skip
    assert cli(["task", "--task", "icl", "--model", "warp", *tiny, "--out", str(tmp_path)]) == 0
    assert "warp on icl: test mse" in capsys.readouterr().out
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["result"]["metric"] == "mse" and len(saved["result"]["curve"]) == 5
    assert isinstance(wp.load_model(tmp_path / "best.eqx"), wp.WARP)


def _example(name: str):
    sys.path.insert(0, str(EXAMPLES))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.mark.slow  # three tiny trainings, ~1 min on 2 loaded cores
def test_examples_run_with_tiny_settings(tmp_path):
    pytest.importorskip("aeon")
    pytest.importorskip("sklearn")
    accuracy = _example("classify_basic_motions").main(["--steps", "2", "--width", "4"])
    assert 0 <= accuracy <= 1
    out = tmp_path / "digits.png"
    result = _example("complete_digits").main(["--model", "gru", "--steps", "2", "--out", str(out)])
    assert result["completions"].shape == (8, 32) and out.exists()
    result = _example("icl_regression").main(["--steps", "2", "--pairs", "5"])
    assert len(result["curve"]) == 5
