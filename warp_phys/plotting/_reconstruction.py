"""Reconstructions: ground truth, the observed context and the forecast."""

import equinox as eqx
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .._forecast import reconstruct
from ._common import channel_names as _channel_names
from ._common import check_index, time_axis, time_label, to_data_units, to_model_units

_reconstruct = eqx.filter_jit(reconstruct)


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
    label: str = "WARP forecast",
    trajectory_labels: list[str] | None = None,
    time_unit: str | None = "a.u.",
    others: dict | None = None,
) -> Figure:
    """Ground truth, observed context (shaded) and forecast for a few trajectories.

    **Arguments:**

    - `t`: times, shape `(T,)`, or `(N, T)` when each trajectory has its own.
    - `truth`: shape `(N, T, d)`; `prediction` (and `std`, `baseline`): shape
      `(N, T - context, d)`, the forecast of steps `context..T-1`, in the same units.
    - `context`: number L of observed steps (shaded).
    - `std`: predictive standard deviation, drawn as a +-2 std band.
    - `channel_names`: column titles (default `x0, x1, ...`).
    - `baseline`: a second forecast, e.g. "repeat the last value", drawn dotted.
    - `label`: legend entry of the forecast; `trajectory_labels`: row labels.
    - `time_unit`: unit of `t` for the x label.
    - `others`: more forecasts `{legend entry: (N, T - context, d)}`, drawn thin.

    **Returns:** a `Figure` with an `N x d` grid of axes.
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    n, T, d = truth.shape
    own_times = np.ndim(t) == 2
    if own_times and np.shape(t) != (n, T):
        raise ValueError(f"per-trajectory times must have shape ({n}, {T}), got {np.shape(t)}")
    times = np.asarray(t, float) if own_times else np.broadcast_to(time_axis(t, T), (n, T))
    if not 1 <= context < T or prediction.shape != (n, T - context, d):
        raise ValueError(
            f"need 1 <= context < {T} and prediction of shape {(n, T - context, d)}, "
            f"got context {context} and {prediction.shape}"
        )
    names = _channel_names(channel_names, d)
    rows = trajectory_labels or [f"trajectory {i}" for i in range(n)]
    fig, axes = plt.subplots(n, d, figsize=(4.2 * d, 2.4 * n), squeeze=False, sharex=True)
    for i in range(n):
        t, tf = times[i], times[i, context:]
        for c in range(d):
            ax = axes[i, c]
            ax.axvspan(t[0], t[context - 1], color="0.9", label="context")
            ax.plot(t, truth[i, :, c], color="k", lw=1.2, label="truth")
            ax.plot(tf, prediction[i, :, c], color="C3", lw=1.4, ls="--", label=label)
            if std is not None:
                s = np.asarray(std)[i, :, c]
                band = (prediction[i, :, c] - 2 * s, prediction[i, :, c] + 2 * s)
                ax.fill_between(tf, *band, color="C3", alpha=0.2, label="±2 std")
            for k, (name, other) in enumerate((others or {}).items()):
                ax.plot(tf, np.asarray(other)[i, :, c], color=f"C{k + 4}", lw=0.9, label=name)
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
                ax.set_xlabel(time_label(time_unit))
            if c == 0:
                ax.set_ylabel(f"{rows[i]}\nvalue (data units)")
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


def plot_forecast(
    model,
    ys,
    context: int,
    *,
    t=None,
    indices=None,
    normalizer=None,
    channel_names: list[str] | None = None,
    baseline: bool = True,
    convention: str = "clean",
    title: str | None = None,
    time_unit: str | None = "a.u.",
    refine: int = 0,
) -> Figure:
    """Forecast trajectories with `model` from their first `context` steps and plot them.

    **Arguments:**

    - `model`: a trained sequence model (WARP or a baseline).
    - `ys`: trajectories `(N, T, d)` in data units.
    - `context`: number L of observed steps; the model forecasts steps `L..T-1`.
    - `t`: times `(T,)` (default: step index), or each trajectory's own `(N, T)`; a
      time-aware model (`transition="continuous"`) forecasts at those times.
    - `indices`: which trajectories to show (default the first three).
    - `normalizer`: the model's normalisation (`apply` before, `invert` after); `None`
      when the model works on `ys` directly.
    - `baseline`: also draw "repeat the last observed value".
    - `convention`: the rollout's index convention, `"clean"` or `"reference"` (see
      `warp_phys.reconstruct`; use the one the model was trained with).
    - `refine`: K >= 1 forecasts with a physical prior refined on each context
      (`reconstruct(..., refine=K)`) and draws the read-out's own forecast beside it.

    **Returns:** a `Figure` (see `plot_reconstruction`); a probabilistic model gets its
    +-2 std band.
    """
    ys = np.asarray(ys)
    if ys.ndim != 3:
        raise ValueError(f"ys must have shape (N, T, data_size), got {ys.shape}")
    n, T, d = ys.shape
    indices = list(range(min(3, n))) if indices is None else list(indices)
    indices = [check_index(i, n) for i in indices]
    if isinstance(context, bool) or not 1 <= context < T:
        raise ValueError(f"context must be in [1, {T - 1}], got {context!r}")
    truth = ys[indices]
    context_data = to_model_units(truth[:, :context], normalizer)
    own_times = t is not None and np.ndim(t) == 2
    if own_times:
        t = np.asarray(t)[indices]
    ts = t if own_times and getattr(model, "time_aware", False) else None
    forecast = lambda k: _reconstruct(
        model, context_data, T - context, convention=convention, ts=ts, refine=k
    )
    out, others = forecast(refine), {}
    if refine:
        others["read-out alone"] = np.asarray(to_data_units(forecast(0), normalizer))
    std = None
    if isinstance(out, tuple):
        out, std = out
        std = np.asarray(to_data_units(std, normalizer, std=True))
    prediction = np.asarray(to_data_units(out, normalizer))
    repeat = np.broadcast_to(truth[:, context - 1 : context], prediction.shape)
    # float64: an untrained model's forecast can exceed float32's square range
    mse = float(np.mean((prediction.astype(np.float64) - truth[:, context:]) ** 2))
    return plot_reconstruction(
        t if t is not None else np.arange(T),
        truth,
        prediction,
        context,
        std=std,
        channel_names=channel_names,
        baseline=repeat if baseline else None,
        title=title or f"Forecast after {context} observed steps (MSE {mse:.3g}, data units)",
        trajectory_labels=[f"trajectory {i}" for i in indices],
        time_unit=time_unit if t is not None else None,
        label=f"forecast, prior refined ({refine} steps)" if refine else "WARP forecast",
        others=others,
    )
