"""The paper's "results matrix": what every intermediate theta_t believes about the
whole trajectory (WARP_SPEC section 6.1)."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure

from .._identify import state_trajectory
from .._interface import mean_of
from ._common import channel_names as _channel_names
from ._common import (
    shade_context,
    time_axis,
    time_label,
    to_data_units,
    to_model_units,
)

Feed = Literal["data", "rollout"]


@eqx.filter_jit
def _belief(model, thetas, xs, rollout: bool):
    T = xs.shape[0]
    steps = jnp.arange(T)

    def row(theta):
        first = mean_of(model.decode(theta, 0, xs[0]))
        if not rollout:
            prev = jnp.concatenate([xs[:1], xs[:-1]])
            rest = jax.vmap(lambda s, x: mean_of(model.decode(theta, s, x)))(steps[1:], prev[1:])
            return jnp.concatenate([first[None], rest])

        def step(y_prev, s):
            y = mean_of(model.decode(theta, s, y_prev))
            return y, y

        _, rest = jax.lax.scan(step, xs[0], steps[1:])
        return jnp.concatenate([first[None], rest])

    return jax.vmap(row)(thetas)


def belief_matrix(
    model, xs: Float[Array, "T data"], *, feed: Feed = "data", thetas=None
) -> Float[Array, "T T data"]:
    """Decode every state theta_t over the whole time grid.

    **Arguments:**

    - `model`: a `WARP` model.
    - `xs`: one trajectory `(T, data_size)` in model units.
    - `feed`: the previous observation each decode gets: `"data"`: the true x_{s-1}
      (so entry `[t, t+1]` is exactly the model's one-step prediction of x_{t+1});
      `"rollout"`: the decoder's own previous output, starting from x_0 (what theta_t,
      frozen, would generate on its own: the belief of a step-based physical prior).
      Decoders that ignore x_prev give the same matrix either way.
    - `thetas`: the states `(T, D_theta)` (default `model.weight_trajectory(xs)`).

    **Returns:** shape `(T, T, data_size)`, entry `[t, s]` = the root network with weights
    theta_t at step s (tau_s); column 0 is decoded with x_prev = x_0. Means only for
    probabilistic models. Model units.
    """
    if feed not in ("data", "rollout"):
        raise ValueError(f"feed must be 'data' or 'rollout', got {feed!r}")
    xs = jnp.asarray(xs)
    thetas = state_trajectory(model, xs)[0] if thetas is None else jnp.asarray(thetas)
    if thetas.shape != (xs.shape[0], model.theta_size):
        raise ValueError(
            f"thetas must have shape {(xs.shape[0], model.theta_size)}, got {thetas.shape}"
        )
    return _belief(model, thetas, xs, feed == "rollout")


def plot_belief(
    model,
    y,
    *,
    t=None,
    normalizer=None,
    feed: Feed = "data",
    context: int | None = None,
    channel_names: list[str] | None = None,
    rows: int = 4,
    title: str | None = None,
    time_unit: str | None = "a.u.",
) -> Figure:
    """The "results matrix": a T x T image per channel of what each theta_t predicts at
    every time, with a few of its rows drawn against the truth below.

    **Arguments:**

    - `model`: a `WARP` model.
    - `y`: one trajectory `(T, data_size)` in data units.
    - `t`: times `(T,)` (default: step index).
    - `normalizer`: the model's normalisation (`None`: the model works on `y` directly).
    - `feed`: see `belief_matrix`.
    - `context`: `None`: every x_t is observed; an int L: the states after step L-1 run
      free on the model's own predictions (as in a forecast). The decodes' x_prev
      (`feed="data"`) are the true observations either way.
    - `channel_names`: panel titles; `rows`: how many rows of the matrix to draw as curves.
    - `time_unit`: unit of `t`.

    **Returns:** a `Figure` with `2 * data_size` axes plus one colour bar per channel:
    top the image (rows theta_t, columns time), bottom the curves. Data units.
    """
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != model.data_size:
        raise ValueError(f"y must have shape (T, {model.data_size}), got {y.shape}")
    T, d = y.shape
    if t is None:
        time_unit = None
    t = time_axis(t, T)
    names = _channel_names(channel_names, d)
    xs = to_model_units(y, normalizer)
    thetas, _ = state_trajectory(model, xs, context)
    belief = belief_matrix(model, xs, feed=feed, thetas=thetas)
    belief = np.asarray(to_data_units(belief, normalizer))
    # rows at the middle of `rows` equal bands, so none sits on the image's edge
    picks = np.unique(((np.arange(max(1, rows)) + 0.5) * T / max(1, rows)).astype(int))
    fig, axes = plt.subplots(
        2,
        d,
        figsize=(4.6 * d + 0.6, 7.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [1.5, 1]},
    )
    for c in range(d):
        _draw_channel(
            fig,
            axes[0, c],
            axes[1, c],
            y[:, c],
            belief[..., c],
            t,
            picks,
            context,
            names[c],
            time_unit,
        )
    axes[1, 0].legend(fontsize=7, loc="upper right", ncol=2)
    source = "its own previous output" if feed == "rollout" else "the observed x_{s-1}"
    fig.suptitle(
        (title or "What each state believes about the whole trajectory")
        + f"\nrow t: the root network with weights theta_t at every time s, x_prev = {source}"
        + "; red dashed: the diagonal s = t",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _draw_channel(fig, ax, ax_rows, y, belief, t, picks, context, name, time_unit):
    """One channel: its matrix `belief` `(T, T)` as an image on `ax`, and the rows
    `picks` against the truth `y` `(T,)` on `ax_rows` (data units)."""
    cmap = plt.get_cmap("viridis")
    # the colour range of the truth (+-25%): diverging beliefs saturate, not rescale
    lo, hi = y.min(), y.max()
    lo, hi = lo - 0.25 * (hi - lo + 1e-9), hi + 0.25 * (hi - lo + 1e-9)
    image = ax.imshow(
        belief,
        origin="lower",
        aspect="auto",
        cmap="gray",
        vmin=lo,
        vmax=hi,
        extent=(t[0], t[-1], t[0], t[-1]),
        interpolation="nearest",
    )
    ax.plot([t[0], t[-1]], [t[0], t[-1]], color="C3", lw=0.8, ls="--")
    if context is not None:
        ax.axhline(t[context - 1], color="C1", lw=0.8, ls=":")
    fig.colorbar(image, ax=ax, label=f"{name} (data units)", extend="both")
    ax.set_title(f"{name}: " + r"root$_{\theta_t}$ decoded at every time")
    ax.set_xlabel("decoded at " + time_label(time_unit, "s"))
    ax.set_ylabel(r"state $\theta_t$ at " + time_label(time_unit))
    shade_context(ax_rows, t, context)
    ax_rows.plot(t, y, color="k", lw=1.6, label="truth")
    for k, row in enumerate(picks):
        color = cmap(k / max(1, len(picks) - 1))
        label = r"$\theta_t$" + f" at t = {t[row]:.3g}"
        ax_rows.plot(t, belief[row], color=color, lw=1, label=label)
        ax.axhline(t[row], color=color, lw=0.8)
    lo_y, hi_y = y.min(), y.max()
    pad = 0.5 * (hi_y - lo_y + 1e-9)
    ax_rows.set_ylim(lo_y - pad, hi_y + pad)
    ax_rows.set_xlabel(time_label(time_unit, "s"))
    ax_rows.set_ylabel(f"{name} (data units)")
    ax_rows.set_title("rows of the matrix (coloured lines above)")
