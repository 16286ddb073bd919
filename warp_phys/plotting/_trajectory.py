"""The path of theta_t through weight space, next to plain gradient descent fitting the
same weights to the same sequence (WARP_SPEC section 6.3; PCA instead of UMAP)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from jaxtyping import Array, Float
from matplotlib.figure import Figure

from .._identify import state_trajectory
from .._interface import mean_of
from ._common import to_model_units

OPTIMIZERS = {"adabelief": optax.adabelief, "adam": optax.adam, "sgd": optax.sgd}


def pca(points: Float[Array, "N D_theta"], k: int = 2):
    """Principal component scores of `points` via `jnp.linalg.svd`.

    **Arguments:**

    - `points`: shape `(N, D)`.
    - `k`: number of components (at most `min(N, D)`).

    **Returns:** `(scores, explained)`: shape `(N, k)` (the centred points projected on
    the first k principal axes, each axis signed so its largest loading is positive) and
    `(k,)` (the fraction of the total variance each axis explains).
    """
    points = jnp.asarray(points, dtype=jnp.float32)
    if points.ndim != 2 or not 1 <= k <= min(points.shape):
        raise ValueError(f"need points (N, D) and 1 <= k <= min(N, D), got {points.shape}, {k}")
    centred = points - points.mean(0)
    _, s, vt = jnp.linalg.svd(centred, full_matrices=False)
    axes = vt[:k]
    signs = jnp.sign(axes[jnp.arange(k), jnp.argmax(jnp.abs(axes), axis=1)])
    axes = axes * jnp.where(signs == 0, 1.0, signs)[:, None]
    variance = s**2
    explained = variance[:k] / jnp.maximum(variance.sum(), jnp.finfo(variance.dtype).tiny)
    return centred @ axes.T, explained


def sequence_mse(model, theta: Float[Array, " D_theta"], xs: Float[Array, "T data"]):
    """Teacher-forced MSE of ONE fixed theta on a sequence: the mean over t of
    `(decode(theta, t+1, x_t) - x_{t+1})^2` (model units)."""
    steps = jnp.arange(1, xs.shape[0])
    prediction = jax.vmap(lambda s, x: mean_of(model.decode(theta, s, x)))(steps, xs[:-1])
    return jnp.mean((prediction - xs[1:]) ** 2)


@eqx.filter_jit
def _descend(model, theta0, xs, optimizer: str, learning_rate: float, steps: int):
    # the optimiser is built inside from hashable static arguments, so repeated calls
    # with the same settings reuse the compiled function
    optimizer = OPTIMIZERS[optimizer](learning_rate)
    opt_state = optimizer.init(theta0)
    loss_and_grad = jax.value_and_grad(lambda th: sequence_mse(model, th, xs))

    def step(carry, _):
        theta, opt_state = carry
        loss, grad = loss_and_grad(theta)
        updates, opt_state = optimizer.update(grad, opt_state, theta)
        theta = optax.apply_updates(theta, updates)
        return (theta, opt_state), (theta, loss)

    _, (iterates, losses) = jax.lax.scan(step, (theta0, opt_state), None, length=steps)
    final = sequence_mse(model, iterates[-1], xs)
    return jnp.concatenate([theta0[None], iterates]), jnp.concatenate([losses, final[None]])


def gradient_descent_trajectory(
    model,
    xs: Float[Array, "T data"],
    *,
    steps: int = 256,
    learning_rate: float = 1e-2,
    optimizer: str = "adabelief",
) -> tuple[Float[Array, "steps+1 D_theta"], Float[Array, " steps+1"]]:
    """Fit theta alone to one sequence by gradient descent, from WARP's theta_0.

    The paper's comparison: start at `theta_0 = model.initial_state(xs[0])` and minimise
    `sequence_mse(model, theta, xs)` (every other parameter frozen).

    **Arguments:**

    - `model`: a `WARP` model; `xs`: one trajectory `(T, data_size)`, model units.
    - `steps`, `learning_rate`, `optimizer`: `"adabelief"` (the paper's), `"adam"` or `"sgd"`.

    **Returns:** `(iterates, losses)`: shapes `(steps + 1, D_theta)` (theta_0 first) and
    `(steps + 1,)`, the MSE of each iterate.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    xs = jnp.asarray(xs)
    theta0 = model.initial_state(xs[0])
    return _descend(model, theta0, xs, optimizer, float(learning_rate), steps)


def plot_trajectory(
    model,
    y,
    *,
    normalizer=None,
    context: int | None = None,
    gd_steps: int = 256,
    learning_rate: float = 1e-2,
    optimizer: str = "adabelief",
    title: str | None = None,
) -> Figure:
    """theta_0..theta_{T-1} embedded in 2-D by PCA and coloured by time, next to the
    iterates of gradient descent fitting theta to the same sequence from the same
    theta_0; and the step size |theta_t - theta_{t-1}| of both.

    **Arguments:**

    - `model`: a `WARP` model; `y`: one trajectory `(T, data_size)` in data units.
    - `normalizer`: the model's normalisation (`None`: the model works on `y` directly).
    - `context`: `None` (every x_t observed) or L (free-running after L steps).
    - `gd_steps`: gradient-descent iterations (0: WARP alone); `learning_rate`,
      `optimizer`: see `gradient_descent_trajectory`.

    **Returns:** a `Figure` with a PCA panel, a step-size panel and one colour bar per
    trajectory (3 axes, or 4 with gradient descent).
    """
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != model.data_size:
        raise ValueError(f"y must have shape (T, {model.data_size}), got {y.shape}")
    if isinstance(gd_steps, bool) or not isinstance(gd_steps, int) or gd_steps < 0:
        raise ValueError(f"gd_steps must be an int >= 0, got {gd_steps!r}")
    xs = to_model_units(y, normalizer)
    thetas, _ = state_trajectory(model, xs, context)
    T = thetas.shape[0]
    warp_loss = None
    if context is None:
        warp_loss = float(_teacher_forced_mse(model, xs))
    paths = [np.asarray(thetas)]
    if gd_steps:
        iterates, losses = gradient_descent_trajectory(
            model, xs, steps=gd_steps, learning_rate=learning_rate, optimizer=optimizer
        )
        paths.append(np.asarray(iterates))
    scores, explained = pca(np.concatenate(paths), 2)
    scores, explained = np.asarray(scores), np.asarray(explained)

    fig, (ax, ax_step) = plt.subplots(
        1, 2, figsize=(12.5, 5), gridspec_kw={"width_ratios": [1.35, 1]}
    )
    warp_xy = scores[:T]
    sizes = 6 + 40 * np.linspace(0, 1, T)
    ax.plot(*warp_xy.T, color="0.6", lw=0.6, zorder=1)
    points = ax.scatter(
        *warp_xy.T,
        c=np.arange(T),
        cmap="viridis",
        s=sizes,
        alpha=0.85,
        zorder=2,
        label=r"WARP $\theta_t$",
    )
    fig.colorbar(points, ax=ax, pad=0.01, label="WARP step t")
    ax_step.semilogy(np.arange(1, T), _step_sizes(paths[0]), color="C2", label=r"WARP $\theta_t$")
    if gd_steps:
        label = f"gradient descent ({optimizer}, lr {learning_rate:g})"
        _draw_descent(fig, ax, ax_step, scores[T:], paths[1], float(losses[-1]), label)
    ax.scatter(*warp_xy[0], marker="*", s=220, color="k", zorder=3, label=r"$\theta_0$ (both)")
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance, weight units)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}% of variance, weight units)")
    ax.set_title("2-D PCA of the weight trajectories")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    if warp_loss is not None:
        ax_step.plot([], [], " ", label=f"WARP teacher-forced MSE {warp_loss:.3g}")
    ax_step.set_xlabel("step t / iteration")
    ax_step.set_ylabel(r"mean $|\theta_t - \theta_{t-1}|$ (weight units)")
    ax_step.set_title("size of each update")
    ax_step.legend(fontsize=8, loc="best")
    fig.suptitle(title or "WARP's path through weight space vs gradient descent")
    fig.tight_layout()
    return fig


@eqx.filter_jit
def _teacher_forced_mse(model, xs):
    return jnp.mean((mean_of(model(xs)) - xs[1:]) ** 2)


def _step_sizes(path: np.ndarray) -> np.ndarray:
    # floor at a tiny value so a log axis can show exact zeros (e.g. A = I, B = 0)
    return np.maximum(np.mean(np.abs(np.diff(path, axis=0)), axis=1), 1e-12)


def _draw_descent(fig, ax, ax_step, gd_xy, path, final_loss: float, label: str):
    """The gradient-descent iterates: their PCA scores `gd_xy` `(n, 2)` on `ax`, the
    size of each update of `path` `(n, D_theta)` on `ax_step`."""
    n = gd_xy.shape[0]
    ax.plot(*gd_xy.T, color="0.8", lw=0.6, zorder=1)
    gd_points = ax.scatter(
        *gd_xy.T,
        c=np.arange(n),
        cmap="autumn",
        marker="s",
        s=4 + 30 * np.linspace(0, 1, n),
        alpha=0.55,
        zorder=2,
        label=label,
    )
    fig.colorbar(gd_points, ax=ax, pad=0.02, label="gradient-descent iteration")
    ax_step.semilogy(
        np.arange(1, n),
        _step_sizes(path),
        color="C1",
        label=f"gradient descent (final MSE {final_loss:.3g})",
    )
