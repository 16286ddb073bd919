"""Figures: each function returns a matplotlib `Figure` (nothing is shown or saved
unless asked), so they work headless and in notebooks alike."""

import os
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .decoders import AbstractDecoder


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 130) -> Path:
    """Save `fig` atomically (temp file + rename); the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def weight_groups(decoder: AbstractDecoder) -> list[tuple[str, int, int]]:
    """`(label, start, stop)` of each parameter tensor inside the flat theta, in order."""
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


def plot_reconstruction(
    t,
    truth,
    prediction,
    context: int,
    *,
    std=None,
    channel_names: list[str] | None = None,
    baseline=None,
    title: str = "Reconstruction from a short context",
) -> Figure:
    """Ground truth, observed context (shaded) and forecast for a few trajectories.

    **Arguments:**

    - `t`: times, shape `(T,)`.
    - `truth`: shape `(N, T, d)`; `prediction` (and `std`, `baseline`): shape
      `(N, T - context, d)`, the forecast of steps `context..T-1`.
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    n, _, d = truth.shape
    names = channel_names or [f"x{i}" for i in range(d)]
    fig, axes = plt.subplots(n, d, figsize=(4.2 * d, 2.4 * n), squeeze=False, sharex=True)
    for i in range(n):
        for c in range(d):
            ax = axes[i, c]
            ax.axvspan(t[0], t[context - 1], color="0.9", label="context")
            ax.plot(t, truth[i, :, c], color="k", lw=1.2, label="truth")
            tf = t[context:]
            ax.plot(tf, prediction[i, :, c], color="C3", lw=1.4, ls="--", label="WARP forecast")
            if std is not None:
                s = np.asarray(std)[i, :, c]
                ax.fill_between(
                    tf,
                    prediction[i, :, c] - 2 * s,
                    prediction[i, :, c] + 2 * s,
                    color="C3",
                    alpha=0.2,
                    label="±2 std",
                )
            if baseline is not None:
                ax.plot(
                    tf,
                    np.asarray(baseline)[i, :, c],
                    color="C0",
                    lw=1,
                    ls=":",
                    label="repeat last value",
                )
            if i == 0:
                ax.set_title(names[c])
            if i == n - 1:
                ax.set_xlabel("time t")
            if c == 0:
                ax.set_ylabel(f"trajectory {i}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=len(labels),
        frameon=False,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def plot_weights(
    thetas,
    *,
    decoder: AbstractDecoder | None = None,
    t=None,
    context: int | None = None,
    every: int = 1,
    title: str = "Weight-space state theta_t",
) -> Figure:
    """Heat map of theta_t (time x weight index, each weight min-max normalised over
    time) and the norm of each parameter tensor over time.

    **Arguments:**

    - `thetas`: shape `(T, D_theta)`, e.g. from `model.weight_trajectory(xs)`.
    - `decoder`: labels the parameter tensors (from its parameter pytree).
    - `t`: times `(T,)` (default: step index); `context`: marks the end of the context.
    - `every`: keep every `every`-th weight in the heat map (large D_theta).
    """
    thetas = np.asarray(thetas)
    T, D = thetas.shape
    t = np.arange(T) if t is None else np.asarray(t)
    groups = weight_groups(decoder) if decoder is not None else [("theta", 0, D)]
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
    for label, start, stop in groups:
        ax_map.axhline(start, color="w", lw=0.6)
        if len(groups) <= 12:
            ax_map.text(
                t[-1], (start + stop) / 2, f" {label}", va="center", fontsize=7, clip_on=False
            )
    fig.colorbar(image, ax=ax_map, pad=0.14, label="weight, min-max normalised over time")
    ax_map.set_xlabel("time t")
    ax_map.set_ylabel("weight index")
    ax_map.set_title("theta_t per weight")
    for label, start, stop in groups:
        ax_norm.plot(t, np.linalg.norm(thetas[:, start:stop], axis=1), label=label)
    if context is not None:
        for ax in (ax_map, ax_norm):
            ax.axvline(t[context - 1], color="r", lw=1, ls="--")
    ax_norm.set_xlabel("time t")
    ax_norm.set_ylabel("L2 norm")
    ax_norm.set_title("norm of each parameter tensor")
    ax_norm.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
