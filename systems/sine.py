"""SINE: `y(t) = sin(2 pi t + phi)` with a random phase, solved in closed form."""

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from ._base import AbstractSystem, Params, Range
from ._registry import register_system


class Sine(AbstractSystem):
    """`dy/dt = 2 pi cos(2 pi t + phi)`, `y_0 = sin(phi)`; one state, 16 steps on `[0, 1]`.

    Parameter: phase `phi` (radians), uniform in `(-pi/6, pi/6)` for every split, so there
    is no OOD split. 10000 train / 1000 val / 1000 test (the reference's subsets
    tiny..huge are the first 1 / 10 / 100 / 1000 / 10000 train trajectories, which
    `generate(..., n)` reproduces since data sets are prefix-consistent in `n`).
    """

    name: str = "sine"
    state_size: ClassVar[int] = 1
    param_ranges: dict[str, Range] = eqx.field(
        default_factory=lambda: {"phi": (-math.pi / 6, math.pi / 6)}
    )
    ood_ranges: dict[str, Range] | None = None
    y0_ranges: tuple[Range, ...] | None = None
    split_sizes: dict[str, int] = eqx.field(
        default_factory=lambda: {"train": 10000, "val": 1000, "test": 1000}
    )
    n_steps: int = 16
    channel_names: ClassVar[tuple[str, ...]] = ("y",)
    frequency: float = 1.0

    def vector_field(
        self, t: Scalar, y: Float[Array, " 1"], params: dict[str, Scalar]
    ) -> Float[Array, " 1"]:
        """See `AbstractSystem.vector_field`."""
        w = 2 * math.pi * self.frequency
        return w * jnp.cos(w * t + params["phi"])[None]

    def physical_parameters(self, params: Mapping[str, Any]) -> dict[str, float]:
        """`{"phase": phi}` (radians), the parameter of the `sinusoid` decoders; see
        `AbstractSystem.physical_parameters`."""
        p = super().physical_parameters(params)
        return {"phase": p["phi"]} if "phi" in p else p

    def sample_y0(self, key: PRNGKeyArray, params: dict[str, Scalar]) -> Float[Array, " 1"]:
        """`y_0 = sin(phi)`, shape `(1,)` (deterministic given the phase)."""
        del key
        return jnp.sin(params["phi"])[None]

    def integrate(
        self, ts: Float[Array, " T"], y0: Float[Array, "N 1"], params: Params
    ) -> Float[Array, "N T 1"]:
        """Closed form `sin(2 pi f t + phi)`, shape `(N, T, 1)` (`y0` is implied by `phi`)."""
        del y0
        w = 2 * math.pi * self.frequency
        return jnp.sin(w * ts[None, :] + params["phi"][:, None])[..., None]


register_system("sine", Sine)
