"""Diagnostics of the learned recurrence theta_t = A theta_{t-1} + B (x_t - x_{t-1})
(WARP_SPEC section 6.5): the spectrum and diagonal of A, A - I and B."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._common import channel_names as _channel_names
from ._common import weight_groups


def transition_summary(model) -> dict[str, np.ndarray]:
    """Numbers behind `plot_transition`.

    **Arguments:**

    - `model`: a `WARP` model (`A` of shape `(D, D)`, `B` of shape `(D, d)`).

    **Returns:** dict with `eigenvalues` `(D,)` complex (of A, computed in float64:
    O(D^3) time), `diagonal` `(D,)` (diag A), `spectral_radius` (max |eigenvalue|; above
    1, theta_t can grow geometrically in free-running mode) and `A_minus_I` `(D, D)`,
    `B` `(D, d)`.
    """
    A = np.asarray(model.transition.as_matrix(), dtype=np.float64)  # any kind, small D
    B = np.asarray(model.B, dtype=np.float64)
    eigenvalues = np.linalg.eigvals(A)
    return {
        "eigenvalues": eigenvalues,
        "diagonal": np.diag(A).copy(),
        "spectral_radius": float(np.abs(eigenvalues).max()),
        "A_minus_I": A - np.eye(A.shape[0]),
        "B": B,
    }


def plot_transition(
    model, *, channel_names: list[str] | None = None, title: str | None = None
) -> Figure:
    """The transition matrices of a WARP model.

    Four panels: the eigenvalues of A in the complex plane (with the unit circle; A = I
    at initialisation puts them all at 1), a histogram of diag(A), the image of
    `A - I` (the change from initialisation, parameter tensors of theta marked) and the
    columns of B against the weight index.

    **Arguments:**

    - `model`: a `WARP` model.
    - `channel_names`: names of the input channels (columns of B).

    **Returns:** a `Figure` with five axes (four panels and the colour bar of `A - I`).
    """
    if not (hasattr(model, "transition") and hasattr(model, "B")):
        raise ValueError(f"a transition plot needs a WARP model, got {type(model).__name__}")
    info = transition_summary(model)
    D, d = info["B"].shape
    if getattr(model, "drive", None) is not None:  # B's columns: the drive's features
        names = [f"e{i}" for i in range(d)]
    else:
        names = _channel_names(channel_names, d)
    groups = weight_groups(model.decoder) if hasattr(model, "decoder") else [("theta", 0, D)]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.5))
    (ax_eig, ax_hist), (ax_a, ax_b) = axes

    ev = info["eigenvalues"]
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
    ax_eig.plot(circle.real, circle.imag, color="0.6", lw=0.8, label="unit circle")
    ax_eig.scatter(ev.real, ev.imag, s=10, color="C0", alpha=0.7, label=f"{D} eigenvalues")
    ax_eig.scatter([1], [0], marker="+", s=120, color="C3", label="A = I (initialisation)")
    # zoom on the eigenvalues (they start clustered at 1): the unit circle shows as an arc
    pts = np.concatenate([ev, [1.0 + 0j]])
    span = max(np.ptp(pts.real), np.ptp(pts.imag), 1e-3)
    centre = (pts.real.min() + pts.real.max()) / 2, (pts.imag.min() + pts.imag.max()) / 2
    ax_eig.set_xlim(centre[0] - 0.6 * span, centre[0] + 0.6 * span)
    ax_eig.set_ylim(centre[1] - 0.6 * span, centre[1] + 0.6 * span)
    ax_eig.set_xlabel("real part")
    ax_eig.set_ylabel("imaginary part")
    ax_eig.set_title(f"eigenvalues of A (spectral radius {info['spectral_radius']:.4f})")
    ax_eig.legend(fontsize=8, loc="lower left")

    diagonal = info["diagonal"]
    ax_hist.hist(diagonal - 1.0, bins=min(60, max(10, D // 10)), color="C0")
    ax_hist.axvline(0.0, color="C3", ls="--", lw=1, label="0 (initialisation, A = I)")
    ax_hist.xaxis.set_major_locator(MaxNLocator(5))
    ax_hist.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    ax_hist.set_xlabel(r"diagonal entry minus one, $A_{ii} - 1$ (1)")
    ax_hist.set_ylabel("number of entries")
    ax_hist.set_title(f"diag(A): mean {diagonal.mean():.5f}, std {diagonal.std():.2g}")
    ax_hist.legend(fontsize=8)

    change = info["A_minus_I"]
    limit = float(np.abs(change).max()) or 1.0
    image = ax_a.imshow(
        change,
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(0, D, D, 0),
    )
    fig.colorbar(image, ax=ax_a, label=r"$A_{ij} - \delta_{ij}$ (1)", shrink=0.85)
    for _, start, _ in groups[1:]:
        ax_a.axhline(start, color="0.5", lw=0.4)
        ax_a.axvline(start, color="0.5", lw=0.4)
    ax_a.set_xlabel("weight index j (input)")
    ax_a.set_ylabel("weight index i (output)")
    ax_a.set_title("A - I: the change from initialisation")

    for c in range(d):
        ax_b.plot(np.arange(D), info["B"][:, c], lw=0.8, label=f"B[:, {c}] ({names[c]})")
    for _, start, _ in groups[1:]:
        ax_b.axvline(start, color="0.7", lw=0.5)
    ax_b.axhline(0, color="k", lw=0.5)
    ax_b.set_xlabel("weight index i (grey lines: parameter tensors)")
    ax_b.set_ylabel("B entry (weight units per data unit)")
    ax_b.set_title("B: how an input change moves each weight")
    ax_b.legend(fontsize=8, loc="best")
    fig.suptitle(title or r"Transition of the recurrence $\theta_t = A\theta_{t-1} + B\Delta x_t$")
    fig.tight_layout()
    return fig
