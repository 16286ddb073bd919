"""The kernelised autoregressive rollout against the plain scan rollout: outputs and
gradients (w.r.t. A, B, the hypernetwork and the decoder's own parameters), both index
conventions, teacher-forcing masks, stochastic feedback, causal stages, rematerialised
states, reconstruction (and its dispatch), the cost rule, and the paper-speed
benchmark's smoke run.

A is contractive (spectral radius ~0.95) as in trained models: then float32 rounding
differences between the two orders of summation stay at rounding level along the
rollout (tolerances: 2e-5 of the output scale, 1e-4 of each gradient leaf's scale).
"""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import warp_phys as wp
from warp_phys._forecast import (
    AR_ALGORITHMS,
    ar_flops,
    ar_rollout,
    choose_ar_algorithm,
    resolve_ar_algorithm,
)
from warp_phys._interface import mean_of
from warp_phys._kernel_rollout import kernel_reconstruct, kernel_rollout, stage_bounds

T = 20
BATCH = 3


class ScaledMLP(wp.AbstractDecoder):
    """An MLP root with a trainable per-channel output scale outside theta, so the
    decoder has parameters of its own whose gradient can be compared."""

    inner: wp.MLPDecoder
    scale: jax.Array
    data_size: int = eqx.field(static=True)

    def __init__(self, data_size: int, **options):
        self.inner = wp.MLPDecoder(data_size, width=6, depth=1, **options)
        self.scale = jnp.linspace(0.9, 1.1, data_size)
        self.data_size = data_size

    @property
    def probabilistic(self) -> bool:
        return self.inner.probabilistic

    def init_params(self, key):
        return self.inner.init_params(key)

    def __call__(self, params, tau, x_prev):
        out = self.inner(params, tau, x_prev)
        if isinstance(out, tuple):
            return out[0] * self.scale, out[1]
        return out * self.scale


def contractive(model, seed=5):
    """A = 0.93 I + noise (spectral radius < 1), B and W away from their initialisation
    (numpy draws: no eager JAX ops to compile)."""
    D, d = model.theta_size, model.data_size
    rng = np.random.default_rng(seed)
    A = 0.93 * np.eye(D) + 0.02 * rng.standard_normal((D, D)) / np.sqrt(D)
    assert np.max(np.abs(np.linalg.eigvals(A))) < 0.97
    W = np.asarray(model.hypernetwork.weight)
    W = W + 0.2 * rng.standard_normal(W.shape)
    B = 0.1 * rng.standard_normal((D, d))
    new = tuple(jnp.asarray(x, jnp.float32) for x in (A, B, W))
    return eqx.tree_at(lambda m: (m.A, m.B, m.hypernetwork.weight), model, new)


def make_model(probabilistic=False, seed=0):
    options = {"probabilistic": True, "std_lower_bound": 0.05} if probabilistic else {}
    decoder = ScaledMLP(2, **options)
    model = wp.WARP(2, decoder=decoder, hyper_width=5, seq_len=T, key=jax.random.PRNGKey(seed))
    return contractive(model)


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def prob_model():
    return make_model(probabilistic=True, seed=1)


@pytest.fixture(scope="module")
def batch():
    t = np.linspace(0, 1, T)[None, :, None]
    w = np.array([5.0, 7.0, 9.0])[:, None, None]
    xs = np.concatenate([np.cos(w * t), -np.sin(w * t)], axis=2)
    return jnp.asarray(xs, jnp.float32)


def masks(seed=3):
    """One teacher-forcing mask per sequence, with forcing 0, 0.3 and 1 (index 0 is
    always observed in training, and ignored by the clean convention)."""
    coin = np.random.default_rng(seed).random((BATCH, T)) < np.array([[0.0], [0.3], [1.0]])
    coin[:, 0] = True
    return jnp.asarray(coin)


def scan_loss(model, xs, observed, convention, noise_key=None):
    def one(x, o):
        out = wp.rollout(model, x, o, convention=convention, noise_key=noise_key)
        return jnp.mean(jnp.square(mean_of(out)))

    return jnp.mean(jax.vmap(one)(xs, observed))


def kernel_loss(model, xs, observed, convention, noise_key=None, **options):
    def one(x, o):
        out = kernel_rollout(model, x, o, convention=convention, noise_key=noise_key, **options)
        return jnp.mean(jnp.square(mean_of(out)))

    return jnp.mean(jax.vmap(one)(xs, observed))


def assert_trees_close(got, expected, rel):
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        scale = float(jnp.max(jnp.abs(e)))
        assert np.isfinite(scale)
        np.testing.assert_allclose(g, e, atol=rel * max(scale, 1e-6), rtol=0)


def norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))))


@pytest.mark.parametrize("convention", ["clean", "reference"])
def test_outputs_equal_the_scan(model, batch, convention):
    observed = masks()

    @jax.jit
    def outputs(xs, observed):
        def one(x, o):
            kernel = [
                kernel_rollout(model, x, o, convention=convention, stages=stages)
                for stages in (1, 3)
            ]
            return wp.rollout(model, x, o, convention=convention), kernel

        return jax.vmap(one)(xs, observed)

    expected, got = outputs(batch, observed)
    assert expected.shape == (BATCH, T - (convention == "clean"), 2)
    for stages in got:  # full-length registers, and 3 causal stages
        assert_trees_close(stages, expected, 2e-5)
    free, forced = expected[0], expected[2]  # feedback matters
    assert float(jnp.max(jnp.abs(free - forced))) > 0.05


@pytest.mark.parametrize(("convention", "checkpoint"), [("clean", True), ("reference", False)])
def test_gradients_equal_the_scan(model, batch, convention, checkpoint):
    observed = masks(seed=8)

    @eqx.filter_jit
    def grads(model):
        kern = eqx.filter_grad(kernel_loss)(
            model, batch, observed, convention, stages=2, checkpoint=checkpoint
        )
        return kern, eqx.filter_grad(scan_loss)(model, batch, observed, convention)

    got, expected = grads(model)
    # every trainable part: A, B, the hypernetwork (hidden layers and head), the decoder
    for part in (lambda m: m.A, lambda m: m.B, lambda m: m.hypernetwork, lambda m: m.decoder):
        assert norm(part(expected)) > 0
        assert_trees_close(part(got), part(expected), 1e-4)


@pytest.mark.parametrize("convention", ["clean", "reference"])
def test_stochastic_feedback_equals_the_scan(prob_model, batch, convention):
    observed = masks(seed=4)
    key = jax.random.PRNGKey(11)

    @eqx.filter_jit
    def losses(model):
        noisy = [f(model, batch, observed, convention, key) for f in (kernel_loss, scan_loss)]
        return noisy, kernel_loss(model, batch, observed, convention)

    (value, expected), noiseless = losses(prob_model)
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    assert abs(float(noiseless) - float(value)) > 1e-4  # the noise is fed back
    if convention == "clean":  # gradients through the samples (deterministic: see above)
        grad = eqx.filter_jit(eqx.filter_grad(lambda m, f: f(m, batch, observed, convention, key)))
        assert_trees_close(grad(prob_model, kernel_loss), grad(prob_model, scan_loss), 1e-4)


@pytest.mark.parametrize("convention", ["clean", "reference"])
def test_reconstruct_equals_the_scan(model, prob_model, batch, convention):
    L, key = 6, jax.random.PRNGKey(2)

    @jax.jit
    def both(context):
        scan = wp.reconstruct(model, context, T - L, convention=convention)
        kern = kernel_reconstruct(model, context, T - L, convention=convention, stages=2)
        if convention == "reference":
            return scan, kern
        # sampled feedback (clean), one key per trajectory
        scan_sampled = wp.reconstruct(prob_model, context, T - L, key=key)
        kern_sampled = kernel_reconstruct(prob_model, context, T - L, key=key)
        return (scan, scan_sampled), (kern, kern_sampled)

    expected, got = both(batch[:, :L])
    assert jax.tree.leaves(got)[0].shape == (BATCH, T - L, 2)
    assert_trees_close(got, expected, 2e-5)
    assert kernel_reconstruct(model, batch[0, :L], 0).shape == (0, 2)


def test_reconstruct_dispatches_to_the_kernel(model, monkeypatch):
    """`reconstruct(..., ar_algorithm=...)` and the forecast protocol run
    `kernel_reconstruct` for "kernel", and for "auto" where the cost model picks it (24
    trajectories of 6 steps, not 3), equal to the scan; other models always scan."""
    import warp_phys._forecast as forecast_module
    from warp_phys.training.protocol import predict

    calls, real = [], forecast_module.kernel_reconstruct

    def spy(model, context, *args, **kwargs):
        calls.append(context.shape[0])
        return real(model, context, *args, **kwargs)

    monkeypatch.setattr(forecast_module, "kernel_reconstruct", spy)
    L, H, N = 3, 3, 24
    D, r = model.theta_size, model.hypernetwork.feature_size
    assert choose_ar_algorithm(L + H, 2, D, r, N) == "kernel"
    assert choose_ar_algorithm(L + H, 2, D, r, 3) == "scan"
    trajectories = np.random.default_rng(7).standard_normal((N, L + H, 2)).astype(np.float32)
    gru = wp.GRU(2, hidden_size=4, key=jax.random.PRNGKey(0))

    @jax.jit
    def forecasts(xs):
        warp = [wp.reconstruct(model, xs[:, :L], H, ar_algorithm=a) for a in AR_ALGORITHMS]
        protocol, start = predict(model, xs, context=L, ar_algorithm="kernel")
        few = wp.reconstruct(model, xs[:3, :L], H)
        return warp, protocol, few, wp.reconstruct(gru, xs[:, :L], H)

    (auto, kernel, scan), protocol, few, gru_out = forecasts(jnp.asarray(trajectories))
    assert calls == [N, N, N]  # auto, kernel, predict; not the 3 trajectories
    assert scan.shape == (N, H, 2) and float(jnp.max(jnp.abs(scan))) > 0.1
    assert_trees_close([auto, kernel, protocol, few], [scan, scan, scan, scan[:3]], 2e-5)
    assert gru_out.shape == (N, H, 2)
    with pytest.raises(ValueError, match="ar_algorithm"):
        wp.reconstruct(model, trajectories[:, :L], H, ar_algorithm="fast")
    with pytest.raises(TypeError, match="WARP"):
        wp.reconstruct(gru, trajectories[:, :L], H, ar_algorithm="kernel")


def test_dispatch_and_errors(model, batch):
    observed = masks()[1]
    gru = wp.GRU(2, hidden_size=4, key=jax.random.PRNGKey(0))

    @jax.jit
    def dispatched(x, o):
        warp = [
            ar_rollout(model, x, o, ar_algorithm=algorithm, batch_size=64)
            for algorithm in ("scan", "kernel", "auto")
        ]
        return warp, wp.rollout(model, x, o), ar_rollout(gru, x, o), wp.rollout(gru, x, o)

    warp, expected, gru_auto, gru_scan = dispatched(batch[0], observed)
    assert_trees_close(warp, [expected] * 3, 2e-5)
    np.testing.assert_allclose(gru_auto, gru_scan)
    with pytest.raises(TypeError, match="WARP"):
        kernel_rollout(gru, batch[0], observed)
    with pytest.raises(ValueError, match="ar_algorithm"):
        ar_rollout(model, batch[0], observed, ar_algorithm="fast")
    with pytest.raises(ValueError, match="convention"):
        kernel_rollout(model, batch[0], observed, convention="paper")
    with pytest.raises(ValueError, match="probabilistic"):
        kernel_rollout(model, batch[0], observed, noise_key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="stages"):
        kernel_rollout(model, batch[0], observed, stages=0)


def test_structured_transitions_scan(batch):
    """The kernel form needs a dense A: "auto" never picks it for a structured one (whose
    scan step costs far less than D^2), and asking for it is a clear error."""
    diagonal = wp.WARP(2, root_width=64, transition="diagonal", key=jax.random.PRNGKey(0))
    assert diagonal.theta_size > 4000
    assert resolve_ar_algorithm(diagonal, "auto", T, batch=10**6) == "scan"
    with pytest.raises(ValueError, match="dense transition"):
        kernel_rollout(diagonal, batch[0], masks()[0])


def test_cost_rule():
    paper = dict(T=256, d=2, D=4898, r=128)
    assert choose_ar_algorithm(**paper, batch=1024) == "kernel"
    assert choose_ar_algorithm(**paper, batch=64) == "scan"  # powers not amortised
    assert choose_ar_algorithm(T=256, d=2, D=1000, r=64, batch=64) == "scan"
    assert choose_ar_algorithm(T=256, d=40, D=4898, r=16, batch=4096) == "scan"  # long T d
    ratio = ar_flops("scan", **paper, batch=1024) / ar_flops("kernel", **paper, batch=1024)
    assert 4.0 < ratio < 5.5
    # causal stages: 8 stages of 32 steps cost 9/16 of the full-length history GEMMs
    bounds = stage_bounds(256, 8)
    assert bounds[0] == (0, 32) and bounds[-1] == (224, 256) and len(bounds) == 8
    assert sum((b - a) * b for a, b in bounds) / 256**2 == pytest.approx(9 / 16)
    assert stage_bounds(20, 3) == [(0, 7), (7, 14), (14, 20)]
    assert stage_bounds(2, 5) == [(0, 1), (1, 2)]


def test_training_loss_dispatches_to_the_kernel(model, batch):
    from warp_phys.training.protocol import batch_loss

    key = jax.random.PRNGKey(6)

    @eqx.filter_jit
    def losses(model):
        return [
            eqx.filter_value_and_grad(batch_loss)(
                model, batch, batch, key, convention=convention, ar_algorithm=algorithm
            )
            for convention in ("clean", "reference")
            for algorithm in ("scan", "kernel")
        ]

    clean_scan, clean_kernel, ref_scan, ref_kernel = losses(model)
    assert_trees_close(clean_kernel, clean_scan, 1e-4)
    assert_trees_close(ref_kernel, ref_scan, 1e-4)
    with pytest.raises(ValueError, match="ar_algorithm"):
        objective = wp.ObjectiveOptions(ar_algorithm="fast")
        wp.train(model, np.asarray(batch), steps=1, objective=objective, key=key, progress=False)
