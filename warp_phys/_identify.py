"""What a WARP model identifies along a trajectory: the weight-space states theta_t it
visits, and the named physical parameters of its prior that those states give.

`parameter_trajectory` is the one reader of a prior's physics: `plot physics`,
`warp-phys params` and the benchmarks all go through it. It reports exactly the
quantities the prior names (`decoder.parameter_names`, else the keys of
`decoder.physical_parameters`), never the weights of a network inside the prior.
"""

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

import systems

from ._rollout import rollout


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


def parameter_names(decoder) -> tuple[str, ...]:
    """The named physical outputs of a prior: `decoder.parameter_names`, or the keys of
    its `physical_parameters` (read once on zeros). `ValueError` for a decoder without
    physics (e.g. `mlp`)."""
    read = getattr(decoder, "physical_parameters", None)
    if not callable(read):
        raise ValueError(
            f"{type(decoder).__name__} has no physical parameters; a physical prior "
            "(damped_oscillator, sinusoid, sinusoid_phase, hybrid, decoder_from_function, "
            "decoder_from_sympy, or your own by import path) names them"
        )
    names = getattr(decoder, "parameter_names", None)
    if names is None:
        tau = jax.ShapeDtypeStruct((), jnp.float32)
        x_prev = jax.ShapeDtypeStruct((decoder.data_size,), jnp.float32)
        names = jax.eval_shape(read, decoder.param_shapes(), tau, x_prev).keys()
    return tuple(names)


def parameter_units(decoder) -> dict[str, str]:
    """`name -> unit` of a prior's parameters (`decoder.parameter_units`; `""` where a
    prior states none)."""
    units = dict(getattr(decoder, "parameter_units", None) or {})
    return {name: str(units.get(name, "")) for name in parameter_names(decoder)}


@eqx.filter_jit
def _read(model, thetas, inputs, names):
    decoder = model.decoder

    def one(t, theta, x):
        values = decoder.physical_parameters(decoder.unflatten(theta), model.tau(t + 1), x)
        return {name: values[name] for name in names}

    return jax.vmap(one)(jnp.arange(thetas.shape[0]), thetas, inputs)


def parameter_trajectory(
    model, xs: Float[Array, "*N T data"], *, context: int | None = None
) -> dict[str, Array]:
    """The prior's named physical parameters that theta_0..theta_{T-1} give, as used for
    prediction.

    theta_t predicts x_{t+1}, so it is read at tau_{t+1} with x_prev = u_t (the input it
    consumed last), exactly as in `model(xs)` and `reconstruct`.

    **Arguments:**

    - `model`: a `WARP` model with a physical prior (else `ValueError`).
    - `xs`: one trajectory `(T, data_size)` or a batch `(N, T, data_size)`, in the units
      the model was trained on (normalised when the run normalises).
    - `context`: `None` (every x_t observed) or L (free-running after L steps).

    **Returns:** dict `name -> (T, *shape)` (batched: `(N, T, *shape)`), in the prior's
    physical units (`parameter_units`).
    """
    names = parameter_names(model.decoder)
    xs = jnp.asarray(xs)
    if xs.ndim == 3:
        return jax.vmap(lambda x: parameter_trajectory(model, x, context=context))(xs)
    thetas, inputs = state_trajectory(model, xs, context)
    return _read(model, thetas, inputs, names)


def scalar_components(values: Mapping[str, np.ndarray], lead: int = 1) -> dict[str, np.ndarray]:
    """Every scalar component of every parameter: `name` for a scalar, `name[i]` for
    the entries of a vector (flattened); arrays keep their `lead` leading axes."""
    out = {}
    for name, series in values.items():
        series = np.asarray(series)
        flat = series.reshape(*series.shape[:lead], -1)
        for i in range(flat.shape[-1]):
            out[name if series.ndim == lead else f"{name}[{i}]"] = flat[..., i]
    return out


def parameter_summary(
    model, xs: Float[Array, "N T data"], context: int
) -> dict[str, dict[str, np.ndarray]]:
    """Per trajectory, what the model identifies from the first `context` steps.

    **Arguments:**

    - `model`: a `WARP` model with a physical prior.
    - `xs`: `(N, T, data_size)` in model units, `T > context`.
    - `context`: L, the observed steps; the model then runs free for the other T - L.

    **Returns:** `component -> {"value", "std", "range"}`, each `(N,)`: the value read
    from theta_{L-1} (the state at the end of the context, which predicts x_L) and the
    standard deviation and max - min over the states theta_{L-1}..theta_{T-2} that made
    the forecast of x_L..x_{T-1}. Components as in `scalar_components`.
    """
    T = np.shape(xs)[1]
    if not 1 <= context < T:
        raise ValueError(
            f"context {context} leaves no step to forecast: the trajectories have {T} steps"
        )
    values = parameter_trajectory(model, xs, context=context)
    summary = {}
    for name, series in scalar_components(values, lead=2).items():
        forecast = series[:, context - 1 : T - 1]
        summary[name] = {
            "value": series[:, context - 1],
            "std": forecast.std(axis=1),
            "range": forecast.max(axis=1) - forecast.min(axis=1),
        }
    return summary


def source_system(dataset) -> systems.AbstractSystem | None:
    """The registered system a `systems.Dataset` was generated from, or None (a data
    file, even one named like a system; an unregistered system)."""
    if dataset.split == "file":
        return None
    try:
        return systems.get_system(dataset.name)
    except ValueError:
        return None


def true_parameters(dataset) -> dict[str, np.ndarray]:
    """The true physical parameters of each trajectory of a `systems.Dataset`,
    `component -> (N,)`: for data generated by a registered system, its
    `physical_parameters(params)` (e.g. MSD's `omega0`, `zeta` from `m`, `k`, `c`); for
    a data file, its own `params/<name>` arrays as they are (empty when it has none)."""
    params = {k: np.asarray(v) for k, v in dataset.params.items()}
    system = source_system(dataset)
    if system is None or not params:
        return scalar_components(params, lead=1)
    rows = [
        system.physical_parameters({k: float(v[i]) for k, v in params.items()})
        for i in range(len(dataset))
    ]
    return {k: np.array([row[k] for row in rows], dtype=float) for k in rows[0]}
