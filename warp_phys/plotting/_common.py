"""What every figure shares: atomic saving, weight groups, units and time axes."""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from PIL import Image  # matplotlib's own PNG writer (loaded with matplotlib anyway)

from systems import atomic_path

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


def shade_context(ax, t: np.ndarray, context: int | None, *, label: str | None = "context"):
    """Shade the observed steps `0..context-1` of a time axis."""
    if context is not None and context > 0:
        ax.axvspan(t[0], t[min(context, len(t)) - 1], color="0.9", zorder=0, label=label)
