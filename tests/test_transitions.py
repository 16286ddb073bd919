"""Structured transitions: every kind against its dense definition in float64, both
recurrence modes, gradients, training, checkpoints, and D_theta >= 100,000 without a
D x D array."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import warp_phys as wp
from warp_phys._forecast import ar_rollout
from warp_phys._transitions import TRANSITIONS

T = 24
# the time-aware `continuous` kind scales B by phi(h Lambda): tests/test_irregular.py
# checks it against its own float64 loop, gradients and checkpoints included
KINDS = tuple(kind for kind in TRANSITIONS if kind != "continuous")
# dense is the paper's setting, covered by test_recurrence, test_model, test_kernel_rollout
STRUCTURED = [kind for kind in KINDS if kind != "dense"]


def _perturbed(model, seed=1):
    """`model` with every transition parameter moved off its initialisation and B
    non-zero, so theta_t really moves (scaled to keep A near the identity)."""
    rng = np.random.default_rng(seed)  # numpy noise: no XLA compilation per shape

    def move(p, scale):
        noise = rng.standard_normal(p.shape) / np.sqrt(p.shape[0])
        return jnp.asarray(np.asarray(p) + scale * noise, jnp.float32)

    transition = jax.tree.map(lambda p: move(p, 0.1), model.transition)
    B = move(model.B, 0.3 * np.sqrt(model.theta_size))
    return eqx.tree_at(lambda m: (m.transition, m.B), model, (transition, B))


@pytest.fixture(scope="module", params=KINDS)
def initial(request):
    return wp.WARP(
        2,
        root_width=6,
        root_depth=1,
        hyper_width=4,
        seq_len=T,
        transition=request.param,
        transition_rank=3 if request.param == "lowrank" else None,
        key=jax.random.PRNGKey(0),
    )


@pytest.fixture(scope="module")
def model(initial):
    return _perturbed(initial)


@pytest.fixture(scope="module")
def xs():
    t = np.linspace(0, 1, T)
    return jnp.asarray(np.stack([np.cos(9 * t) * np.exp(-t), np.sin(5 * t)], 1), jnp.float32)


def _definition(transition) -> np.ndarray:
    """A in float64, built from the kind's parameters by its definition."""
    p = {k: np.asarray(v, np.float64) for k, v in vars(transition).items() if k != "blocks"}
    if transition.kind == "dense":
        return p["matrix"]
    if transition.kind == "diagonal":
        return np.diag(p["a"])
    if transition.kind == "lowrank":
        return np.eye(transition.size) + p["U"] @ p["V"].T
    return scipy.linalg.block_diag(*[np.asarray(b, np.float64) for b in transition.blocks])


def test_as_matrix_and_step_follow_the_definition(model):
    A = _definition(model.transition)
    np.testing.assert_allclose(model.transition.as_matrix(), A, atol=1e-6)
    theta = jax.random.normal(jax.random.PRNGKey(2), (model.theta_size,))
    du = jnp.array([0.3, -0.2])
    expected = A @ np.asarray(theta, np.float64) + np.asarray(model.B, np.float64) @ du
    np.testing.assert_allclose(model.step(theta, du), expected, atol=1e-5)


def test_initialisation_is_the_identity(initial):
    np.testing.assert_array_equal(initial.transition.as_matrix(), np.eye(initial.theta_size))
    assert initial.theta_size == initial.transition.size == initial.decoder.theta_size


def test_powers_times_matches_matrix_powers(model):
    A = _definition(model.transition)
    M = jax.random.normal(jax.random.PRNGKey(3), (model.theta_size, 3))
    powers = model.transition.powers_times(M, 6)
    expected = [np.linalg.matrix_power(A, k) @ np.asarray(M, np.float64) for k in range(6)]
    np.testing.assert_allclose(powers, np.stack(expected), atol=1e-5)


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_modes_match_a_float64_loop(model, xs, mode):
    A, B = _definition(model.transition), np.asarray(model.B, np.float64)
    theta = np.asarray(model.initial_state(xs[0]), np.float64)
    x = np.asarray(xs, np.float64)
    reference = [theta]
    for t in range(1, T):
        theta = A @ theta + B @ (x[t] - x[t - 1])
        reference.append(theta)
    reference = np.stack(reference)
    thetas = eqx.filter_jit(lambda m, x: m.weight_trajectory(x, mode))(model, xs)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(thetas, reference, atol=2e-5 * scale, rtol=0)
    assert np.abs(reference[-1] - reference[0]).max() > 0.05 * scale  # theta moved


@pytest.mark.parametrize("initial", STRUCTURED, indirect=True)
def test_parallel_equals_sequential_batched_with_finite_gradients(model, xs):
    batch = jnp.stack([xs, -0.5 * xs[::-1]])

    def loss(m, mode):
        return jnp.mean(jax.vmap(lambda x: m(x, mode))(batch) ** 2)

    values, grads = {}, {}
    for mode in ("sequential", "parallel"):
        values[mode], grads[mode] = eqx.filter_jit(eqx.filter_value_and_grad(loss))(model, mode)
    np.testing.assert_allclose(values["parallel"], values["sequential"], rtol=1e-5)
    for g_par, g_seq in zip(
        jax.tree.leaves(grads["parallel"]), jax.tree.leaves(grads["sequential"]), strict=True
    ):
        assert np.isfinite(g_par).all()
        np.testing.assert_allclose(g_par, g_seq, atol=1e-4 * (np.abs(g_seq).max() + 1e-6))
    moved = jax.tree.leaves(grads["sequential"].transition)
    assert any(np.abs(g).max() > 0 for g in moved)  # A's parameters receive a gradient


def test_bad_options_raise():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="transition must be one of"):
        wp.WARP(1, transition="sparse", key=key)
    with pytest.raises(ValueError, match="lowrank"):
        wp.WARP(1, transition="diagonal", transition_rank=4, key=key)
    with pytest.raises(ValueError, match="transition_rank"):
        wp.WARP(1, transition="lowrank", transition_rank=0, key=key)
    with pytest.raises(AttributeError, match="transition='dense'"):
        _ = wp.WARP(1, root_width=4, root_depth=1, transition="diagonal", key=key).A


def _sines(n, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 24)[None, :, None]
    return np.sin(rng.uniform(3, 6, (n, 1, 1)) * t + rng.uniform(0, 3, (n, 1, 1)))


def test_checkpoint_round_trip(model, tmp_path):
    wp.save_model(tmp_path / "m.eqx", model)
    loaded = wp.load_model(tmp_path / "m.eqx")
    assert loaded.config == model.config
    assert loaded.config.get("transition", "dense") == model.transition.kind
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(model), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kind",
    [
        "lowrank",
        pytest.param("diagonal", marks=pytest.mark.slow),
        pytest.param("block", marks=pytest.mark.slow),
    ],
)
def test_training_lowers_the_loss(kind):
    model = wp.WARP(
        1,
        root_width=6,
        root_depth=1,
        hyper_width=4,
        seq_len=24,
        transition=kind,
        key=jax.random.PRNGKey(0),
    )
    trained, history = wp.train(
        model,
        _sines(16, 0).astype(np.float32),
        steps=40,
        batch_size=8,
        optimizer=wp.OptimizerOptions(lr=1e-2),
        objective=wp.ObjectiveOptions(kind="teacher_forced"),
        key=jax.random.PRNGKey(1),
        progress=False,
    )
    loss = np.asarray(history["loss"])
    assert np.isfinite(loss).all() and loss[-5:].mean() < 0.7 * loss[:5].mean()
    moved = jax.tree.leaves(eqx.filter(trained.transition, eqx.is_array))
    start = jax.tree.leaves(eqx.filter(model.transition, eqx.is_array))
    assert any(np.abs(a - b).max() > 0 for a, b in zip(moved, start, strict=True))


def _largest_intermediate(jaxpr) -> int:
    """The most elements of any value a (closed) jaxpr computes, sub-jaxprs included."""
    largest = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            largest = max(largest, int(np.prod(getattr(var.aval, "shape", ()))))
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    largest = max(largest, _largest_intermediate(inner))
    return largest


@pytest.mark.parametrize("kind", ["lowrank", pytest.param("diagonal", marks=pytest.mark.slow)])
def test_a_hundred_thousand_weights_without_a_dense_matrix(kind):
    model = wp.WARP(
        1,
        root_width=320,
        root_depth=2,
        hyper_width=4,
        seq_len=8,
        transition=kind,
        key=jax.random.PRNGKey(0),
    )
    D = model.theta_size
    assert D >= 100_000  # a dense A would take 40 GB in float32
    assert max(leaf.size for leaf in jax.tree.leaves(model)) < D * 64
    xs = jnp.sin(jnp.linspace(0.0, 2.0, 8))[None, :, None] * jnp.array([1.0, -0.5])[:, None, None]

    def loss(m):  # "auto" would pick the kernel form for a dense A of this size
        def one(x):
            return ar_rollout(m, x, jnp.arange(8) < 3, ar_algorithm="auto", batch_size=64)

        return jnp.mean(jax.vmap(one)(xs) ** 2)

    grad_fn = eqx.filter_value_and_grad(loss)
    closed = jax.make_jaxpr(lambda m: grad_fn(m))(model)
    assert _largest_intermediate(closed.jaxpr) < D * 64  # nothing near D x D
    value, grads = eqx.filter_jit(grad_fn)(model)
    assert np.isfinite(value)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


def test_run_config_and_command_line_select_the_transition():
    from warp_phys._train_flags import config_from_args
    from warp_phys.cli import build_parser
    from warp_phys.training.models import build_model

    argv = ["train", "--out", "x", "--transition", "lowrank", "--transition-rank", "3"]
    config = config_from_args(build_parser().parse_args(argv))
    assert (config.transition, config.transition_rank) == ("lowrank", 3)
    config = config.replace(root_width=4, root_depth=1, hyper_width=4)
    model = build_model(config, 1, 16, key=jax.random.PRNGKey(0))
    assert isinstance(model.transition, wp.LowRankTransition) and model.transition.rank == 3
    with pytest.raises(ValueError, match="transition"):
        wp.RunConfig(transition="sparse")


def test_transition_summary_reads_any_kind(model):
    from warp_phys.plotting import transition_summary

    info = transition_summary(model)
    A = _definition(model.transition)
    np.testing.assert_allclose(info["A_minus_I"], A - np.eye(len(A)), atol=1e-6)
    np.testing.assert_allclose(np.sort_complex(info["eigenvalues"]),
                               np.sort_complex(np.linalg.eigvals(A)), atol=1e-6)  # fmt: skip


def test_default_learning_rate_of_a_is_sized_per_kind(initial):
    lr = 1e-3
    optimizer = wp.make_optimizer(initial, wp.OptimizerOptions(lr=lr, clip="none"))
    params = eqx.filter(initial, eqx.is_inexact_array)
    ones = jax.tree.map(jnp.ones_like, params)
    updates, _ = optimizer.update(ones, optimizer.init(params), params)  # Adam: -lr sign(g)
    D = initial.theta_size  # 38, its largest parameter tensor the 6 x 3 first layer
    divisor = {"dense": D, "diagonal": 1.0, "lowrank": np.sqrt(D * 3), "block": 18}
    divisor = divisor[initial.transition.kind]  # one Adam step moves A by ~lr
    assert initial.transition.lr_divisor == pytest.approx(divisor)
    for leaf in jax.tree.leaves(updates.transition):
        np.testing.assert_allclose(leaf, -lr / divisor, rtol=1e-3)
    np.testing.assert_allclose(updates.B, -lr, rtol=1e-3)


@pytest.mark.parametrize("initial", STRUCTURED, indirect=True)
def test_kernel_ar_algorithm_needs_a_dense_transition(model, xs):
    with pytest.raises(ValueError, match="needs a dense transition"):
        ar_rollout(model, xs, jnp.arange(T) < 8, ar_algorithm="kernel")


def test_rotation_init_is_orthogonal_and_off_by_default():
    """`init="rotation"` (dense only): 2 x 2 rotations, so A^T A = I and every
    eigenvalue has modulus 1, with angles spread in (0, pi); the default stays A = I."""
    from warp_phys._transitions import make_transition

    key, build = jax.random.PRNGKey(0), dict(rank=None, dtype=jnp.float32)
    assert np.array_equal(make_transition("dense", (3, 4), key=key, **build).matrix, np.eye(7))
    A = np.asarray(make_transition("dense", (3, 4), key=key, init="rotation", **build).matrix)
    assert np.allclose(A.T @ A, np.eye(7), atol=1e-6) and A[6, 6] == 1 and A[0, 2] == 0
    angles = np.angle(np.linalg.eigvals(A))
    assert np.allclose(np.abs(np.linalg.eigvals(A)), 1, atol=1e-6)
    assert len(np.unique(np.round(np.abs(angles[np.abs(angles) > 1e-6]), 5))) == 3
    with pytest.raises(ValueError, match="dense"):
        make_transition("diagonal", (7,), key=key, init="rotation", **build)
    with pytest.raises(ValueError, match="init must be one of"):
        make_transition("dense", (7,), key=key, init="spiral", **build)


def _rotation_warp(**options):
    """A tiny WARP (D_theta 13, odd: one fixed axis) on the same key every time."""
    build = dict(root_width=3, root_depth=1, hyper_width=2, seq_len=8, key=jax.random.PRNGKey(4))
    return wp.WARP(1, **{**build, **options})


def test_warp_rotation_init_is_a_block_diagonal_rotation_drawn_from_its_own_key(tmp_path):
    """`WARP(transition_init="rotation")`: A is 2 x 2 rotations [[c, -s], [s, c]] by angles
    in (0, pi) on the diagonal (orthogonal, det 1); every other parameter is the identity
    model's, and the angles come from no key that another part of WARP draws from (the
    drive's was once reused); the choice is in the config and survives a checkpoint."""
    from warp_phys._transitions import rotation_matrix

    plain, rotated = _rotation_warp(), _rotation_warp(transition_init="rotation")
    A, D = np.asarray(rotated.A, np.float64), rotated.theta_size
    assert D % 2 == 1 and A[-1, -1] == 1 and np.allclose(A.T @ A, np.eye(D), atol=1e-6)
    assert np.isclose(np.linalg.det(A), 1.0, atol=1e-5)
    pairs = np.arange(0, D - 1, 2)
    blocks = np.zeros_like(A)
    for i in pairs:
        blocks[i : i + 2, i : i + 2] = A[i : i + 2, i : i + 2]
    assert np.array_equal(blocks[:-1, :-1], A[:-1, :-1])  # nothing off the 2 x 2 blocks
    cos, sin = A[pairs, pairs], A[pairs + 1, pairs]
    assert np.allclose(A[pairs + 1, pairs + 1], cos) and np.allclose(A[pairs, pairs + 1], -sin)
    assert np.all(sin > 0) and len(np.unique(np.round(cos, 5))) == len(pairs)  # (0, pi), spread

    same = lambda m: jax.tree.leaves(eqx.filter(m, eqx.is_array))
    others = lambda m: same(eqx.tree_at(lambda m: m.transition, m, plain.transition))
    for a, b in zip(others(rotated), same(plain), strict=True):
        np.testing.assert_array_equal(a, b)
    drive_key = jax.random.fold_in(jax.random.PRNGKey(4), 3)
    assert not np.allclose(A, rotation_matrix(D, drive_key))
    driven = _rotation_warp(transition_init="rotation", drive_features=2)
    np.testing.assert_array_equal(driven.A, rotated.A)  # the drive draws from its own key

    assert rotated.config["transition_init"] == "rotation" and "transition_init" not in plain.config
    assert _rotation_warp(transition_init="identity").config_json == plain.config_json
    loaded = wp.load_model(wp.save_model(tmp_path / "rotation.eqx", rotated))
    assert loaded.config == rotated.config
    np.testing.assert_array_equal(loaded.A, rotated.A)


@pytest.mark.parametrize("kind", STRUCTURED)
def test_rotation_init_of_a_structured_transition_is_a_one_line_error(kind):
    with pytest.raises(ValueError, match="transition_init 'rotation' applies to") as error:
        wp.WARP(1, transition=kind, transition_init="rotation", key=jax.random.PRNGKey(0))
    assert "\n" not in str(error.value) and repr(kind) in str(error.value)
    with pytest.raises(ValueError, match="transition_init must be one of identity, rotation"):
        wp.WARP(1, transition_init="spiral", key=jax.random.PRNGKey(0))


def test_run_config_and_command_line_select_the_rotation_init():
    from warp_phys._train_flags import config_from_args
    from warp_phys.cli import build_parser
    from warp_phys.training.models import build_model

    argv = ["train", "--out", "x", "--transition-init", "rotation"]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.transition_init == "rotation" and wp.RunConfig().transition_init == "identity"
    config = config.replace(root_width=3, root_depth=1, hyper_width=2)
    model = build_model(config, 1, 8, key=jax.random.PRNGKey(4))
    assert model.config["transition_init"] == "rotation"
    assert np.allclose(model.A.T @ model.A, np.eye(model.theta_size), atol=1e-6)
    assert not np.allclose(model.A, np.eye(model.theta_size))
    with pytest.raises(ValueError, match="transition_init 'rotation' applies to"):
        wp.RunConfig(transition="diagonal", transition_init="rotation")  # before any data
