"""Physical parameters read from theta_t over time, next to the true ones: what a
WARP-Phys model believes the system is at each moment."""

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure

from ._common import shade_context, state_trajectory, time_axis, time_label, to_model_units

# axis labels with units of the parameters the built-in decoders expose
_LABELS = {
    "omega0": r"$\omega_0$ (rad per time unit)",
    "zeta": r"$\zeta$ (damping ratio, 1)",
    "phase": "phase (rad)",
    "amplitude": "amplitude (data units)",
    "frequency": "frequency (cycles per unit tau)",
    "position0": "initial position (data units)",
    "velocity0": "initial velocity (data units)",
}


def _reader(decoder):
    read = getattr(decoder, "physical_parameters", None)
    if not callable(read):
        raise ValueError(
            f"{type(decoder).__name__} has no physical parameters to plot; the 'physics' "
            "plot needs a physical decoder (damped_oscillator, sinusoid, sinusoid_phase, "
            "hybrid, or a prior from decoder_from_function / decoder_from_sympy)"
        )
    return read


@eqx.filter_jit
def _read(model, thetas, inputs):
    read = model.decoder.physical_parameters

    def one(t, theta, x):
        return read(model.decoder.unflatten(theta), model.tau(t + 1), x)

    return jax.vmap(one)(jnp.arange(thetas.shape[0]), thetas, inputs)


def physical_parameter_trajectory(
    model, xs: Float[Array, "T data"], *, context: int | None = None
) -> dict[str, Array]:
    """The physical parameters that theta_0..theta_{T-1} give, as used for prediction.

    theta_t predicts x_{t+1}, so it is read at tau_{t+1} with x_prev = u_t (the input it
    consumed last), exactly as in `model(xs)` and `reconstruct`.

    **Arguments:**

    - `model`: a `WARP` model whose decoder has `physical_parameters` (else `ValueError`).
    - `xs`: one trajectory `(T, data_size)`, model units.
    - `context`: `None` (every x_t observed) or L (free-running after L steps).

    **Returns:** dict `name -> (T, *shape)`, in the decoder's physical units.
    """
    _reader(model.decoder)
    thetas, inputs = state_trajectory(model, jnp.asarray(xs), context)
    return _read(model, thetas, inputs)


def _components(values: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    """`(name, base name, (T,) series)` for every scalar component of every parameter."""
    out = []
    for name, series in values.items():
        series = np.asarray(series).reshape(series.shape[0], -1)
        for i in range(series.shape[1]):
            label = name if series.shape[1] == 1 else f"{name}[{i}]"
            out.append((label, name, series[:, i]))
    return out


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

    **Returns:** a `Figure` with one axis per scalar physical parameter (vector
    parameters give one per component), sharing the time axis.
    """
    _reader(model.decoder)
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != model.data_size:
        raise ValueError(f"y must have shape (T, {model.data_size}), got {y.shape}")
    T = y.shape[0]
    if t is None:
        time_unit = None
    t = time_axis(t, T)
    values = physical_parameter_trajectory(model, to_model_units(y, normalizer), context=context)
    components = _components({k: np.asarray(v) for k, v in values.items()})
    truth = dict(truth or {})
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
        ax.set_title(summary, fontsize=10)
        ax.set_ylabel(_LABELS.get(base, f"{label} (prior's units)"))
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel(time_label(time_unit) + r" of the state $\theta_t$")
    fig.suptitle(title or "Physical parameters read from the weight-space state")
    fig.tight_layout()
    return fig
