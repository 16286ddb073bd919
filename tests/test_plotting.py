"""Figures: every plot kind on tiny briefly-trained models, the numbers behind them
against independent computations, the `plot` command on a tiny run folder, and clear
errors for bad requests."""

import argparse
import dataclasses
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import systems  # noqa: E402
import warp_phys as wp  # noqa: E402
from warp_phys import plotting  # noqa: E402
from warp_phys._plot_command import add_plot_command  # noqa: E402
from warp_phys.decoders import (  # noqa: E402
    DampedOscillatorDecoder,
    HybridDecoder,
    SinusoidDecoder,
    SinusoidPhaseDecoder,
    decoder_from_function,
)
from warp_phys.plotting import plot_run  # noqa: E402
from warp_phys.plotting._reconstruction import _reconstruct  # noqa: E402
from warp_phys.training.config import stored_config  # noqa: E402
from warp_phys.training.models import build_model  # noqa: E402

CONTEXT = 100


# --------------------------------------------------------------------------- fixtures


def msd_closed_form(m, k, c, t):
    """Under-damped m x'' + c x' + k x = 0 from x_0 = (1, 0), solved by hand: an
    independent stand-in for `systems.generate("msd", ...)` (same t grid and x_0)."""
    omega0, zeta = np.sqrt(k / m), c / (2 * np.sqrt(k * m))
    wd, decay = omega0 * np.sqrt(1 - zeta**2), np.exp(-zeta * omega0 * t)
    x = decay * (np.cos(wd * t) + zeta * omega0 / wd * np.sin(wd * t))
    v = -(omega0**2) / wd * decay * np.sin(wd * t)
    return np.stack([x, v], -1)


@pytest.fixture(scope="module")
def data():
    """Two MSD trajectories (T = 256 on [0, 1]) as a `systems.Dataset`, their normaliser
    and their normalised copy."""
    t = np.linspace(0, 1, 256, dtype=np.float32)
    params = {"m": np.array([0.03, 0.025]), "k": np.array([11.0, 6.0]),
              "c": np.array([0.05, 0.15])}  # fmt: skip
    y = np.stack([msd_closed_form(*(params[n][i] for n in "mkc"), t) for i in range(2)])
    ds = systems.Dataset(
        t=t, y=y.astype(np.float32), params={n: v.astype(np.float32) for n, v in params.items()},
        y0=np.tile(np.float32([1, 0]), (2, 1)), name="msd", split="test",
        config={"system": "msd (closed form)", "n": 2},
    )  # fmt: skip
    norm = wp.Normalizer.fit(ds.y)
    return ds, norm, jnp.asarray(norm.apply(ds.y))


def perturb(model, key):
    """An untrained model moved off its initialisation (A = I + noise, B != 0, a
    perturbed hypernetwork), so every figure has something to show. Deterministic."""
    ka, kb, kh = jax.random.split(key, 3)
    D, d = model.B.shape
    A = model.A + 2e-3 * jax.random.normal(ka, (D, D))
    B = 0.1 * jax.random.normal(kb, (D, d))
    hyper = model.hypernetwork.weight
    weight = hyper + 0.05 * jax.random.normal(kh, hyper.shape)
    return eqx.tree_at(lambda m: (m.A, m.B, m.hypernetwork.weight), model, (A, B, weight))


@pytest.fixture(scope="module")
def mlp_model():
    model = wp.WARP(2, root_width=6, root_depth=1, hyper_width=8, key=jax.random.PRNGKey(0))
    return perturb(model, jax.random.PRNGKey(10))


@pytest.fixture(scope="module")
def phys_model(data):
    _, norm, _ = data
    model = wp.WARP(
        2, decoder="damped_oscillator", root_width=6, root_depth=1, hyper_width=8,
        decoder_options={"scale": np.asarray(norm.std).tolist(),
                         "shift": np.asarray(norm.mean).tolist()},
        key=jax.random.PRNGKey(1),
    )  # fmt: skip
    return perturb(model, jax.random.PRNGKey(11))


def check_figure(fig, n_axes, tmp_path, name):
    """The expected number of axes, something drawn in each, a non-empty PNG."""
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == n_axes, [ax.get_label() for ax in fig.axes]
    for ax in fig.axes:
        assert ax.lines or ax.images or ax.collections or ax.patches, ax.get_title()
    path = plotting.save_figure(fig, tmp_path / f"{name}.png")
    assert path.stat().st_size > 1000
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    plt.close(fig)


# --------------------------------------------------------------------------- reconstruction


def test_reconstruction_forecast_matches_reconstruct(data, mlp_model, tmp_path):
    ds, norm, xs = data
    fig = plotting.plot_forecast(
        mlp_model, ds.y, CONTEXT, t=ds.t, indices=[1, 0], normalizer=norm,
        channel_names=["position", "velocity"],
    )  # fmt: skip
    # the same compiled reconstruct (a batch of 2, in the plot's order)
    want = norm.invert(_reconstruct(mlp_model, xs[jnp.array([1, 0]), :CONTEXT], 256 - CONTEXT))[0]
    forecast = fig.axes[0].lines[1]  # truth, forecast, repeat-last
    np.testing.assert_allclose(forecast.get_ydata(), want[:, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(forecast.get_xdata(), ds.t[CONTEXT:])
    assert fig.axes[0].get_ylabel().startswith("trajectory 1")
    check_figure(fig, 4, tmp_path, "reconstruction")


def test_reconstruction_probabilistic_band(data, tmp_path):
    ds, norm, _ = data
    model = wp.WARP(
        2, root_width=4, root_depth=1, hyper_width=4,
        decoder_options={"probabilistic": True}, key=jax.random.PRNGKey(2),
    )  # fmt: skip
    fig = plotting.plot_forecast(model, ds.y, CONTEXT, indices=[0], normalizer=norm)
    for ax in fig.axes:
        assert any(isinstance(c, PolyCollection) for c in ax.collections), "no +-2 std band"
    check_figure(fig, 2, tmp_path, "reconstruction_std")


# --------------------------------------------------------------------------- weights


def test_weights_norms_per_tensor(data, mlp_model, tmp_path):
    ds, _, xs = data
    thetas = np.asarray(mlp_model.weight_trajectory(xs[0]))
    fig = plotting.plot_weights(thetas, decoder=mlp_model.decoder, t=ds.t, context=CONTEXT)
    groups = plotting.weight_groups(mlp_model.decoder)
    norms = fig.axes[1].lines[: len(groups)]
    for line, (label, start, stop) in zip(norms, groups, strict=True):
        assert line.get_label() == label
        np.testing.assert_allclose(
            line.get_ydata(), np.sqrt((thetas[:, start:stop] ** 2).sum(1)), rtol=1e-5
        )
    check_figure(fig, 3, tmp_path, "weights")


# --------------------------------------------------------------------------- belief


def test_belief_diagonal_is_the_teacher_forced_prediction(data, mlp_model, tmp_path):
    ds, norm, xs = data
    belief = np.asarray(plotting.belief_matrix(mlp_model, xs[0]))
    assert belief.shape == (256, 256, 2)
    steps = np.arange(255)
    np.testing.assert_allclose(belief[steps, steps + 1], mlp_model(xs[0]), atol=1e-5)
    # an off-diagonal entry, by hand: theta_40 decoded at step 200 with x_prev = x_199
    theta = mlp_model.weight_trajectory(xs[0])[40]
    np.testing.assert_allclose(belief[40, 200], mlp_model.decode(theta, 200, xs[0, 199]), atol=1e-6)

    fig = plotting.plot_belief(mlp_model, ds.y[0], t=ds.t, normalizer=norm, rows=3)
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, norm.invert(belief)[..., 0], rtol=1e-4, atol=1e-4)
    check_figure(fig, 6, tmp_path, "belief")  # 2 images, 2 row panels, 2 colour bars


def test_belief_rollout_is_a_frozen_theta_loop(data, phys_model, tmp_path):
    ds, norm, xs = data
    belief = np.asarray(plotting.belief_matrix(phys_model, xs[0], feed="rollout"))
    theta = phys_model.weight_trajectory(xs[0])[77]
    decode = jax.jit(lambda th, s, y: phys_model.decode(th, s, y))
    y, rows = xs[0, 0], [decode(theta, 0, xs[0, 0])]
    for s in range(1, 256):
        y = decode(theta, s, y)
        rows.append(y)
    np.testing.assert_allclose(belief[77], np.stack(rows), rtol=1e-4, atol=1e-4)
    fig = plotting.plot_belief(
        phys_model, ds.y[0], t=ds.t, normalizer=norm, feed="rollout", context=CONTEXT
    )
    check_figure(fig, 6, tmp_path, "belief_rollout")


# --------------------------------------------------------------------------- trajectory


def test_pca_against_numpy():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(60, 9)) * np.array([5.0, 2.0] + [0.1] * 7)
    points = points @ np.linalg.qr(rng.normal(size=(9, 9)))[0]
    scores, explained = plotting.pca(points, 2)
    centred = points - points.mean(0)
    u, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    for k in range(2):
        ref = centred @ vt[k]
        sign = np.sign(ref @ np.asarray(scores[:, k]))
        np.testing.assert_allclose(scores[:, k], sign * ref, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(explained, s[:2] ** 2 / (s**2).sum(), rtol=1e-4)
    assert explained[0] > 0.8


def test_gradient_descent_fits_theta_from_theta0(data, mlp_model, tmp_path):
    ds, norm, xs = data
    iterates, losses = plotting.gradient_descent_trajectory(mlp_model, xs[0], steps=20)
    assert iterates.shape == (21, mlp_model.theta_size) and losses.shape == (21,)
    np.testing.assert_allclose(iterates[0], mlp_model.initial_state(xs[0][0]), rtol=1e-6)
    np.testing.assert_allclose(losses[0], plotting.sequence_mse(mlp_model, iterates[0], xs[0]))
    assert losses[-1] < 0.9 * losses[0]
    fig = plotting.plot_trajectory(mlp_model, ds.y[0], normalizer=norm, gd_steps=20)
    warp = fig.axes[0].collections[0].get_offsets()
    assert len(warp) == 256
    check_figure(fig, 4, tmp_path, "trajectory")  # PCA, steps, 2 colour bars
    fig = plotting.plot_trajectory(mlp_model, ds.y[0], normalizer=norm, gd_steps=0)
    check_figure(fig, 3, tmp_path, "trajectory_warp_only")


# --------------------------------------------------------------------------- physics


def swish(x):
    return x / (1 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def test_physics_read_off_equals_hand_computation(data, phys_model, tmp_path):
    """omega0, zeta recomputed from theta_t with numpy: the documented flat layout of
    the damped oscillator's default MLP [tau] -> 6 -> 2 (per layer: bias, then weight
    row-major), swish, and omega0 = omega0_init softplus(raw + log(e - 1))."""
    ds, norm, xs = data
    thetas = np.asarray(phys_model.weight_trajectory(xs[0]), dtype=np.float64)
    b0, W0 = thetas[:, :6], thetas[:, 6:12].reshape(-1, 6, 1)
    b1, W1 = thetas[:, 12:14], thetas[:, 14:26].reshape(-1, 2, 6)
    assert thetas.shape[1] == 26
    inputs = ((np.arange(256) + 1) / 255.0)[:, None]  # theta_t is read at tau_{t+1}
    hidden = swish(np.einsum("tij,tj->ti", W0, inputs) + b0)
    raw = np.einsum("tij,tj->ti", W1, hidden) + b1
    omega0 = 10.0 * softplus(raw[:, 0] + math.log(math.e - 1))
    zeta = 0.1 * softplus(raw[:, 1] + math.log(math.e - 1))

    read = wp.parameter_trajectory(phys_model, xs[0])
    np.testing.assert_allclose(read["omega0"], omega0, rtol=1e-4)
    np.testing.assert_allclose(read["zeta"], zeta, rtol=1e-4)

    m, k, c = (float(ds.params[name][0]) for name in "mkc")
    truth = systems.get_system("msd").physical_parameters({"m": m, "k": k, "c": c})
    fig = plotting.plot_physics(phys_model, ds.y[0], t=ds.t, normalizer=norm, truth=truth)
    omega_ax, zeta_ax = fig.axes
    np.testing.assert_allclose(omega_ax.lines[0].get_ydata(), omega0, rtol=1e-4)
    np.testing.assert_allclose(zeta_ax.lines[0].get_ydata(), zeta, rtol=1e-4)
    assert omega_ax.lines[1].get_ydata()[0] == pytest.approx(math.sqrt(k / m))
    assert zeta_ax.lines[1].get_ydata()[0] == pytest.approx(c / (2 * math.sqrt(k * m)))
    check_figure(fig, 2, tmp_path, "physics")


def test_true_parameters_make_the_physics_decoder_exact(data, tmp_path):
    """A direct-parametrised oscillator whose theta is fixed at the true (omega0, zeta)
    from m, k, c predicts the diffrax data one step ahead: the truth mapping is right,
    and the physics plot reads it back with 0% error."""
    ds, norm, xs = data
    p = {name: float(v[1]) for name, v in ds.params.items()}
    truth = systems.get_system("msd").physical_parameters(p)
    model = wp.WARP(
        2, decoder="damped_oscillator", hyper_depth=0,
        decoder_options={"parametrization": "direct", "scale": np.asarray(norm.std).tolist(),
                         "shift": np.asarray(norm.mean).tolist()},
        key=jax.random.PRNGKey(3),
    )  # fmt: skip
    raw = [math.log(math.expm1(truth[n] / init)) - math.log(math.e - 1)
           for n, init in (("omega0", 10.0), ("zeta", 0.1))]  # fmt: skip
    hyper = eqx.tree_at(
        lambda h: (h.weight, h.bias), model.hypernetwork,
        (jnp.zeros_like(model.hypernetwork.weight), jnp.asarray(raw, jnp.float32)),
    )  # fmt: skip
    model = eqx.tree_at(lambda m: m.hypernetwork, model, hyper)
    assert float(jnp.mean((model(xs[1]) - xs[1, 1:]) ** 2)) < 1e-5
    read = wp.parameter_trajectory(model, xs[1])
    np.testing.assert_allclose(read["omega0"], truth["omega0"], rtol=1e-5)
    fig = plotting.plot_physics(model, ds.y[1], t=ds.t, normalizer=norm, truth=truth)
    assert "(0.0% from the truth)" in fig.axes[0].get_title()
    check_figure(fig, 2, tmp_path, "physics_exact")


def test_physical_parameters_of_the_decoders():
    key, tau, x = jax.random.PRNGKey(4), jnp.asarray(0.3), jnp.asarray([0.2, -0.1])
    decoders = {
        "sinusoid": SinusoidDecoder(2, width=4, depth=1, learn_amplitude=True,
                                    learn_frequency=True),
        "phase": SinusoidPhaseDecoder(2),
        "prior": decoder_from_function(
            lambda q, t, xp: q["w"] * jnp.sin(t) + 0 * xp, {"w": (2,)}, data_size=2,
            transforms={"w": "exp"}, init={"w": [2.0, 3.0]},
            readout="direct",  # theta_0 holds the initial values exactly
        ),
        "hybrid": HybridDecoder(2, physics="damped_oscillator", width=4, depth=1),
        "analytic": DampedOscillatorDecoder(parametrization="direct", mode="analytic",
                                            scale=(2.0, 3.0), shift=(0.5, -1.0)),
    }  # fmt: skip
    params = {name: dec.init_params(key) for name, dec in decoders.items()}

    @jax.jit  # one compilation for all: (physical parameters, prediction) of each
    def evaluate(params):
        out = {n: (d.physical_parameters(params[n], tau, x), d(params[n], tau, x))
               for n, d in decoders.items()}  # fmt: skip
        physics = decoders["hybrid"].physics
        return out, physics.physical_parameters(params["hybrid"]["physics"], tau, x)

    out, hybrid_physics = evaluate(params)
    p, y = out["sinusoid"]
    assert set(p) == {"phase", "amplitude", "frequency"} and p["phase"].shape == (2,)
    want = p["amplitude"] * np.sin(2 * np.pi * p["frequency"] * 0.3 + p["phase"])
    np.testing.assert_allclose(y, want, rtol=1e-5)
    np.testing.assert_array_equal(out["phase"][0]["phase"], params["phase"]["phase"])
    p, y = out["prior"]
    np.testing.assert_allclose(p["w"], [2.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(y, np.array([2.0, 3.0]) * np.sin(0.3), rtol=1e-6)
    p, _ = out["analytic"]  # the initial state in physical units: x0 * scale + shift
    assert set(p) == {"omega0", "zeta", "position0", "velocity0"}
    np.testing.assert_allclose([p["position0"], p["velocity0"]], [0.5, -1.0])  # x0 = 0
    np.testing.assert_allclose([p["omega0"], p["zeta"]], [10.0, 0.1], rtol=1e-6)  # raw 0
    p, _ = out["hybrid"]
    assert set(p) == {"omega0", "zeta"} and float(p["omega0"]) == float(hybrid_physics["omega0"])
    bad = HybridDecoder(2, physics="mlp", width=4, depth=1)
    with pytest.raises(ValueError, match="no physical parameters"):
        jax.eval_shape(lambda: bad.physical_parameters(bad.init_params(key), tau, x))


# --------------------------------------------------------------------------- transition


def test_transition_diagnostics(mlp_model, tmp_path):
    info = plotting.transition_summary(mlp_model)
    A = np.asarray(mlp_model.A, np.float64)
    np.testing.assert_allclose(np.sort_complex(info["eigenvalues"]),
                               np.sort_complex(np.linalg.eigvals(A)), atol=1e-9)  # fmt: skip
    assert info["spectral_radius"] == pytest.approx(np.abs(np.linalg.eigvals(A)).max())
    assert np.abs(info["A_minus_I"]).max() > 0
    fig = plotting.plot_transition(mlp_model, channel_names=["position", "velocity"])
    np.testing.assert_allclose(fig.axes[3].lines[0].get_ydata(), mlp_model.B[:, 0])
    check_figure(fig, 5, tmp_path, "transition")  # 4 panels + colour bar of A - I


# --------------------------------------------------------------------------- bad requests


def test_bad_requests_are_clear_value_errors(data, mlp_model, tmp_path):
    ds, norm, _ = data
    with pytest.raises(ValueError, match="MLPDecoder has no physical parameters"):
        plotting.plot_physics(mlp_model, ds.y[0], normalizer=norm)
    with pytest.raises(ValueError, match="index 5 is out of range"):
        plotting.plot_forecast(mlp_model, ds.y, CONTEXT, indices=[5])
    with pytest.raises(ValueError, match="context must be in"):
        plotting.plot_forecast(mlp_model, ds.y, 256)
    with pytest.raises(ValueError, match="feed must be"):
        plotting.belief_matrix(mlp_model, ds.y[0], feed="guess")
    with pytest.raises(ValueError, match="optimizer must be"):
        plotting.gradient_descent_trajectory(mlp_model, ds.y[0], optimizer="lbfgs")
    with pytest.raises(ValueError, match="must have shape"):
        plotting.plot_belief(mlp_model, ds.y)
    with pytest.raises(ValueError, match="figure format"):
        plotting.save_figure(plt.figure(), tmp_path / "x.jpg")
    plt.close("all")


# --------------------------------------------------------------------------- plot command


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data):
    """Two tiny run folders as `warp-phys train` writes them (checkpoint, config.json,
    normalizer.json; the checkpoint holds the model the config describes, which
    `load_run` checks) and the data set as a file, for `--data`."""
    ds, norm, _ = data
    root = tmp_path_factory.mktemp("runs")
    architecture = dict(root_width=6, root_depth=1, hyper_width=8)
    for i, decoder in enumerate(("mlp", "damped_oscillator")):
        name = "mlp" if decoder == "mlp" else "phys"
        config = {"system": "msd", "seed": 0, "context": CONTEXT, "n_test": 2,
                  "decoder": decoder, "drive_features": 0, **architecture}  # fmt: skip
        model = build_model(wp.RunConfig(**config), 2, ds.y.shape[1], normalizer=norm,
                            key=jax.random.PRNGKey(i))  # fmt: skip
        wp.save_model(root / name / "best.eqx", perturb(model, jax.random.PRNGKey(10 + i)))
        stored = stored_config(wp.RunConfig(**config))  # train stores the options resolved
        (root / name / "config.json").write_text(json.dumps(stored))
        (root / name / "normalizer.json").write_text(json.dumps(norm.to_dict()))
    systems.save(ds, root / "msd.npz")
    return root


def plot_cli(argv, data=True):
    """`warp-phys plot ...` through a parser built exactly as cli.py wires it; the data
    come from the saved file unless `data=False`."""
    parser = argparse.ArgumentParser(prog="warp-phys")
    add_plot_command(parser.add_subparsers(dest="command", required=True))
    run = argv[argv.index("--run") + 1]
    extra = ["--data", str(Path(run).parent / "msd.npz")] if data else []
    args = parser.parse_args(["plot", *argv, *extra])
    args.func(args)


@pytest.mark.parametrize("kind", ["reconstruction", "weights", "belief", "trajectory",
                                  "physics", "transition"])  # fmt: skip
def test_plot_command_every_kind(runs, kind, tmp_path, capsys):
    run = runs / ("phys" if kind == "physics" else "mlp")
    out = tmp_path / f"{kind}.png"
    plot_cli([kind, "--run", str(run), "--index", "1", "--out", str(out), "--gd-steps", "8"])
    assert out.stat().st_size > 1000 and str(out) in capsys.readouterr().out


def test_plot_command_defaults_and_formats(runs, capsys):
    plot_cli(["weights", "--run", str(runs / "mlp"), "--format", "svg"])
    svg = runs / "mlp" / "figures" / "weights_0.svg"
    assert svg.read_text().lstrip().startswith("<?xml")
    plot_cli(["physics", "--run", str(runs / "phys"), "--forecast", "--format", "pdf"])
    assert (runs / "phys" / "figures" / "physics_0.pdf").read_bytes().startswith(b"%PDF")


def test_forecast_defaults_to_the_held_state(runs, monkeypatch, tmp_path):
    """The state plots run free after the context by default for a held WARP (its state
    never saw an observation past its training context) and observe every step for an
    advancing one; `--forecast` / `--no-forecast` override either way."""
    assert wp.load_run(runs / "phys").model.free_run == "hold"
    assert wp.load_run(runs / "mlp").model.free_run == "advance"
    seen = []

    def spy(kind, run, ds, i, state_context, *rest):
        seen.append(state_context)
        return plt.figure()

    monkeypatch.setattr("warp_phys.plotting._run._state_figure", spy)
    for name, flags, want in [
        ("phys", [], CONTEXT),
        ("phys", ["--no-forecast"], None),
        ("mlp", [], None),
        ("mlp", ["--forecast"], CONTEXT),
    ]:
        out = tmp_path / f"{name}{len(seen)}.png"
        plot_cli(["weights", "--run", str(runs / name), "--out", str(out), *flags])
        assert seen[-1] == want, (name, flags)
    plot_run("belief", wp.load_run(runs / "phys"), data=runs / "msd.npz", forecast=False)
    assert seen[-1] is None  # the library's explicit False is kept
    plt.close("all")


def test_plot_command_bad_requests(runs, tmp_path):
    with pytest.raises(ValueError, match="MLPDecoder has no physical parameters"):
        plot_cli(["physics", "--run", str(runs / "mlp")])
    with pytest.raises(ValueError, match="index 2 is out of range: there are 2"):
        plot_cli(["belief", "--run", str(runs / "mlp"), "--index", "2"])
    with pytest.raises(ValueError, match="shows one trajectory"):
        plot_cli(["weights", "--run", str(runs / "mlp"), "--index", "0", "1"])
    with pytest.raises(FileNotFoundError, match="no run folder"):
        plot_cli(["weights", "--run", str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="does not end in .pdf"):
        plot_cli(["transition", "--run", str(runs / "mlp"), "--format", "pdf",
                  "--out", str(tmp_path / "a.png")])  # fmt: skip
    with pytest.raises(SystemExit):
        plot_cli(["histogram", "--run", str(runs / "mlp")])
    run = wp.load_run(runs / "mlp")
    _, size = wp.run_dataset(run, data=runs / "msd.npz")
    assert size == 2 and run.config.context == CONTEXT and run.normalizer is not None
    with pytest.raises(ValueError, match="context must be"):
        plot_run("reconstruction", run, data=runs / "msd.npz", context=0)


def test_plot_run_reads_the_facts_of_the_data_s_system(runs, monkeypatch):
    """Channel names, their units, the time unit and the true physical parameters come
    from the system the data were drawn from (or a data file's own channel names)."""
    run = wp.load_run(runs / "mlp")
    msd, _ = wp.run_dataset(run, data=runs / "msd.npz")

    def titles_and_xlabels(dataset):
        monkeypatch.setattr(
            "warp_phys.plotting._run.run_dataset", lambda *_: (dataset, len(dataset))
        )
        fig = plot_run("reconstruction", run, index=[0])
        found = {ax.get_title() for ax in fig.axes}, {ax.get_xlabel() for ax in fig.axes}
        plt.close(fig)
        return found

    assert {"position x", "velocity v"} <= titles_and_xlabels(msd)[0]
    titles, xlabels = titles_and_xlabels(dataclasses.replace(msd, name="pendulum"))
    assert {"angle (rad)", "angular velocity (rad/s)"} <= titles and "time t (s)" in xlabels
    recording = dataclasses.replace(msd, name="rec.csv", config={"channels": ["p", "q"]})
    assert {"p", "q"} <= titles_and_xlabels(recording)[0]
    monkeypatch.undo()
    fig = plot_run("physics", wp.load_run(runs / "phys"), data=runs / "msd.npz", index=1)
    m, k, c = (float(msd.params[name][1]) for name in "mkc")
    omega_ax, zeta_ax = fig.axes
    assert omega_ax.lines[1].get_ydata()[0] == pytest.approx(math.sqrt(k / m))
    assert zeta_ax.lines[1].get_ydata()[0] == pytest.approx(c / (2 * math.sqrt(k * m)))
    plt.close(fig)


def test_plot_command_regenerates_the_configured_data(runs, data, monkeypatch, tmp_path):
    """Without --data the run's system, split and seed are regenerated (only the first
    index + 1 trajectories: data sets are prefix-consistent)."""
    calls = []

    def generate(system, n, *, split, seed):
        calls.append((system, n, split, seed))
        return data[0]

    monkeypatch.setattr(systems, "generate", generate)
    out = tmp_path / "w.png"
    plot_cli(["weights", "--run", str(runs / "mlp"), "--index", "1", "--out", str(out)],
             data=False)  # fmt: skip
    assert calls == [("msd", 2, "test", 0)] and out.stat().st_size > 1000
    _, size = wp.run_dataset(wp.load_run(runs / "mlp"), split="val", count=5)
    assert calls[-1] == ("msd", 5, "val", 0) and size == wp.RunConfig().n_val


def test_plot_command_needs_a_complete_run_folder(runs, tmp_path):
    """The demo writes an ordinary run folder (test_demo plots it); a folder without
    `config.json`, as older demos wrote, is refused naming the missing file."""
    old = tmp_path / "demo"
    old.mkdir()
    (old / "best.eqx").write_bytes((runs / "mlp" / "best.eqx").read_bytes())
    (old / "summary.json").write_text(json.dumps({"system": "msd", "context": 60}))
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        plot_cli(["reconstruction", "--run", str(old)])


def test_refined_parameters_and_forecast_are_drawn_beside_the_read_out(runs):
    """`refine=K`: the physics plot adds the parameters `refine_parameters` fits to the
    context as a constant over the forecast; the reconstruction draws the refined forecast
    and the read-out's own."""
    run = wp.load_run(runs / "phys")
    ds, _ = wp.run_dataset(run, data=runs / "msd.npz")
    fig = plot_run("physics", run, data=runs / "msd.npz", index=1, refine=3)
    context = run.normalizer.apply(ds.y[1, :CONTEXT])
    fitted = wp.refine_parameters(run.model, context, steps=3)
    for ax, name in zip(fig.axes, ("omega0", "zeta"), strict=True):
        line = next(li for li in ax.lines if li.get_label().startswith("refined on the first"))
        assert len(line.get_xdata()) == ds.y.shape[1] - CONTEXT
        np.testing.assert_allclose(line.get_ydata(), float(fitted[name]), rtol=1e-5)
    plt.close(fig)
    fig = plot_run("reconstruction", run, data=runs / "msd.npz", index=[0], refine=3)
    labels = {line.get_label() for line in fig.axes[0].lines}
    assert {"forecast, prior refined (3 steps)", "read-out alone"} <= labels
    plt.close(fig)
    fig = plot_run("physics", run, data=runs / "msd.npz", index=1)  # the library: no refine
    assert not any("refined" in li.get_label() for ax in fig.axes for li in ax.lines)
    plt.close(fig)
