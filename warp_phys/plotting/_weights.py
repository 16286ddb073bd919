"""The weight-space state itself: theta_t as a heat map and per-tensor norms."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..decoders import AbstractDecoder
from ._common import time_axis, time_label, weight_groups


def plot_weights(
    thetas,
    *,
    decoder: AbstractDecoder | None = None,
    t=None,
    context: int | None = None,
    every: int = 1,
    title: str = "Weight-space state theta_t",
    time_unit: str | None = "a.u.",
) -> Figure:
    """Heat map of theta_t (time x weight index, each weight min-max normalised over
    time) and the L2 norm of each parameter tensor over time.

    **Arguments:**

    - `thetas`: shape `(T, D_theta)`, e.g. from `model.weight_trajectory(xs)`.
    - `decoder`: labels the parameter tensors (from its parameter pytree).
    - `t`: times `(T,)` (default: step index); `context`: marks the end of the context.
    - `every`: keep every `every`-th weight in the heat map (large D_theta).
    - `time_unit`: unit of `t` for the x labels.

    **Returns:** a `Figure` with three axes: heat map, norms, colour bar.
    """
    thetas = np.asarray(thetas)
    if thetas.ndim != 2:
        raise ValueError(f"thetas must have shape (T, D_theta), got {thetas.shape}")
    T, D = thetas.shape
    if t is None:
        time_unit = None
    t = time_axis(t, T)
    groups = weight_groups(decoder) if decoder is not None else [("theta", 0, D)]
    if groups[-1][2] != D:
        raise ValueError(f"decoder has D_theta = {groups[-1][2]}, thetas have {D} columns")
    lo, hi = thetas.min(0), thetas.max(0)
    normed = (thetas - lo) / np.where(hi > lo, hi - lo, 1.0)
    fig, (ax_map, ax_norm) = plt.subplots(
        1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    image = ax_map.imshow(
        normed[:, ::every].T,
        aspect="auto",
        origin="lower",
        cmap="viridis",
        extent=(t[0], t[-1], 0, D),
        interpolation="nearest",
    )
    labelled = len(groups) <= 12
    for label, start, stop in groups:
        ax_map.axhline(start, color="w", lw=0.6)
        if labelled and (stop - start) >= D / 40:
            ax_map.text(
                t[-1], (start + stop) / 2, f" {label}", va="center", fontsize=7, clip_on=False
            )
    fig.colorbar(
        image,
        ax=ax_map,
        pad=0.16 if labelled else 0.02,
        label="weight, min-max normalised over time",
    )
    ax_map.set_xlabel(time_label(time_unit))
    ax_map.set_ylabel("weight index" + (f" (every {every})" if every > 1 else ""))
    ax_map.set_title(r"$\theta_t$ per weight")
    for label, start, stop in groups:
        ax_norm.plot(t, np.linalg.norm(thetas[:, start:stop], axis=1), label=label)
    if context is not None:
        for ax in (ax_map, ax_norm):
            ax.axvline(t[context - 1], color="r", lw=1, ls="--")
    ax_norm.set_xlabel(time_label(time_unit))
    ax_norm.set_ylabel("L2 norm (weight units)")
    ax_norm.set_title("norm of each parameter tensor")
    ax_norm.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        ncol=1 + len(groups) // 16,
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig
