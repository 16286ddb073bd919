"""Root decoders: physical priors against independent references, user priors, the
registry, and the safety of the formula parser."""

import builtins
import uuid

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import sympy
import sympy.parsing.sympy_parser as sympy_parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warp_phys as wp
from warp_phys.decoders import (
    DampedOscillatorDecoder,
    FormulaError,
    HybridDecoder,
    MLPDecoder,
    SinusoidDecoder,
    damped_transition,
    decoder_from_function,
    decoder_from_sympy,
    get_decoder,
    list_decoders,
    make_decoder,
    parse_decoder_spec,
    parse_formula,
    register_decoder,
)

T = 24  # sequence length of the training smoke tests


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def msd_matrix(omega0, zeta):
    return np.array([[0.0, 1.0], [-(omega0**2), -2.0 * zeta * omega0]])


# --------------------------------------------------------------------------- sympy decoder

FORMULAS = [
    "A*exp(-gamma*t)*cos(omega*t + phi) + B*tanh(x0)*atan2(x1, 2 + t) - log(1 + t^2)*sinh(B)/4",
    "sqrt(1 + gamma**2)*sin(omega*x1) - abs(B)*erf(t) + A**2/(1 + x0**2) + -pi*E**(-t)",
]


def hand_written(p, tau, x):
    gamma = jax.nn.softplus(p["gamma"])
    A, B, omega, phi = p["A"], p["B"], p["omega"], p["phi"]
    y0 = (
        A * jnp.exp(-gamma * tau) * jnp.cos(omega * tau + phi)
        + B * jnp.tanh(x[0]) * jnp.arctan2(x[1], 2 + tau)
        - jnp.log(1 + tau**2) * jnp.sinh(B) / 4
    )
    y1 = (
        jnp.sqrt(1 + gamma**2) * jnp.sin(omega * x[1])
        - jnp.abs(B) * jax.scipy.special.erf(tau)
        + A**2 / (1 + x[0] ** 2)
        - jnp.pi * jnp.exp(-tau)
    )
    return jnp.stack([y0, y1])


def test_sympy_decoder_matches_hand_written_jax():
    decoder = decoder_from_sympy(
        FORMULAS, params=["A", "gamma", "omega", "phi", "B"], transforms={"gamma": "softplus"},
        readout="direct",  # theta_t = the raw parameters, compared with the hand-written fn
    )
    assert decoder.data_size == 2 and decoder.theta_size == 5
    rng = np.random.default_rng(0)
    names = ["A", "gamma", "omega", "phi", "B"]
    params = {n: jnp.asarray(rng.normal(size=16), jnp.float32) for n in names}
    tau = jnp.asarray(rng.uniform(0, 1, 16), jnp.float32)
    x = jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)
    weights = jnp.asarray([0.7, -1.3])

    for f in (decoder, hand_written):
        assert f(jax.tree.map(lambda a: a[0], params), tau[0], x[0]).shape == (2,)

    def values_and_grads(f):
        # gradients of a weighted sum of the outputs w.r.t. parameters, tau and x_prev
        scalar = lambda p, t, xp: jnp.dot(weights, f(p, t, xp))
        return jax.jit(jax.vmap(lambda *a: (f(*a), jax.grad(scalar, argnums=(0, 1, 2))(*a))))

    got, want = (values_and_grads(f)(params, tau, x) for f in (decoder, hand_written))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    for g, w in zip(jax.tree.leaves(got[1]), jax.tree.leaves(want[1]), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_every_whitelisted_function_compiles_to_jax():
    # One formula using each function once, against numpy (an independent reference).
    formula = (
        "exp(a) + log(2 + a) + ln(3 + a) + sqrt(1 + a^2) + abs(a) + sign(a) + sin(a) + cos(a)"
        " + tan(a) + sinh(a) + cosh(a) + tanh(a) + asin(tanh(a)) + acos(tanh(a)) + atan(a)"
        " + asinh(a) + acosh(2 + a^2) + atanh(tanh(a)/2) + atan2(a, 2) + erf(a) + arcsin(0.1*a)"
        " + arccos(0.1*a) + arctan(a) + arcsinh(a) + arccosh(3 + a^2) + arctanh(0.1*a)"
        " + arctan2(1, a)"
    )
    a = -0.37
    th = np.tanh(a)
    want = (
        np.exp(a) + np.log(2 + a) + np.log(3 + a) + np.sqrt(1 + a**2) + abs(a) + np.sign(a)
        + np.sin(a) + np.cos(a) + np.tan(a) + np.sinh(a) + np.cosh(a) + th + np.arcsin(th)
        + np.arccos(th) + np.arctan(a) + np.arcsinh(a) + np.arccosh(2 + a**2)
        + np.arctanh(th / 2) + np.arctan2(a, 2) + float(sympy.erf(a)) + np.arcsin(0.1 * a)
        + np.arccos(0.1 * a) + np.arctan(a) + np.arcsinh(a) + np.arccosh(3 + a**2)
        + np.arctanh(0.1 * a) + np.arctan2(1, a)
    )
    decoder = decoder_from_sympy(formula, params=["a"], readout="direct")
    got = decoder({"a": jnp.asarray(a)}, jnp.asarray(0.0), jnp.zeros(1))
    np.testing.assert_allclose(got, [want], rtol=1e-5)


def test_sympy_inputs_time_and_expression_objects():
    # x0, x1 are the channels of x_prev; a sympy expression works like the string.
    s, k = sympy.symbols("s k")
    # readout="direct": theta_t holds the parameter values given below
    from_expr = decoder_from_sympy([s * k, -k], time="s", params=["k"], readout="direct")
    from_string = parse_decoder_spec("sympy: k*t ; -k + 0*x1", data_size=2, readout="direct")
    assert from_string.params_spec == (("k", ()),)
    p = {"k": jnp.asarray(1.5)}
    np.testing.assert_allclose(from_expr(p, 0.5, jnp.zeros(2)), [0.75, -1.5])
    np.testing.assert_allclose(from_string(p, 0.5, jnp.zeros(2)), [0.75, -1.5])
    prev = decoder_from_sympy("x0 + c*x1; x1", readout="direct")
    assert prev.params_spec == (("c", ()),)
    np.testing.assert_allclose(prev(p | {"c": 2.0}, 0.0, jnp.asarray([1.0, 3.0])), [7.0, 3.0])
    renamed = decoder_from_sympy(["q - c*v", "v"], inputs=["q", "v"], readout="direct")
    np.testing.assert_allclose(renamed({"c": 2.0}, 0.0, jnp.asarray([1.0, 3.0])), [-5.0, 3.0])
    with pytest.raises(ValueError, match="channel 3"):
        parse_decoder_spec("sympy: x3*c; c", data_size=2)
    with pytest.raises(ValueError, match="2 formula"):
        parse_decoder_spec("sympy: a; b", data_size=3)
    with pytest.raises(ValueError, match="no learned parameters"):
        parse_decoder_spec("sympy: sin(t)", data_size=1)


def test_transforms_and_init_in_constrained_space():
    decoder = decoder_from_sympy(
        "A*sin(omega*t) + p",
        params=["A", "omega", "p"],
        transforms={"omega": "softplus", "p": ("bounded", -2.0, 3.0)},
        init={"omega": 6.0, "A": 0.5, "p": 2.5},
        readout="direct",  # theta_0 = the raw initial values, exactly
    )
    raw = decoder.init_params(jax.random.PRNGKey(0))
    values = decoder.constrain(raw)
    got = [values["omega"], values["A"], values["p"]]
    np.testing.assert_allclose(got, [6.0, 0.5, 2.5], rtol=1e-5)
    extreme = decoder.constrain({"A": 0.0, "omega": -50.0, "p": 80.0})
    assert extreme["omega"] > 0 and extreme["p"] <= 3.0
    with pytest.raises(ValueError, match="outside the range"):
        decoder_from_sympy("a*t", params=["a"], transforms={"a": "softplus"}, init={"a": -1.0})
    with pytest.raises(ValueError, match="unknown transform"):
        decoder_from_sympy("a*t", params=["a"], transforms={"a": "positive-ish"})


def test_the_log_transform_reads_ratios_and_inverts_exactly():
    from warp_phys.decoders._transforms import get_transform, inverse_transform

    values = np.array([0.5, 10.0, 40.0])
    raw = inverse_transform(("log", 10.0), values)
    np.testing.assert_allclose(raw, np.log(values / 10.0), rtol=1e-12)
    np.testing.assert_allclose(get_transform(["log", 10.0])(jnp.asarray(raw)), values, rtol=1e-6)
    with pytest.raises(ValueError, match="needs finite c > 0"):
        get_transform(("log", -1.0))
    with pytest.raises(ValueError, match="outside the range"):
        inverse_transform(("log", 10.0), 0.0)
    osc = wp.decoders.get_decoder(
        "damped_oscillator", data_size=2, log_omega0=True, omega0_init=12.0
    )
    assert osc.parameters[0].transform == ("log", 12.0)


# --------------------------------------------------------------------------- damped oscillator

# (omega0, zeta); with dt = 1/255 the branch of `damped_transition` is set by
# q = (omega0 dt)^2 (zeta^2 - 1): "under" q = -0.055 (cos/sin), "under_series" q = -0.006
# (Taylor series, typical of the paper's MSD data), "critical" q = 0, "over" q = 0.049.
CASES = {
    "under": (60.0, 0.1),
    "under_series": (20.0, 0.1),
    "critical": (20.0, 1.0),
    "over": (20.0, 3.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damped_oscillator_matches_solve_ivp(case):
    """256 exact steps (dt = 1/255, so t in [0, 1]) against DOP853 at rtol 1e-13.

    Tolerance: |ours - scipy| <= 1e-10 * (|scipy| + max|scipy|), i.e. relative 1e-10
    with an absolute floor of 1e-10 of the trajectory's amplitude (for zero crossings).
    """
    omega0, zeta = CASES[case]
    x0 = np.array([1.0, -3.0])
    t = np.linspace(0.0, 1.0, 256)
    ref = scipy.integrate.solve_ivp(
        lambda _, x: msd_matrix(omega0, zeta) @ x, (0.0, 1.0), x0, method="DOP853",
        t_eval=t, rtol=1e-13, atol=1e-15,
    ).y.T
    with jax.enable_x64(True):
        decoder = DampedOscillatorDecoder(
            parametrization="direct", omega0_init=omega0, zeta_init=zeta, dt=1.0 / 255.0
        )
        params = decoder.init_params(jax.random.PRNGKey(0))  # raw zeros: exactly the init values

        def step(x, tau):
            y = decoder(params, tau, x)
            return y, y

        _, rest = jax.lax.scan(step, jnp.asarray(x0), jnp.asarray(t[1:]))
        ours = np.concatenate([x0[None], np.asarray(rest)])
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


ZETAS = [0.0, 0.3, 1.0 - 1e-3, 1.0 - 1e-7, 1.0, 1.0 + 1e-7, 1.0 + 1e-3, 1.7, 25.0]
OMEGAS = [17.0, 200.0]  # small and large omega0 * dt, so every branch is visited


def test_damped_transition_matches_expm_and_its_frechet_derivative():
    """Values against `scipy.linalg.expm` and d/d(zeta) against `expm_frechet`, both to
    relative 1e-12 (values) and 1e-9 (derivatives) of the matrix norm, exactly at and
    around critical damping."""
    dt = 1.0 / 255.0
    branches = set()
    with jax.enable_x64(True):
        f = jax.jit(lambda w, z: damped_transition(w, z, dt))
        jac = jax.jit(jax.jacfwd(lambda w, z: damped_transition(w, z, dt), argnums=1))
        rev = jax.jit(jax.grad(lambda w, z: jnp.sum(damped_transition(w, z, dt) ** 2), argnums=1))
        for omega0 in OMEGAS:
            dE = np.array([[0.0, 0.0], [0.0, -2.0 * omega0]])  # d E / d zeta
            for zeta in ZETAS:
                q = (omega0 * dt) ** 2 * (zeta**2 - 1)
                branches.add("series" if abs(q) < 1e-2 else "over" if q > 0 else "under")
                M, dM = scipy.linalg.expm_frechet(dt * msd_matrix(omega0, zeta), dt * dE)
                ours = np.asarray(f(omega0, zeta))
                np.testing.assert_allclose(ours, M, atol=1e-12 * np.abs(M).max(), rtol=0)
                np.testing.assert_allclose(jac(omega0, zeta), dM, atol=1e-9 * np.abs(dM).max())
                assert np.isfinite(rev(omega0, zeta))
    assert branches == {"series", "over", "under"}
    # float32, exactly critical: finite values and gradients in every argument
    grads = jax.grad(lambda a: jnp.sum(damped_transition(a[0], a[1], a[2])))(
        jnp.asarray([20.0, 1.0, 1.0 / 255.0])
    )
    assert np.all(np.isfinite(grads)) and np.all(np.isfinite(damped_transition(20.0, 1.0, 0.01)))
    # large omega0 * dt, strongly over-damped: no overflow
    big = damped_transition(1e4, 50.0, 1.0)
    assert np.all(np.isfinite(big))


def test_damped_oscillator_analytic_mode_and_normalised_units():
    omega0, zeta = 9.0, 0.2
    x0 = np.array([0.5, 1.0])
    t = np.linspace(0, 1, 11)
    ref = np.stack([scipy.linalg.expm(s * msd_matrix(omega0, zeta)) @ x0 for s in t])
    scale, shift = np.array([2.0, 10.0]), np.array([0.3, -1.0])
    analytic = DampedOscillatorDecoder(
        parametrization="direct", mode="analytic", omega0_init=omega0, zeta_init=zeta,
        scale=scale, shift=shift,
    )
    params = analytic.init_params(jax.random.PRNGKey(0))
    # the initial state is stored in data units
    params["position0"], params["velocity0"] = jnp.asarray((x0 - shift) / scale, jnp.float32)
    ours = jax.vmap(lambda s: analytic(params, s, jnp.zeros(2)))(jnp.asarray(t, jnp.float32))
    np.testing.assert_allclose(ours * scale + shift, ref, rtol=1e-5, atol=1e-5)
    # step mode on normalised data is the exact physical step, normalised
    stepper = DampedOscillatorDecoder(
        parametrization="direct", omega0_init=omega0, zeta_init=zeta, dt=0.1, scale=scale,
        shift=shift,
    )
    y = stepper(stepper.init_params(jax.random.PRNGKey(0)), 0.0,
                jnp.asarray((x0 - shift) / scale, jnp.float32))
    want = scipy.linalg.expm(0.1 * msd_matrix(omega0, zeta)) @ x0
    np.testing.assert_allclose(np.asarray(y) * scale + shift, want, rtol=1e-5)
    with pytest.raises(ValueError, match="data_size must be 2"):
        get_decoder("damped_oscillator", data_size=3)


# --------------------------------------------------------------------------- small decoders


def test_sinusoid_and_hybrid_forward_maps():
    dec = SinusoidDecoder(2, width=4, depth=1, learn_amplitude=True, learn_frequency=True,
                          amplitude=2.0, frequency=3.0)
    params = dec.init_params(jax.random.PRNGKey(0))
    # a zero last layer with bias b gives phase b[:2], amplitude and frequency from b[2:]
    b = jnp.asarray([0.1, -0.2, 0.0, 0.0, 0.0, 0.0])
    params = (*params[:-1], {"weight": jnp.zeros_like(params[-1]["weight"]), "bias": b})
    np.testing.assert_allclose(
        dec(params, 0.3, jnp.zeros(2)), 2.0 * np.sin(2 * np.pi * 3.0 * 0.3 + np.array([0.1, -0.2])),
        rtol=1e-5,
    )
    phase = get_decoder("sinusoid_phase", data_size=1)
    assert phase.theta_size == 1
    np.testing.assert_allclose(phase({"phase": jnp.asarray([0.4])}, 0.25, jnp.zeros(1)),
                               [np.sin(np.pi / 2 + 0.4)], rtol=1e-6)
    hybrid = HybridDecoder(1, physics="sinusoid_phase", width=4, depth=1)
    hp = hybrid.init_params(jax.random.PRNGKey(1))
    assert hybrid.theta_size == 1 + (2 * 4 + 4) + (4 + 1)
    from warp_phys.decoders.mlp import mlp_apply

    residual = mlp_apply(hp["residual"], jnp.asarray([0.25, 0.5]), jax.nn.swish)
    np.testing.assert_allclose(
        hybrid(hp, 0.25, jnp.asarray([0.5])), phase(hp["physics"], 0.25, None) + residual, rtol=1e-6
    )


# --------------------------------------------------------------------------- WARP smoke tests


@pytest.fixture(scope="module")
def sine_data():
    t = np.linspace(0, 1, T)
    phase = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 1, 1))
    return np.sin(2 * np.pi * t[None, :, None] + phase).astype(np.float32)


@pytest.fixture(scope="module")
def msd_data():
    rng = np.random.default_rng(1)
    out = []
    for _ in range(8):
        E = msd_matrix(rng.uniform(8, 12), rng.uniform(0.05, 0.3))
        step = scipy.linalg.expm(E / (T - 1))
        x = [np.array([1.0, 0.0]) + rng.uniform(-0.3, 0.3, 2)]
        for _ in range(T - 1):
            x.append(step @ x[-1])
        out.append(np.stack(x) / np.array([1.0, 10.0]))  # velocity in units of 10
    return np.asarray(out, np.float32)


SMOKE = {
    "mlp": ("sine", {"width": 8, "depth": 1}),
    "sinusoid": ("sine", {"width": 8, "depth": 1}),
    "sinusoid_phase": ("sine", {}),
    "damped_oscillator": ("msd", {"width": 8, "depth": 1, "dt": 1 / (T - 1), "scale": [1.0, 10.0]}),
    # the oscillator inside a hybrid is exercised above; a cheaper physics part here
    "hybrid": ("sine", {"width": 8, "depth": 1, "physics": "sinusoid_phase"}),
    "sympy:A*sin(2*pi*t + phi)": ("sine", {}),
}


def test_every_builtin_decoder_is_smoke_tested():
    assert set(list_decoders()) >= {n for n in SMOKE if ":" not in n}
    assert {"mlp", "sinusoid", "sinusoid_phase", "damped_oscillator", "hybrid"} <= set(SMOKE)


@pytest.mark.parametrize("name", list(SMOKE))
def test_warp_trains_and_reconstructs_with_decoder(name, sine_data, msd_data):
    kind, options = SMOKE[name]
    data = sine_data if kind == "sine" else msd_data
    model = wp.WARP(data.shape[2], decoder=name, decoder_options=options, hyper_width=8,
                    seq_len=T, key=jax.random.PRNGKey(0))
    objective = wp.ObjectiveOptions(kind="teacher_forced", mode="sequential")
    model, history = wp.train(model, data, steps=8, batch_size=8,
                              optimizer=wp.OptimizerOptions(lr=1e-2), objective=objective,
                              key=jax.random.PRNGKey(1), progress=False)
    assert history["loss"][-1] < history["loss"][0]
    forecast = wp.reconstruct(model, jnp.asarray(data[:2, :6]), T - 6, mode="sequential")
    assert forecast.shape == (2, T - 6, data.shape[2]) and bool(jnp.all(jnp.isfinite(forecast)))


def test_spec_and_named_priors_survive_a_checkpoint(tmp_path):
    name = unique("wave")
    decoder_from_function(
        lambda p, tau, x: p["a"] * jnp.sin(p["w"] * tau + x), {"a": (), "w": ()},
        data_size=1, transforms={"w": "softplus"}, name=name,
    )
    for spec in (name, "sympy: a*cos(w*t) + x0"):
        model = wp.WARP(1, decoder=spec, hyper_width=4, seq_len=T, key=jax.random.PRNGKey(2))
        model = eqx.tree_at(lambda m: m.B, model, model.B + 0.5)
        wp.save_model(tmp_path / "m.eqx", model)
        loaded = wp.load_model(tmp_path / "m.eqx")
        np.testing.assert_array_equal(loaded.B, model.B)
        assert loaded.decoder.params_spec == model.decoder.params_spec


# --------------------------------------------------------------------------- function priors


def test_decoder_from_function_decorator_and_shape_check():
    # readout="direct": theta_t holds omega and phase themselves
    @decoder_from_function(params={"omega": (), "phase": (2,)}, data_size=2,
                           transforms={"omega": "softplus"}, init={"omega": 3.0},
                           readout="direct")
    def wave(p, tau, x_prev):
        return jnp.sin(p["omega"] * tau + p["phase"])

    params = wave.init_params(jax.random.PRNGKey(0))
    assert wave.theta_size == 3
    np.testing.assert_allclose(wave(params, 0.5, jnp.zeros(2)),
                               np.sin(1.5 + np.asarray(params["phase"])), rtol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        decoder_from_function(wave.fn, {"omega": (), "phase": (2,)}, data_size=3)
    with pytest.raises(ValueError, match="failed when called"):
        decoder_from_function(lambda p, tau, x: p["missing"], {"a": ()}, data_size=1)
    with pytest.raises(ValueError, match="unknown parameter"):
        decoder_from_function(wave.fn, {"omega": ()}, data_size=2, transforms={"phase": "exp"})
    scalar = decoder_from_function(lambda p, tau, x: p["a"] * tau, {"a": ()}, data_size=1,
                                   readout="direct")
    assert scalar({"a": jnp.asarray(2.0)}, 0.5, jnp.zeros(1)).shape == (1,)
    with pytest.raises(ValueError, match="must return a float array"):
        decoder_from_function(lambda p, tau, x: p["a"] * tau, {"a": ()}, data_size=2)


# --------------------------------------------------------------------------- registry


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown decoder 'nope'.*damped_oscillator.*mlp"):
        get_decoder("nope", data_size=1)
    with pytest.raises(ValueError, match="unknown decoder"):
        wp.WARP(1, decoder="nope", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="already registered"):
        register_decoder("mlp")(lambda data_size: None)
    name = unique("dup")
    first = decoder_from_function(lambda p, t, x: p["a"] * x, {"a": ()}, data_size=1, name=name)
    with pytest.raises(ValueError, match="already registered"):
        decoder_from_function(lambda p, t, x: p["b"] * x, {"b": ()}, data_size=1, name=name)
    assert get_decoder(name, data_size=1) is first
    second = decoder_from_function(lambda p, t, x: p["b"] * x, {"b": ()}, data_size=1, name=name,
                                   overwrite=True)
    assert get_decoder(name, data_size=1) is second
    with pytest.raises(ValueError, match="predicts 1 channels"):
        get_decoder(name, data_size=2)
    with pytest.raises(ValueError, match="does not accept option"):
        get_decoder("sinusoid", data_size=1, widht=3)
    with pytest.raises(ValueError, match="without ':'"):
        register_decoder("a:b")
    with pytest.raises(ValueError, match="unknown decoder spec prefix 'python'"):
        parse_decoder_spec("python:print(1)", data_size=1)
    with pytest.raises(ValueError, match="non-empty"):
        parse_decoder_spec("  ", data_size=1)
    # root_width sizes a formula's default "weights" readout, the MLP [tau, x0] -> 8 -> 8 -> a
    # (unused by "direct"); an unknown option fails with the decoder's own error
    key = jax.random.PRNGKey(0)
    mlp_size = (2 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    assert wp.WARP(1, decoder="sympy:a*t", root_width=8, key=key).theta_size == mlp_size
    direct = wp.WARP(1, decoder="sympy:a*t", root_width=8, decoder_options={"readout": "direct"},
                     key=key)
    assert direct.theta_size == 1
    with pytest.raises(ValueError, match=r"does not accept option\(s\) \['colour'\]"):
        wp.WARP(1, decoder="sympy:a*t", decoder_options={"colour": 8}, key=jax.random.PRNGKey(0))


def test_make_decoder_passes_only_what_each_decoder_declares():
    run = dict(seq_len=11, root_width=4, root_depth=1, data_scale=[2.0, 10.0],
               data_shift=[0.5, -1.0])
    mlp = make_decoder("mlp", 2, **run)
    assert (MLPDecoder.takes_size, MLPDecoder.needs_dt, MLPDecoder.units) == (
        True, False, "normalised")
    assert (mlp.width, mlp.depth) == (4, 1)
    oscillator = make_decoder("damped_oscillator", 2, **run)
    assert (DampedOscillatorDecoder.needs_dt, DampedOscillatorDecoder.units) == (True, "physical")
    assert (oscillator.width, oscillator.depth, oscillator.dt) == (4, 1, 0.1)
    assert (oscillator.scale, oscillator.shift) == ((2.0, 10.0), (0.5, -1.0))
    # the decoder's own options win over the run-level settings
    own = make_decoder("damped_oscillator", 2, **run, dt=0.5, width=3, scale=[1.0, 1.0])
    assert (own.dt, own.width, own.scale, own.shift) == (0.5, 3, (1.0, 1.0), (0.5, -1.0))
    # decoders without a width, a step or physical units never see those settings
    assert make_decoder("sinusoid_phase", 2, **run).theta_size == 2
    assert make_decoder("hybrid", 2, physics="sinusoid_phase", **run).width == 4
    # user priors read their parameters with the run's width and depth: the default
    # "weights" readout is the MLP [tau, x0, x1] -> 4 -> raw parameters
    assert make_decoder("sympy:a*sin(w*t); b*x0", 2, **run).theta_size == (3 * 4 + 4) + (4 * 3 + 3)
    assert make_decoder("sympy:a*sin(w*t); b*x0", 2, **run, readout="direct").theta_size == 3
    name = unique("plain")
    decoder_from_function(lambda p, tau, x: p["a"] * x, {"a": ()}, data_size=2, name=name)
    assert make_decoder(name, 2, **run).theta_size == (3 * 4 + 4) + (4 * 1 + 1)
    assert make_decoder(name, 2, **run, readout="direct").theta_size == 1
    with pytest.raises(ValueError, match=r"does not accept option\(s\) \['colour'\]"):
        make_decoder("mlp", 2, colour="red", **run)
    with pytest.raises(ValueError, match="unknown decoder 'nope'"):
        make_decoder("nope", 2, **run)
    with pytest.raises(FormulaError):
        make_decoder("sympy:a*sin(", 1, **run)


def test_warp_gives_a_physical_decoder_the_data_units_and_keeps_them(tmp_path):
    model = wp.WARP(2, decoder="damped_oscillator", root_width=4, root_depth=1, seq_len=11,
                    data_scale=np.array([2.0, 10.0]), data_shift=[0.5, -1.0], hyper_width=4,
                    key=jax.random.PRNGKey(0))
    assert model.decoder.dt == 0.1 and model.decoder.scale == (2.0, 10.0)
    assert model.config["data_shift"] == [0.5, -1.0]
    wp.save_model(tmp_path / "m.eqx", model)
    assert wp.load_model(tmp_path / "m.eqx").decoder == model.decoder
    # a checkpoint of the old layout (width and step inside decoder_options) still rebuilds
    old = {k: v for k, v in model.config.items() if k not in ("root_width", "root_depth")}
    old["decoder_options"] = {"width": 4, "depth": 1, "dt": 0.1, "scale": [2.0, 10.0],
                              "shift": [0.5, -1.0]}
    del old["data_scale"], old["data_shift"]
    assert wp.WARP(**old, key=jax.random.PRNGKey(0)).decoder == model.decoder
    with pytest.raises(ValueError, match="decoder instance"):
        wp.WARP(2, decoder=model.decoder, data_scale=[1.0, 1.0], key=jax.random.PRNGKey(0))


def test_a_malformed_formula_in_a_run_reports_its_own_error():
    from warp_phys.training.models import build_model

    config = wp.RunConfig(decoder="sympy:A*sin(omega*t")
    with pytest.raises(FormulaError) as info:
        build_model(config, 1, T, key=jax.random.PRNGKey(0))
    assert "does not accept" not in str(info.value)


# --------------------------------------------------------------------------- hostile formulas

ALLOWED_NODES = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Number, sympy.exp,
                 sympy.log, sympy.Abs, sympy.sign, sympy.sin, sympy.cos, sympy.tan, sympy.sinh,
                 sympy.cosh, sympy.tanh, sympy.asin, sympy.acos, sympy.atan, sympy.asinh,
                 sympy.acosh, sympy.atanh, sympy.atan2, sympy.erf)


def assert_harmless(expr, symbols=None):
    for node in sympy.preorder_traversal(expr):
        assert isinstance(node, ALLOWED_NODES) or node in (sympy.pi, sympy.E), node
        if isinstance(node, sympy.Symbol) and symbols is not None:
            assert node.name in symbols
        if isinstance(node, sympy.Number):
            assert np.isfinite(float(node))


def hostile(path):
    return [
        f"__import__('os').system('touch {path}')",
        f"__import__(\"os\").system(\"touch {path}\")",
        f"open('{path}', 'w')",
        f"exp(open('{path}','w').write('x'))",
        "().__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "lambda: 0",
        "(lambda: 0)()",
        "open('x')",
        "x.__globals__",
        "t.real",
        'eval("1")',
        "exec",
        "exec('1')",
        "compile",
        "globals()",
        "import os",
        "[1][0]",
        "{}",
        "a if b else c",
        "a and b",
        "not a",
        "a == b",
        "a < b",
        "x = 1",
        "x; y",
        "x @ y",
        "x % y",
        "x // y",
        "~x",
        "'string'",
        "b'bytes'",
        "1j",
        "exp(x)(1)",
        "f(x)",
        "Symbol('x')",
        "sympify('x')",
        "_x",
        "__builtins__",
        "x,y",
        "exp(x,)",
        "(x",
        "x)",
        ")(",
        "",
        "   ",
        "exp",
        "sin x",
        "2x",
        "x**",
        "*x",
        "x^^2",
        "9**9**9**9",
        "1/0",
        "log(0)",
        "sqrt(-1)",
        "1e999",
        "x\u00b2",
        "\uff58",
        "x\x00",
        "(" * 200 + "x" + ")" * 200,
        "-" * 500 + "x",
        "x" + "**x" * 200,
    ]


@pytest.fixture
def no_code_execution(monkeypatch):
    """Any call of eval/exec or of sympy's string parser fails the test loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"code execution attempted with {args!r}")

    for module, attr in ((builtins, "eval"), (builtins, "exec"), (sympy_parser, "parse_expr"),
                         (sympy_parser, "eval_expr")):
        monkeypatch.setattr(module, attr, forbidden)


def test_hostile_formulas_are_rejected_and_never_executed(tmp_path, no_code_execution):
    marker = tmp_path / "pwned"
    for text in hostile(marker):
        for symbols in (None, ["x", "y", "t", "a", "b", "c"]):
            with pytest.raises(ValueError) as info:
                parse_formula(text, symbols)
            assert isinstance(info.value, FormulaError), text
    # the parser still works without eval/exec, and names the offending token's position
    assert_harmless(parse_formula("a*exp(-b*t)*cos(2*pi*t)", ["a", "b", "t"]))
    assert not marker.exists()


def test_hostile_specs_through_every_entry_point(tmp_path):
    marker = tmp_path / "pwned"
    for text in hostile(marker)[:12]:
        with pytest.raises(ValueError):
            parse_decoder_spec("sympy:" + text, data_size=1)
        with pytest.raises(ValueError):
            decoder_from_sympy(text)
        with pytest.raises(ValueError):
            wp.WARP(1, decoder="sympy:" + text, key=jax.random.PRNGKey(0))
    assert not marker.exists()


def test_parse_error_names_token_and_position():
    with pytest.raises(FormulaError) as info:
        parse_formula("a + b.real", ["a", "b"])
    assert (info.value.token, info.value.position) == (".", 5)
    assert "'.' at position 5" in str(info.value)
    with pytest.raises(FormulaError, match="'open' at position 4"):
        parse_formula("1 + open(x)")
    with pytest.raises(FormulaError, match=r"declared symbols: \['a', 'b'\]\): 'c' at position 4"):
        parse_formula("a + c", ["a", "b"])


TOKENS = ["x", "y", "t", "1", "2.5", "1e3", "+", "-", "*", "/", "**", "^", "(", ")", ",", "exp",
          "sin", "atan2", "sqrt", "log", "pi", "E", ".", "'", '"', "[", "]", "{", "}", ":", "=",
          "__import__", "__class__", "os", "system", "lambda", "open", "eval", "import", "if",
          "else", " ", ";", "@", "\\", "#", "\n", "0", "_", "abs"]


def check_parse(text, symbols):
    try:
        expr = parse_formula(text, symbols)
    except ValueError:
        return
    assert_harmless(expr, symbols)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=40), declared=st.booleans())
def test_random_strings_parse_safely_or_raise_value_error(text, declared):
    check_parse(text, ["x", "y", "t"] if declared else None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soup=st.lists(st.sampled_from(TOKENS), max_size=25), declared=st.booleans())
def test_token_soups_parse_safely_or_raise_value_error(soup, declared):
    check_parse("".join(soup), ["x", "y", "t"] if declared else None)
    check_parse(" ".join(soup), ["x", "y", "t"] if declared else None)


def test_a_model_saved_before_a_decoder_default_changed_loads_as_it_was_built(tmp_path):
    """The oscillator's readout read x_prev by default until 2026-12-02: a WARP now records
    `input_prev` in its config, and a stored config without it (a checkpoint, a run's
    config.json written before) means the old default."""
    import json

    from warp_phys.training.config import stored_config

    key = jax.random.PRNGKey(0)
    new = wp.WARP(2, decoder="damped_oscillator", root_width=4, key=key)
    old = wp.WARP(2, decoder="damped_oscillator", root_width=4,
                  decoder_options={"input_prev": True}, key=key)  # fmt: skip
    assert new.config["decoder_options"] == {"input_prev": False}
    config = old.config
    del config["decoder_options"]["input_prev"]
    object.__setattr__(old, "config_json", json.dumps(config, sort_keys=True))
    wp.save_model(tmp_path / "old.eqx", old)
    loaded = wp.load_model(tmp_path / "old.eqx")
    assert loaded.decoder.settings.input_prev and not new.decoder.settings.input_prev
    assert loaded.theta_size == old.theta_size == new.theta_size + 2 * 4  # x_prev's inputs
    written_before = stored_config(dict(system="msd", decoder="damped_oscillator"))
    assert written_before["decoder_options"] == {"input_prev": True}
    today = stored_config(wp.RunConfig(system="msd", decoder="damped_oscillator"))
    assert today["decoder_options"] == {"input_prev": False}
