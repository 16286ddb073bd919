"""What every figure shares: atomic saving, weight groups, units, and the walk from a
model and a trajectory to the states theta_t it visits."""

import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure
from PIL import Image  # matplotlib's own PNG writer (loaded with matplotlib anyway)

from systems import atomic_path

from .._rollout import rollout
from ..decoders import AbstractDecoder

FORMATS = ("png", "pdf", "svg")


def save_figure(
    fig: Figure, path: str | os.PathLike, dpi: int = 130, *, palette: bool = False
) -> Path:
    """Save `fig` atomically (temporary file + rename).

    **Arguments:**

    - `fig`: a matplotlib figure.
    - `path`: the output file; its suffix picks the format (`.png`, `.pdf` or `.svg`);
      no suffix means `.png`.
    - `dpi`: resolution of raster output.
    - `palette`: PNG only: store with an adaptive 256-colour palette (files 2-4x
      smaller, e.g. for figures committed to a repository).

    **Returns:** the path written. Raises `ValueError` for another suffix.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    if path.suffix.lower().lstrip(".") not in FORMATS:
        raise ValueError(f"figure format must be one of {FORMATS}, got {path.suffix!r}")
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        if palette and path.suffix.lower() == ".png":
            with Image.open(tmp) as image:
                image = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
            image.save(tmp, format="PNG", optimize=True)
    return path


def weight_groups(decoder: AbstractDecoder) -> list[tuple[str, int, int]]:
    """`(label, start, stop)` of each parameter tensor inside the flat theta, in order.

    Labels name the tensor's path in the parameter pytree, e.g. `"layer 0 weight"` or
    `"mlp layer 1 bias"`; `start:stop` is its slice of theta.
    """
    leaves = jax.tree_util.tree_flatten_with_path(decoder.param_shapes())[0]
    groups, start = [], 0
    for path, shape in leaves:
        label = " ".join(
            f"layer {p.idx}" if hasattr(p, "idx") else str(getattr(p, "key", getattr(p, "name", p)))
            for p in path
        )
        groups.append((label, start, start + shape.size))
        start += shape.size
    return groups


def time_axis(t, length: int) -> np.ndarray:
    """`t` as a numpy array of shape `(length,)`, or the step index when `t` is None."""
    if t is None:
        return np.arange(length, dtype=float)
    t = np.asarray(t, dtype=float)
    if t.shape != (length,):
        raise ValueError(f"t must have shape ({length},) (one time per step), got {t.shape}")
    return t


def time_label(time_unit: str | None, symbol: str = "t") -> str:
    """Axis label of physical time; `None` means the axis is the step index."""
    return f"step index {symbol}" if time_unit is None else f"time {symbol} ({time_unit})"


def channel_names(names, data_size: int) -> list[str]:
    """`names` checked against `data_size`, or `x0, x1, ...`."""
    if names is None:
        return [f"x{i}" for i in range(data_size)]
    names = list(names)
    if len(names) != data_size:
        raise ValueError(f"need {data_size} channel names, got {len(names)}: {names}")
    return names


def check_index(index: int, n: int, what: str = "trajectory") -> int:
    """`index` as an int in `[0, n)`, or a `ValueError` that says the valid range."""
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ValueError(f"{what} index must be an int, got {index!r}")
    if not 0 <= index < n:
        raise ValueError(f"{what} index {index} is out of range: there are {n} (0..{n - 1})")
    return int(index)


def to_model_units(ys, normalizer):
    """Data as the model sees it: `normalizer.apply(ys)`, or `ys` without a normalizer."""
    ys = jnp.asarray(ys)
    return ys if normalizer is None else normalizer.apply(ys)


def to_data_units(ys, normalizer, *, std: bool = False):
    """Model outputs back in data units (`std=True`: only rescaled, not shifted)."""
    ys = jnp.asarray(ys)
    if normalizer is None:
        return ys
    return ys * normalizer.std if std else normalizer.invert(ys)


@eqx.filter_jit
def _observed_states(model, xs, ts=None):
    return model.weight_trajectory(xs) if ts is None else model.weight_trajectory(xs, ts=ts)


@eqx.filter_jit
def _forecast_states(model, xs, context: int, ts=None):
    # one step past T, so the rollout's states run up to theta_{T-1}; that row is never read
    xs = jnp.concatenate([xs, xs[-1:]])
    if ts is not None:
        ts = jnp.append(ts, 2 * ts[-1] - ts[-2])
    observed = jnp.arange(xs.shape[0]) < context
    _, thetas, inputs = rollout(model, xs, observed, ts=ts, return_states=True)
    return thetas, inputs


def state_trajectory(
    model, xs: Float[Array, "T data"], context: int | None = None, ts=None
) -> tuple[Float[Array, "T D_theta"], Float[Array, "T data"]]:
    """The states theta_0..theta_{T-1} a WARP model visits along `xs` (model units).

    **Arguments:**

    - `model`: a `WARP` model.
    - `xs`: one trajectory, shape `(T, data_size)`, in the units the model was trained on.
    - `context`: `None` (every x_t observed: `model.weight_trajectory(xs)`), or the
      number L of observed steps, after which the model runs free on its own (mean)
      predictions as in `reconstruct`.
    - `ts`: the trajectory's time stamps `(T,)` (time-aware models on irregular grids).

    **Returns:** `(thetas, inputs)`: shapes `(T, D_theta)` and `(T, data_size)`, where
    `inputs[t]` is the u_t that theta_t has consumed last (x_t, or the prediction of x_t
    once free-running). The prediction of x_{t+1} is `model.decode(thetas[t], t + 1,
    inputs[t])`.
    """
    xs = jnp.asarray(xs)
    T = xs.shape[0]
    if context is None or context >= T:
        return _observed_states(model, xs, ts), xs
    if isinstance(context, bool) or not isinstance(context, int | np.integer) or context < 1:
        raise ValueError(f"context must be an int >= 1 (or None), got {context!r}")
    return _forecast_states(model, xs, int(context), ts)


def shade_context(ax, t: np.ndarray, context: int | None, *, label: str | None = "context"):
    """Shade the observed steps `0..context-1` of a time axis."""
    if context is not None and context > 0:
        ax.axvspan(t[0], t[min(context, len(t)) - 1], color="0.9", zorder=0, label=label)
