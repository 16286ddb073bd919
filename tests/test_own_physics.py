"""Your own physics: priors by import path, the named physical parameters a run
identifies (Python and `warp-phys params`), and the checks around forecasting."""

import inspect
import sys
import textwrap
import warnings

import jax
import numpy as np
import pytest

import systems
import warp_phys as wp
from warp_phys import cli
from warp_phys._identify import (
    parameter_summary,
    scalar_components,
    state_trajectory,
    true_parameters,
)
from warp_phys.training.evaluation import evaluate_run, reconstruct_run
from warp_phys.training.parameters import table_rows

MODULE = '''
import jax.numpy as jnp
import warp_phys as wp
from warp_phys.decoders import SinusoidDecoder

@wp.decoder_from_function(params={"a": (), "b": (2,)}, data_size=2,
                          transforms={"a": "softplus"}, init={"a": 2.0})
def decay(p, tau, x):
    return x * jnp.exp(-p["a"] * 0.1) + 0.0 * p["b"]

NOT_A_DECODER = 3

class Scaled(SinusoidDecoder):
    """A decoder class: a factory taking data_size and options."""

def physical_factory(data_size, scale=None, shift=None):
    physical_factory.seen = dict(scale=scale, shift=shift)
    return decay

physical_factory.units = "physical"
'''


@pytest.fixture(scope="module")
def priors(tmp_path_factory):
    """A user's module `my_priors_test` on sys.path."""
    folder = tmp_path_factory.mktemp("priors")
    (folder / "my_priors_test.py").write_text(textwrap.dedent(MODULE))
    (folder / "broken_priors_test.py").write_text("1 / 0\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in ("my_priors_test", "broken_priors_test"):
        sys.modules.pop(name, None)


def test_a_decoder_by_import_path(priors):
    import my_priors_test

    assert wp.get_decoder("my_priors_test:decay", data_size=2) is my_priors_test.decay
    scaled = wp.get_decoder("my_priors_test:Scaled", data_size=3, amplitude=2.0)
    assert isinstance(scaled, my_priors_test.Scaled) and scaled.amplitude == 2.0
    # a factory declaring physical units gets the data normalisation, as registered ones do
    wp.make_decoder("my_priors_test:physical_factory", 2, data_scale=[2.0, 3.0], data_shift=[0, 1])
    assert my_priors_test.physical_factory.seen["scale"] == [2.0, 3.0]
    # formulas keep their prefix, registered names keep working
    assert wp.get_decoder("sympy:A*sin(t)", data_size=1).params_spec == (("A", ()),)
    assert wp.get_decoder("mlp", data_size=1, width=2, depth=1).data_size == 1
    model = wp.WARP(2, decoder="my_priors_test:decay", hyper_width=2, seq_len=8,
                    key=jax.random.PRNGKey(0))  # fmt: skip
    assert model.config["decoder"] == "my_priors_test:decay"
    assert model.decoder.fn is my_priors_test.decay.fn
    assert model.decoder.params_spec == (("a", ()), ("b", (2,)))


@pytest.mark.parametrize(
    "spec, match",
    [
        ("no_such_module_xyz:prior", "cannot import module 'no_such_module_xyz'"),
        ("broken_priors_test:prior", "cannot import module 'broken_priors_test'.*ZeroDivision"),
        ("my_priors_test:missing", "module 'my_priors_test' has no attribute 'missing'"),
        ("my_priors_test:NOT_A_DECODER", "'NOT_A_DECODER' is a int, not a decoder"),
    ],
)
def test_import_path_errors_are_one_line_and_name_the_module(priors, spec, match):
    with pytest.raises(ValueError, match=match) as info:
        wp.get_decoder(spec, data_size=2)
    assert "\n" not in str(info.value)


def test_a_ready_built_prior_checks_its_size_and_takes_the_run_settings(priors):
    with pytest.raises(ValueError, match="predicts 2 channels, but the data have 3"):
        wp.get_decoder("my_priors_test:decay", data_size=3)
    # a function prior is rebuilt with the run's settings (normalisation included)
    rebuilt = wp.make_decoder("my_priors_test:decay", 2, root_width=4, root_depth=1,
                              data_scale=[2.0, 3.0], data_shift=[0.0, 1.0], seq_len=11)  # fmt: skip
    assert (rebuilt.width, rebuilt.depth, rebuilt.dt) == (4, 1, 0.1)
    assert (rebuilt.scale, rebuilt.shift) == ((2.0, 3.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="colour"):
        wp.get_decoder("my_priors_test:decay", data_size=2, colour=4)


@pytest.fixture(scope="module")
def oscillator():
    model = wp.WARP(2, decoder="damped_oscillator", root_width=4, root_depth=1, hyper_width=4,
                    seq_len=12, key=jax.random.PRNGKey(0))  # fmt: skip
    xs = jax.random.normal(jax.random.PRNGKey(1), (3, 12, 2))
    return model, xs


def test_parameter_trajectory_reads_the_named_parameters(oscillator):
    model, xs = oscillator
    batch = wp.parameter_trajectory(model, xs, context=5)
    assert sorted(batch) == ["omega0", "zeta"] and batch["omega0"].shape == (3, 12)
    one = wp.parameter_trajectory(model, xs[1], context=5)
    np.testing.assert_allclose(one["zeta"], batch["zeta"][1], rtol=1e-5)
    # theta_t read at tau_{t+1} with the input it consumed: what the decoder uses
    thetas, inputs = state_trajectory(model, xs[1], 5)
    direct = model.decoder.physical_parameters(
        model.decoder.unflatten(thetas[7]), model.tau(8), inputs[7]
    )
    np.testing.assert_allclose(one["omega0"][7], direct["omega0"], rtol=1e-5)
    with pytest.raises(ValueError, match="MLPDecoder has no physical parameters"):
        wp.parameter_trajectory(wp.WARP(1, hyper_width=2, key=jax.random.PRNGKey(0)), xs[0, :, :1])


def test_parameter_summary_is_the_context_end_and_the_forecast_spread(oscillator):
    model, xs = oscillator
    series = np.asarray(wp.parameter_trajectory(model, xs, context=5)["omega0"])
    summary = parameter_summary(model, xs, 5)["omega0"]
    np.testing.assert_allclose(summary["value"], series[:, 4], rtol=1e-6)
    np.testing.assert_allclose(summary["range"], np.ptp(series[:, 4:11], axis=1), rtol=1e-5)
    np.testing.assert_allclose(summary["std"], series[:, 4:11].std(axis=1), rtol=1e-4)
    with pytest.raises(ValueError, match="leaves no step to forecast"):
        parameter_summary(model, xs, 12)


def test_vector_parameters_and_truth_are_per_component(tmp_path):
    values = {"a": np.zeros((4, 7)), "b": np.ones((4, 7, 2))}
    assert list(scalar_components(values, lead=2)) == ["a", "b[0]", "b[1]"]
    y = np.zeros((3, 5, 2), np.float32)
    np.savez(tmp_path / "mine.npz", y=y, **{"params/alpha": [1.0, 2.0, 3.0]})
    data = systems.load(tmp_path / "mine.npz")
    np.testing.assert_array_equal(true_parameters(data)["alpha"], [1, 2, 3])
    np.savez(tmp_path / "msd.npz", y=y, **{"params/m": [1.0, 2.0, 3.0]})  # named like a system
    assert list(true_parameters(systems.load(tmp_path / "msd.npz"))) == ["m"]
    msd = systems.generate("msd", 2, split="test")
    assert {"omega0", "zeta"} <= set(true_parameters(msd))
    np.savez(tmp_path / "bad.npz", y=y, **{"params/alpha": [1.0, 2.0]})
    with pytest.raises(ValueError, match="params/alpha must hold real numbers, one row per"):
        systems.load(tmp_path / "bad.npz")


def test_dataset_repr_is_short():
    data = systems.generate("msd", 40, split="test")
    text = repr(data)
    assert text == "Dataset('msd', split='test', 40 trajectories x 256 steps x 2 channels, " \
                   "params=[c, k, m])"  # fmt: skip


def test_one_default_hypernetwork_width():
    default = inspect.signature(wp.WARP).parameters["hyper_width"].default
    assert wp.RunConfig().hyper_width == default == 32


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("own") / "run"
    config = wp.RunConfig(system="sine", n_train=8, n_val=4, n_test=4, root_width=2,
                          root_depth=1, hyper_width=2, context=4, steps=2, val_every=2,
                          batch_size=4, normalize=False)  # fmt: skip
    run, _ = wp.train_run(config, out, progress=False)
    return run


def test_a_context_that_leaves_nothing_is_an_error_and_long_forecasts_warn(sine_run):
    T = sine_run.model.config["seq_len"]
    y = np.zeros((2, T, 1), np.float32)
    with pytest.raises(ValueError, match="nothing to forecast: the context"):
        reconstruct_run(sine_run, y, context=T)
    with pytest.raises(ValueError, match=f"context {T} leaves no step to score"):
        evaluate_run(sine_run, data=y, context=T)
    with pytest.warns(UserWarning, match=f"past the training length seq_len={T}"):
        reconstruct_run(sine_run, y, context=4, horizon=T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reconstruct_run(sine_run, y, context=4)  # within the training length: silent


def test_training_names_its_units(tmp_path, capsys):
    code = cli.main(["train", "--system", "sine", "--no-normalize", "--n-train", "4", "--n-val",
                     "2", "--root-width", "2", "--root-depth", "1", "--hyper-width", "2",
                     "--context", "4", "--steps", "1", "--val-every", "1",
                     "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "(raw units)" in out and "normalised" not in out


def test_params_needs_a_physical_prior(sine_run, capsys):
    code = cli.main(["params", "--run", str(sine_run.folder)])
    err = capsys.readouterr().err
    assert code == 2 and "MLPDecoder has no physical parameters" in err


def test_params_table_as_csv_rows():
    table = {"ids": ["a", "b"], "parameters": {
        "k": {"value": [1.0, 2.0], "std": [0.1, 0.2], "range": [0.3, 0.4], "true": [1.5, 2.5]},
        "v[0]": {"value": [3.0, 4.0], "std": [0.0, 0.0], "range": [0.0, 0.0]}}}  # fmt: skip
    header, rows = table_rows(table)
    assert header == ["trajectory", "k", "k_std", "k_range", "k_true", "v[0]", "v[0]_std",
                      "v[0]_range"]  # fmt: skip
    assert rows[1] == ["b", 2.0, 0.2, 0.4, 2.5, 4.0, 0.0, 0.0]


def test_median_relative_error_of_a_table_row():
    row = {"value": [1.1, 2.0, 2.7], "refined": [1.0, 2.02, 3.0], "true": [1.0, 2.0, 3.0]}
    assert wp.median_relative_error(row) == pytest.approx(0.1)  # errors 0.1, 0, 0.1
    assert wp.median_relative_error(row, "refined") == pytest.approx(0.0)  # 0, 0.01, 0
    assert wp.median_relative_error({"value": [1.0]}) is None  # no truth
    assert wp.median_relative_error(row, "missing") is None
