"""`from_vector_field`: a system from a plain function, in a few lines."""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from ._base import AbstractSystem
from ._ranges import Range, check_range


class FunctionSystem(AbstractSystem):
    """A system whose vector field is the user function `fn(t, y, params)`."""

    fn: Callable = eqx.field(default=None)
    name: str = "custom"
    state_size: int = 1
    param_ranges: dict[str, Range] = eqx.field(default_factory=dict)
    ood_ranges: dict[str, Range] | None = None
    y0_ranges: tuple[Range, ...] | None = None
    split_sizes: dict[str, int] = eqx.field(
        default_factory=lambda: {"train": 1024, "val": 128, "test": 256, "ood": 256}
    )

    def __check_init__(self):
        if not callable(self.fn):
            raise ValueError(f"system {self.name!r}: fn must be callable, got {self.fn!r}")
        if self.y0_ranges is None:
            raise ValueError(f"system {self.name!r}: y0 is required")

    def vector_field(
        self, t: Scalar, y: Float[Array, " data"], params: dict[str, Scalar]
    ) -> Float[Array, " data"]:
        """`fn(t, y, params)` as an array; see `AbstractSystem.vector_field`."""
        return jnp.asarray(self.fn(t, y, params))


def from_vector_field(
    fn: Callable,
    state_size: int,
    param_ranges: Mapping[str, Any],
    *,
    y0: Any,
    name: str = "custom",
    ood_ranges: Mapping[str, Any] | None = None,
    **options: Any,
) -> FunctionSystem:
    """A system from a vector field function.

    **Arguments:**

    - `fn`: `fn(t, y, params) -> dy/dt` with `y` of shape `(state_size,)` and `params` a
      dict of scalars; must be JAX-traceable and return shape `(state_size,)`.
    - `state_size`: dimension of the state.
    - `param_ranges`: `{name: (low, high)}` training ranges (a number fixes the parameter).
    - `y0`: initial condition: a sequence of `state_size` numbers (fixed) or of
      `(low, high)` pairs (uniform per trajectory).
    - `name`: name stored in the data sets (register it with `register_system` to
      generate it by name).
    - `ood_ranges`: wider ranges for the `ood` split (default: none).
    - `options`: other `AbstractSystem` fields, e.g. `t_end`, `n_steps`, `split_sizes`.

    **Returns:** a `FunctionSystem`.
    """
    reserved = {f.name for f in dataclasses.fields(FunctionSystem)}
    clash = sorted(set(param_ranges) & reserved)
    if clash:
        raise ValueError(f"parameter names {clash} clash with system options; rename them")
    ranges = {p: check_range(f"parameter {p!r}", r) for p, r in param_ranges.items()}
    ood = None
    if ood_ranges is not None:
        ood = {p: check_range(f"OOD parameter {p!r}", r) for p, r in ood_ranges.items()}
    if isinstance(y0, int | float) or len(y0) != state_size:
        raise ValueError(f"y0 must have state_size={state_size} entries, got {y0!r}")
    y0_ranges = tuple(check_range(f"y0[{i}]", r) for i, r in enumerate(y0))
    return FunctionSystem(
        fn=fn, name=name, state_size=state_size, param_ranges=ranges, ood_ranges=ood,
        y0_ranges=y0_ranges, **options,
    )
