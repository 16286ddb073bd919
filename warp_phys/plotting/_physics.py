"""Physical parameters read from theta_t over time, next to the true ones: what a
WARP-Phys model believes the system is at each moment."""

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .._identify import parameter_trajectory, parameter_units, scalar_components
from .._refine import refine_parameters
from ._common import shade_context, time_axis, time_label, to_model_units

# symbols of the built-in priors' parameters, for the axis labels
_SYMBOLS = {"omega0": r"$\omega_0$", "zeta": r"$\zeta$"}


def _label(component: str, base: str, units: Mapping[str, str]) -> str:
    """`omega0 (rad/s)`: the parameter and the unit its prior states."""
    unit = units.get(base, "")
    return _SYMBOLS.get(component, component) + (f" ({unit})" if unit else "")


def plot_physics(
    model,
    y,
    *,
    t=None,
    normalizer=None,
    truth: dict[str, float] | None = None,
    context: int | None = None,
    title: str | None = None,
    time_unit: str | None = "a.u.",
    refine: int = 0,
    fit_context: int | None = None,
) -> Figure:
    """Physical parameters read from theta_t over time, with the true values.

    **Arguments:**

    - `model`: a `WARP` model with a physical decoder (e.g. `damped_oscillator`); an
      `mlp` decoder is a `ValueError`.
    - `y`: one trajectory `(T, data_size)` in data units.
    - `t`: times `(T,)` (default: step index).
    - `normalizer`: the model's normalisation (`None`: the model works on `y` directly).
      The decoder itself must compute in physical units (e.g. `damped_oscillator`'s
      `scale`/`shift` options) for the values to be physical.
    - `truth`: true values `{name: value}` (e.g. from a system's
      `physical_parameters`); names the decoder does not have are ignored. A vector
      parameter `p` matches `p[i]` keys.
    - `context`: `None` (every x_t observed) or L (free-running after L steps, shaded).
    - `time_unit`: unit of `t`.
    - `refine`: K >= 1 also draws the parameters fitted to the first `fit_context` steps
      (default: `context`) by K Levenberg-Marquardt steps (`refine_parameters`), as a
      constant over the steps after them.

    **Returns:** a `Figure` with one axis per scalar physical parameter (vector
    parameters give one per component), sharing the time axis.
    """
    units = parameter_units(model.decoder)  # a ValueError for a decoder without physics
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != model.data_size:
        raise ValueError(f"y must have shape (T, {model.data_size}), got {y.shape}")
    T = y.shape[0]
    if t is None:
        time_unit = None
    t = time_axis(t, T)
    values = parameter_trajectory(model, to_model_units(y, normalizer), context=context)
    components = [
        (label, label.split("[")[0], series)
        for label, series in scalar_components(values, lead=1).items()
    ]
    truth = dict(truth or {})
    refined, fit_context = _refined(model, y, normalizer, refine, fit_context or context)
    fig, axes = plt.subplots(
        len(components), 1, figsize=(8, 1.2 + 2.1 * len(components)), sharex=True, squeeze=False
    )
    # the summary in each title: the states after the context, or the second half
    late = slice(context, None) if context else slice(T // 2, None)
    where = "the free-running states" if context else "the second half"
    for ax, (label, base, series) in zip(axes[:, 0], components, strict=True):
        shade_context(ax, t, context)
        ax.plot(t, series, color="C0", lw=1.5, label=r"read from $\theta_t$")
        true = truth.get(label, truth.get(base) if label == base else None)
        summary = f"{label}: median {np.median(series[late]):.4g} over {where}"
        if true is not None:
            ax.axhline(true, color="k", lw=1.2, ls="--", label=f"true value {true:.4g}")
            error = abs(np.median(series[late]) - true) / max(abs(true), 1e-12)
            summary += f" ({100 * error:.1f}% from the truth)"
        if label in refined:
            value = float(refined[label])
            what = f"refined on the first {fit_context} steps ({refine} LM steps): {value:.4g}"
            ax.plot(t[fit_context:], np.full(T - fit_context, value), color="C1", label=what)
        ax.set_title(summary, fontsize=10)
        ax.set_ylabel(_label(label, base, units))
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel(time_label(time_unit) + r" of the state $\theta_t$")
    fig.suptitle(title or "Physical parameters read from the weight-space state")
    fig.tight_layout()
    return fig


def _refined(model, y, normalizer, refine: int, fit_context: int | None):
    """`({component: value}, fit_context)` of the parameters refined on `y[:fit_context]`
    (`{}` for `refine` 0)."""
    if not refine:
        return {}, fit_context
    if fit_context is None or not 1 < fit_context <= len(y):
        raise ValueError(f"refine needs a context of 2..{len(y)} steps, got {fit_context}")
    values = refine_parameters(model, to_model_units(y[:fit_context], normalizer), steps=refine)
    return scalar_components(values, lead=0), fit_context
