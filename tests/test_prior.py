"""PhysicalPrior and its readouts: one decomposition for every prior, normalisation that
the prior never sees, a latent readout that is the trajectory's and trains, and user
priors with a step and with units."""

import uuid

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import warp_phys as wp
from warp_phys.decoders import (
    DampedOscillatorDecoder,
    ParameterSpec,
    PhysicalPrior,
    SinusoidDecoder,
    SinusoidPhaseDecoder,
    decoder_from_function,
    decoder_from_sympy,
    list_readouts,
)

SMALL = dict(width=4, depth=1)
READOUTS = ("direct", "weights", "latent", "latent_unit")


def duffing_step(p, tau, x, dt):
    """One symplectic-Euler step of x'' = -a x - b x^3 - c x' (physical units)."""
    del tau
    v = x[1] + dt * (-p["a"] * x[0] - p["b"] * x[0] ** 3 - p["c"] * x[1])
    return jnp.stack([x[0] + dt * v, v])


def duffing_numpy(a, b, c, x, dt):
    v = x[1] + dt * (-a * x[0] - b * x[0] ** 3 - c * x[1])
    return np.array([x[0] + dt * v, v])


DUFFING = {
    "a": {"transform": "softplus", "init": 4.0, "unit": "1/s^2"},
    "b": {"init": 0.5, "unit": "1/(m^2 s^2)"},
    "c": {"transform": "softplus", "init": 0.3, "unit": "1/s"},
}


def priors(readout: str, **data) -> dict[str, PhysicalPrior]:
    """Every built-in physical prior with the readout `readout`; `data` = scale, shift."""
    two, one = data, {k: v[:1] for k, v in data.items()}
    return {
        "oscillator": DampedOscillatorDecoder(readout=readout, dt=0.05, **SMALL, **two),
        "analytic": DampedOscillatorDecoder(readout=readout, mode="analytic", **SMALL, **two),
        "sinusoid": SinusoidDecoder(1, learn_amplitude=True, learn_frequency=True,
                                    readout=readout, **SMALL, **one),  # fmt: skip
        "sinusoid_phase": SinusoidPhaseDecoder(1, readout=readout, **SMALL, **one),
        "function": decoder_from_function(duffing_step, parameters=DUFFING, data_size=2,
                                          readout=readout, dt=0.05, **SMALL, **two),  # fmt: skip
        "sympy": decoder_from_sympy("A*sin(w*t) + x0*k", transforms={"w": "softplus"},
                                    readout=readout, **SMALL, **one),  # fmt: skip
    }


def point(decoder, key):
    """Some (params, tau, x_prev) away from the initialisation."""
    k1, k2 = jax.random.split(key)
    params = decoder.init_params(k1)
    noise = jax.tree.map(lambda a: 0.3 * jnp.ones_like(a), params)
    params = jax.tree.map(jnp.add, params, noise)
    x = 0.5 * jax.random.normal(k2, (decoder.data_size,))
    return params, jnp.asarray(0.3), x


def test_every_readout_is_registered():
    assert set(READOUTS) <= set(wp.list_readouts()) == set(list_readouts())


@pytest.mark.parametrize("readout", READOUTS)
def test_call_is_predict_of_the_physical_parameters(readout):
    data = dict(scale=[2.0, 10.0], shift=[0.5, -1.0])
    for name, decoder in priors(readout, **data).items():
        params, tau, x = point(decoder, jax.random.PRNGKey(1))
        physical = decoder.physical_parameters(params, tau, x)
        assert set(physical) == set(decoder.parameter_names), name
        raw = decoder.raw_parameters(params, tau, x)
        for spec in decoder.parameters:  # declared shapes, transforms applied
            assert physical[spec.name].shape == spec.shape, name
            want = wp.decoders.get_transform(spec.transform)(raw[spec.name])
            np.testing.assert_array_equal(physical[spec.name], want)
        np.testing.assert_array_equal(
            decoder(params, tau, x), decoder.predict(physical, tau, x), err_msg=name
        )


def test_normalisation_is_invisible_to_a_physical_prior():
    """The same physical parameters and state give the same physical prediction whatever
    the data's scale and shift, and that prediction is a plain numpy step."""
    scale, shift = np.array([2.0, 10.0]), np.array([0.5, -1.0])
    x = np.array([0.7, -2.0])  # physical units
    plain = priors("direct")
    normed = priors("direct", scale=scale.tolist(), shift=shift.tolist())
    references = {
        "oscillator": lambda p: scipy.linalg.expm(
            0.05 * np.array([[0, 1], [-p["omega0"] ** 2, -2 * p["zeta"] * p["omega0"]]])
        ) @ x,
        "function": lambda p: duffing_numpy(p["a"], p["b"], p["c"], x, 0.05),
    }
    for name, reference in references.items():
        params = plain[name].init_params(jax.random.PRNGKey(0))
        p = plain[name].physical_parameters(params, 0.0, jnp.asarray(x))
        p_normed = normed[name].physical_parameters(params, 0.0, jnp.asarray((x - shift) / scale))
        for k in p:  # the parameters are the trajectory's physics, not the data's units
            np.testing.assert_allclose(p_normed[k], p[k], rtol=1e-6)
        want = reference({k: float(v) for k, v in p.items()})
        in_data_units = normed[name](params, 0.0, jnp.asarray((x - shift) / scale))
        np.testing.assert_allclose(np.asarray(in_data_units) * scale + shift, want, rtol=1e-4)
        np.testing.assert_allclose(plain[name](params, 0.0, jnp.asarray(x)), want, rtol=1e-4)
    # units="normalised": fn sees the data as they are (the old behaviour), scale ignored
    raw_units = decoder_from_function(duffing_step, parameters=DUFFING, data_size=2, dt=0.05,
                                      units="normalised", scale=scale, shift=shift,
                                      readout="direct")  # fmt: skip
    z = jnp.asarray((x - shift) / scale)
    y = raw_units(raw_units.init_params(jax.random.PRNGKey(0)), 0.0, z)
    np.testing.assert_allclose(y, duffing_numpy(4.0, 0.5, 0.3, np.asarray(z), 0.05), rtol=1e-4)


def test_latent_readout_is_the_trajectorys_and_starts_at_the_init_values():
    decoder = DampedOscillatorDecoder(readout="latent", latent_size=3, omega0_init=19.0, **SMALL)
    assert decoder.theta_size == 3
    params = decoder.init_params(jax.random.PRNGKey(0))
    at = [decoder.physical_parameters(params, jnp.asarray(t), jnp.asarray(x))
          for t, x in ((0.0, [0.0, 0.0]), (0.9, [3.0, -5.0]))]  # fmt: skip
    for k in ("omega0", "zeta"):
        assert float(at[0][k]) == float(at[1][k])  # neither tau nor x_prev enters
    np.testing.assert_allclose([at[0]["omega0"], at[0]["zeta"]], [19.0, 0.1], rtol=0.05)
    # another code, other parameters: theta_t carries them
    other = decoder.physical_parameters({"z": params["z"] + 50.0}, 0.0, jnp.zeros(2))
    assert float(other["omega0"]) != float(at[0]["omega0"])


def test_unit_latent_readout_reads_the_direction_of_the_code():
    decoder = DampedOscillatorDecoder(readout="latent_unit", latent_size=4, **SMALL)
    z = decoder.init_params(jax.random.PRNGKey(2))["z"]
    read = [decoder.physical_parameters({"z": s * z}, 0.0, jnp.zeros(2)) for s in (1.0, 0.01, 30.0)]
    for k in ("omega0", "zeta"):
        np.testing.assert_allclose([float(r[k]) for r in read], float(read[0][k]), rtol=1e-5)
    turned = decoder.physical_parameters({"z": z.at[0].add(1.0)}, 0.0, jnp.zeros(2))
    assert float(turned["omega0"]) != float(read[0]["omega0"])


def test_latent_readout_weights_train_through_warp():
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
    model = wp.WARP(2, decoder="damped_oscillator", root_width=4, root_depth=1, hyper_width=4,
                    decoder_options={"readout": "latent", "latent_size": 3}, seq_len=8,
                    key=jax.random.PRNGKey(0))  # fmt: skip
    g = model.decoder.readout.g
    trainable = eqx.filter(model, eqx.is_inexact_array)
    assert jax.tree.leaves(trainable.decoder.readout.g)  # the readout's weights are leaves
    assert model.theta_size == 3

    @eqx.filter_grad
    def grad(m):
        return jnp.mean((m(xs) - xs[1:]) ** 2)

    grads = grad(model).decoder.readout.g
    assert len(jax.tree.leaves(grads)) == len(jax.tree.leaves(g))
    for leaf in jax.tree.leaves(grads):
        assert bool(jnp.all(jnp.isfinite(leaf))) and float(jnp.max(jnp.abs(leaf))) > 0


def test_a_user_prior_with_a_step_and_units():
    name = f"duffing_{uuid.uuid4().hex[:8]}"
    prior = decoder_from_function(duffing_step, parameters=DUFFING, data_size=2, name=name,
                                   readout="direct")
    assert prior.parameter_names == ("a", "b", "c") and prior.takes_dt and prior.dt is None
    assert prior.parameter_units == {"a": "1/s^2", "b": "1/(m^2 s^2)", "c": "1/s"}
    params = prior.init_params(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="takes dt"):
        prior(params, 0.0, jnp.zeros(2))
    # by name, WARP gives it dt = 1 / (seq_len - 1) and the data's units
    model = wp.WARP(2, decoder=name, seq_len=11, data_scale=[2.0, 3.0], data_shift=[1.0, 0.0],
                    hyper_width=4, key=jax.random.PRNGKey(0))  # fmt: skip
    decoder = model.decoder
    assert decoder.dt == 0.1 and (decoder.scale, decoder.shift) == ((2.0, 3.0), (1.0, 0.0))
    x = np.array([0.4, -0.2])
    p = decoder.physical_parameters(params, 0.0, jnp.asarray(x))
    np.testing.assert_allclose([p["a"], p["b"], p["c"]], [4.0, 0.5, 0.3], rtol=1e-5)
    y = decoder(params, 0.0, jnp.asarray(x))
    physical = duffing_numpy(4.0, 0.5, 0.3, x * [2.0, 3.0] + [1.0, 0.0], 0.1)
    np.testing.assert_allclose(y, (physical - [1.0, 0.0]) / [2.0, 3.0], rtol=1e-4)
    # the same parameters in the old form, and ParameterSpecs
    old = decoder_from_function(duffing_step, {"a": (), "b": (), "c": ()}, data_size=2, dt=0.1,
                                transforms={"a": "softplus", "c": "softplus"},
                                init={"a": 4.0, "b": 0.5, "c": 0.3}, readout="direct")  # fmt: skip
    specs = [ParameterSpec("a", (), "softplus", 4.0, "1/s^2"), ParameterSpec("b", init=0.5),
             ParameterSpec("c", (), "softplus", 0.3)]  # fmt: skip
    typed = decoder_from_function(duffing_step, parameters=specs, data_size=2, dt=0.1,
                                  readout="direct")
    for other in (old, typed):
        np.testing.assert_allclose(other(params, 0.0, jnp.asarray(x)),
                                   duffing_numpy(4.0, 0.5, 0.3, x, 0.1), rtol=1e-4)  # fmt: skip
    assert typed.parameter_units["a"] == "1/s^2"
    # a dt with a default value keeps it until a dt is given
    with_default = decoder_from_function(lambda p, tau, x, dt=0.25: x + dt * p["a"],
                                         {"a": ()}, data_size=2, init={"a": 1.0},
                                         readout="direct")  # fmt: skip
    one = with_default.init_params(jax.random.PRNGKey(0))
    np.testing.assert_allclose(with_default(one, 0.0, jnp.zeros(2)), [0.25, 0.25])
    given = decoder_from_function(with_default.fn, {"a": ()}, data_size=2, init={"a": 1.0}, dt=0.5,
                                  readout="direct")
    np.testing.assert_allclose(given(one, 0.0, jnp.zeros(2)), [0.5, 0.5])
    formula = decoder_from_sympy("a*t + b", units_of={"a": "m/s"})
    assert formula.parameter_units == {"a": "m/s", "b": ""}
    with pytest.raises(ValueError, match="units_of names unknown"):
        decoder_from_sympy("a*t", units_of={"q": "m"})
    with pytest.raises(ValueError, match="declare the parameters once"):
        decoder_from_function(duffing_step, {"a": ()}, parameters=DUFFING, data_size=2)


def test_old_parametrization_names_and_default_theta_sizes():
    weights = DampedOscillatorDecoder(parametrization="mlp")
    assert weights == DampedOscillatorDecoder(readout="weights") == DampedOscillatorDecoder()
    assert DampedOscillatorDecoder(parametrization="direct") == DampedOscillatorDecoder(
        readout="direct"
    )
    # root 16x2 on [tau] (the default since input_prev=False): 1*16+16 + 16*16+16 + 16*2+2
    assert weights.theta_size == 338
    assert DampedOscillatorDecoder(input_prev=True).theta_size == 338 + 2 * 16  # x_prev's
    with pytest.raises(ValueError, match="not both"):
        DampedOscillatorDecoder(readout="direct", parametrization="mlp")
    with pytest.raises(ValueError, match="unknown readout 'nope'"):
        SinusoidDecoder(readout="nope")
