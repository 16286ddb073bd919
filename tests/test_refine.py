"""Refinement of a physical prior's parameters on the context (`warp_phys._refine`).

References: the closed-form damped oscillator (numpy) for the truth, and
`scipy.optimize.least_squares` on the same shooting residual, written independently
(scipy's matrix exponential, parameters in log space rather than the prior's raw space:
the minimiser is the same point).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import least_squares

import warp_phys as wp
from warp_phys._refine import _least_squares, _shooting_cost, _two_stage
from warp_phys.decoders._transforms import inverse_transform

T, L = 64, 40
OMEGA0, ZETA = 15.0, 0.05
SCALE, SHIFT = np.array([1.0, 10.0]), np.array([0.1, 0.0])  # data = (physical - shift) / scale


def _oscillation(omega0: float, zeta: float, x0: float = 1.0) -> np.ndarray:
    """Closed-form (position, velocity) `(T, 2)` on t in [0, 1] from (x0, 0), under-damped."""
    t = np.linspace(0.0, 1.0, T)
    a, wd = zeta * omega0, omega0 * np.sqrt(1 - zeta**2)
    decay = x0 * np.exp(-a * t)
    x = decay * (np.cos(wd * t) + a / wd * np.sin(wd * t))
    v = -decay * omega0**2 / wd * np.sin(wd * t)
    return np.stack([x, v], -1)


def _data(y: np.ndarray) -> np.ndarray:
    return ((y - SHIFT) / SCALE).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    options = {"readout": "direct", "omega0_init": 11.0, "zeta_init": 0.15}
    return wp.WARP(
        2, decoder="damped_oscillator", decoder_options=options, hyper_width=8, seq_len=T,
        data_scale=SCALE.tolist(), data_shift=SHIFT.tolist(), key=jax.random.PRNGKey(0),
    )


@pytest.fixture(scope="module")
def contexts():
    """Three clean trajectories in data units `(3, T, 2)`; the first has the truth."""
    return np.stack([_data(_oscillation(*p)) for p in ((OMEGA0, ZETA), (20, 0.1), (12, 0.02))])


def test_zero_steps_is_the_read_out_and_no_refinement(model, contexts):
    context = jnp.asarray(contexts[0, :L])
    start = wp.refine_parameters(model, context, steps=0)
    theta = model.encode(context)
    expected = model.decoder.physical_parameters(
        model.decoder.unflatten(theta), model.tau(L), context[-1]
    )
    for name in ("omega0", "zeta"):
        np.testing.assert_allclose(start[name], expected[name], rtol=1e-6)
    plain = wp.reconstruct(model, context, 5)
    np.testing.assert_array_equal(wp.reconstruct(model, context, 5, refine=0), plain)


def test_refined_parameters_reach_the_truth_from_the_read_out(model, contexts):
    context = jnp.asarray(contexts[0, :L])
    start = wp.refine_parameters(model, context, steps=0)
    assert abs(start["omega0"] / OMEGA0 - 1) > 0.1  # the read-out is far off
    refined = wp.refine_parameters(model, context, steps=30)
    assert refined["omega0"] == pytest.approx(OMEGA0, rel=1e-3)
    assert refined["zeta"] == pytest.approx(ZETA, rel=1e-2)
    # the forecast with them follows the closed form past the context
    forecast = wp.reconstruct(model, context, T - L, refine=30)
    assert forecast.shape == (T - L, 2)
    np.testing.assert_allclose(forecast, contexts[0, L:], atol=2e-3)


def test_batch_is_the_vmap_of_single_contexts(model, contexts):
    # steps=30 as above: the single context's fit is compiled once for both tests
    batch = wp.refine_parameters(model, contexts[:, :L], steps=30)
    assert {k: v.shape for k, v in batch.items()} == {"omega0": (3,), "zeta": (3,)}
    one = wp.refine_parameters(model, contexts[1, :L], steps=30)
    np.testing.assert_allclose(batch["omega0"][1], one["omega0"], rtol=1e-5)
    np.testing.assert_allclose(batch["zeta"][1], one["zeta"], rtol=1e-4)
    forecasts = wp.reconstruct(model, contexts[:, :L], 7, refine=30)
    assert forecasts.shape == (3, 7, 2)
    np.testing.assert_allclose(
        forecasts[1], wp.reconstruct(model, contexts[1, :L], 7, refine=30), rtol=1e-4, atol=1e-5
    )


def test_noisy_context_matches_scipy_least_squares(model, contexts):
    """Both minimise sum_t |s_t - x_t|^2 over (omega0, zeta, s_0), s_t the exact step."""
    noisy = contexts[0, :L] + 0.05 * np.random.default_rng(0).standard_normal((L, 2))
    noisy = noisy.astype(np.float32)
    start = wp.refine_parameters(model, noisy, steps=0)
    refined = wp.refine_parameters(model, noisy, steps=100)
    dt = 1.0 / (T - 1)

    def residual(z):
        omega0, zeta = np.exp(z[:2])
        step = expm(dt * np.array([[0.0, 1.0], [-(omega0**2), -2 * zeta * omega0]]))
        s, run = z[2:] * SCALE + SHIFT, []
        for _ in range(L):
            run.append((s - SHIFT) / SCALE)
            s = step @ s
        return (np.array(run) - noisy).ravel()

    z0 = np.r_[np.log([float(start["omega0"]), float(start["zeta"])]), noisy[0]]
    fit = least_squares(residual, z0, method="lm", xtol=1e-12, ftol=1e-12)
    assert float(refined["omega0"]) == pytest.approx(np.exp(fit.x[0]), rel=1e-3)
    assert float(refined["zeta"]) == pytest.approx(np.exp(fit.x[1]), rel=2e-2)


def _raw(prior, **physical) -> dict:
    """The prior's raw values of the given physical values (float32 scalars)."""
    return {
        s.name: jnp.float32(inverse_transform(s.transform, np.float64(physical[s.name])))
        for s in prior.parameters
    }


def test_a_read_out_deep_in_a_tail_is_rescued_by_the_declared_start(model, contexts):
    """The measured failure (an OOD read-out of zeta ~ 0): from raw zeta = -30 (zeta ~ 1e-14,
    softplus gradient ~ 1e-13) LM alone leaves zeta at ~0; the second start, the declared
    initial values (11, 0.15), reaches the truth and wins on the context's residual."""
    prior, context = model.decoder, jnp.asarray(contexts[0, :L])
    taus = model.tau(jnp.arange(1, L))
    bad = _raw(prior, omega0=94.0, zeta=ZETA) | {"zeta": jnp.float32(-30.0)}
    alone = prior.constrain(_two_stage(prior, context, bad, taus, 20)[0])
    assert alone["zeta"] < 1e-6  # the single start is stuck in the tail
    fit = _least_squares(prior, context, bad, taus, 20)
    refined = prior.constrain(fit[0])
    assert refined["omega0"] == pytest.approx(OMEGA0, rel=1e-3)
    assert refined["zeta"] == pytest.approx(ZETA, rel=1e-2)


def test_the_fit_with_the_lower_context_residual_is_kept(model, contexts):
    """Either start can win: the read-out deep in zeta's tail loses to the declared start
    (above); a prior declared with zeta_init 1e-9 (its raw scale makes zeta immovable)
    loses to a read-out near the truth. The kept fit is the single-start fit of lower
    shooting cost, in both cases."""
    tiny = {"readout": "direct", "omega0_init": 11.0, "zeta_init": 1e-9}
    other = wp.WARP(
        2, decoder="damped_oscillator", decoder_options=tiny, hyper_width=8, seq_len=T,
        data_scale=SCALE.tolist(), data_shift=SHIFT.tolist(), key=jax.random.PRNGKey(0),
    )
    context = jnp.asarray(contexts[0, :L])
    taus = model.tau(jnp.arange(1, L))
    cases = [
        (model.decoder, _raw(model.decoder, omega0=94.0, zeta=ZETA) | {"zeta": jnp.float32(-30)}),
        (other.decoder, _raw(other.decoder, omega0=13.0, zeta=0.08)),
    ]
    winners = []
    for prior, readout in cases:
        centre = {s.name: jnp.float32(s.raw_init()[0]) for s in prior.parameters}
        costs = [
            float(_shooting_cost(prior, context, taus, _two_stage(prior, context, r, taus, 20)))
            for r in (readout, centre)
        ]
        assert max(costs) > max(2 * min(costs), 1e-6)  # a clear winner
        kept = _least_squares(prior, context, readout, taus, 20)
        kept_cost = float(_shooting_cost(prior, context, taus, kept))
        # float32, vmapped over the starts: the winner's cost to rounding (a converged fit
        # sits at the float32 floor, ~1e-11), far below the loser's
        assert kept_cost <= min(costs) * (1 + 1e-5) + 1e-9
        winners.append(int(np.argmin(costs)))
    assert winners == [1, 0]  # the declared start, then the read-out


def test_errors_name_the_problem(model, contexts):
    context = contexts[0, :L]
    key = jax.random.PRNGKey(1)
    mlp = wp.WARP(2, decoder="mlp", root_width=4, root_depth=1, seq_len=T, key=key)
    with pytest.raises(ValueError, match="physical prior.*MLPDecoder"):
        wp.reconstruct(mlp, context, 3, refine=2)
    gru = wp.GRU(2, hidden_size=4, key=jax.random.PRNGKey(2))
    with pytest.raises(ValueError, match="physical prior.*GRU"):
        wp.refine_parameters(gru, context)
    with pytest.raises(ValueError, match="non-negative int"):
        wp.reconstruct(model, context, 3, refine=-1)
    with pytest.raises(ValueError, match="clean convention"):
        wp.reconstruct(model, context, 3, refine=2, convention="reference")
    with pytest.raises(ValueError, match=r"\(L, 2\)"):
        wp.refine_parameters(model, context[:, :1])


TINY_MSD = """
system = "msd"
[data]
n_train = 8
n_val = 4
n_test = 3
[model]
decoder = "damped_oscillator"
root_width = 4
root_depth = 1
hyper_width = 4
[protocol]
context = 20
[optimisation]
steps = 2
val_every = 2
batch_size = 4
"""


def test_cli_refine_flag():
    from warp_phys import cli

    for command in ("reconstruct", "evaluate"):
        args = cli.build_parser().parse_args([command, "--run", "r", "--refine", "3"])
        assert args.refine == 3
    for command in ("reconstruct", "evaluate", "params"):
        assert cli.build_parser().parse_args([command, "--run", "r"]).refine == "auto"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["evaluate", "--run", "r", "--refine", "-1"])


def test_auto_refines_a_physical_prior_only_where_refinement_applies(model):
    from warp_phys._refine import DEFAULT_REFINE_STEPS, resolve_refine

    assert resolve_refine(model, "auto") == DEFAULT_REFINE_STEPS > 0
    assert resolve_refine(model, "auto", convention="reference") == 0
    assert resolve_refine(model, "auto", regular=False) == 0
    # omega0, zeta and the 2-channel initial state: 4 unknowns, a context must observe more
    assert resolve_refine(model, "auto", context=2) == 0
    assert resolve_refine(model, "auto", context=3) == DEFAULT_REFINE_STEPS
    assert resolve_refine(model, 3) == 3 and resolve_refine(model, None) == 0
    mlp = wp.WARP(2, decoder="mlp", root_width=4, root_depth=1, seq_len=T,
                  key=jax.random.PRNGKey(3))  # fmt: skip
    assert resolve_refine(mlp, "auto") == 0


def test_evaluate_run_reports_the_refined_and_the_read_out_forecast(model, contexts, tmp_path):
    """`refine="auto"` scores the refined forecast and keeps the read-out's MSE beside it;
    both against forecasts made here with `reconstruct`."""
    config = wp.RunConfig(system="msd", context=L)
    run = wp.Run(tmp_path, config, model, wp.Normalizer.identity(2))
    scores = wp.evaluate_run(run, data=contexts, refine="auto")
    target = contexts[:, L:]
    refined = wp.reconstruct(model, contexts[:, :L], T - L, refine=scores["refine"])
    plain = wp.reconstruct(model, contexts[:, :L], T - L)
    assert scores["mse"] == pytest.approx(float(np.mean((refined - target) ** 2)), rel=1e-4)
    assert scores["mse_readout"] == pytest.approx(float(np.mean((plain - target) ** 2)), rel=1e-4)
    assert scores["mse"] < scores["mse_readout"] / 10  # the read-out starts from omega0 11
    assert "refine" not in wp.evaluate_run(run, data=contexts, refine=0)


@pytest.mark.slow
def test_cli_refine_reaches_the_forecast(tmp_path, capsys):
    """train -> reconstruct --refine -> evaluate --refine on a tiny MSD run (~50 s)."""
    from warp_phys import cli

    (tmp_path / "tiny.toml").write_text(TINY_MSD)
    out = tmp_path / "run"
    config = str(tmp_path / "tiny.toml")
    assert cli.main(["train", "--config", config, "--out", str(out), "--quiet"]) == 0
    assert cli.main(["reconstruct", "--run", str(out), "--refine", "2", "--horizon", "5"]) == 0
    written = np.load(out / "reconstruction.npz")
    run = wp.load_run(out)
    y = run.normalizer.apply(jnp.asarray(written["context"]))
    expected = run.normalizer.invert(wp.reconstruct(run.model, y, 5, refine=2))
    np.testing.assert_allclose(written["prediction"], expected, rtol=1e-4, atol=1e-4)
    plain = run.normalizer.invert(wp.reconstruct(run.model, y, 5))
    assert not np.allclose(written["prediction"], plain)
    assert cli.main(["evaluate", "--run", str(out), "--refine", "2"]) == 0
    result = json.loads((out / "eval_test.json").read_text())
    assert result["refine"] == 2 and np.isfinite(result["mse"])
    capsys.readouterr()
