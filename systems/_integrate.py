"""The compiled solve: one `jax.vmap` over trajectories of `diffrax.diffeqsolve`, cached."""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import diffrax
import jax
import jax.numpy as jnp

# Fields that only affect sampling / post-processing: changing them never recompiles the solve.
_SAMPLING_FIELDS = frozenset(
    {"name", "param_ranges", "ood_ranges", "y0_ranges", "split_sizes", "ood_mode",
     "normalise", "t_end", "n_steps", "irregular"}
)


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def dynamics_key(system: Any) -> tuple:
    """Identifies what the solve depends on: the class and every non-sampling field."""
    items = tuple(
        (f.name, _hashable(getattr(system, f.name)))
        for f in dataclasses.fields(system)
        if f.name not in _SAMPLING_FIELDS and f.name not in system.extra_sampling_fields
    )
    return (type(system), items)


_SOLVERS: dict[tuple, Callable] = {}


def compiled_solver(system: Any) -> Callable:
    """The jitted `(ts (T,), y0 (N, D), params {name: (N,)}) -> ys (N, T, D)` of `system`
    (Tsit5, PID controller, `SaveAt(ts=ts)`; failed solves give NaN), built once per
    `dynamics_key`; `jax.jit` then compiles it once per shape."""
    key = dynamics_key(system)
    if key not in _SOLVERS:
        term = diffrax.ODETerm(lambda t, y, args: system.vector_field(t, y, args))
        controller = diffrax.PIDController(rtol=system.rtol, atol=system.atol)
        max_steps = system.max_steps

        def solve_one(ts, y0, params):
            sol = diffrax.diffeqsolve(
                term, diffrax.Tsit5(), ts[0], ts[-1], None, y0, args=params,
                saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
                max_steps=max_steps, adjoint=diffrax.ForwardMode(), throw=False,
            )
            ok = sol.result == diffrax.RESULTS.successful
            return jnp.where(ok, sol.ys, jnp.nan)

        _SOLVERS[key] = jax.jit(jax.vmap(solve_one, in_axes=(None, 0, 0)))
    return _SOLVERS[key]
