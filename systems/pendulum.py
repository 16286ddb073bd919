"""Nonlinear damped pendulum, beyond the paper's systems."""

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from ._base import AbstractSystem, Range
from ._registry import register_system


class Pendulum(AbstractSystem):
    """`theta'' = -(g / L) sin(theta) - damping theta'`; state `(theta, omega)` in rad, rad/s.

    Parameters: gravity `g` (m/s^2), length `L` (m), `damping` (1/s). Time in seconds on
    `[0, 4]` (one to three periods), 256 steps; `theta_0` up to 90 degrees, so the
    nonlinearity matters.
    """

    name: str = "pendulum"
    state_size: ClassVar[int] = 2
    param_ranges: dict[str, Range] = eqx.field(
        default_factory=lambda: {"g": (8.0, 12.0), "L": (0.5, 2.0), "damping": (0.0, 0.5)}
    )
    ood_ranges: dict[str, Range] | None = eqx.field(
        default_factory=lambda: {"g": (6.0, 14.0), "L": (0.25, 3.0), "damping": (0.0, 1.0)}
    )
    y0_ranges: tuple[Range, ...] | None = ((-math.pi / 2, math.pi / 2), (-1.0, 1.0))
    split_sizes: dict[str, int] = eqx.field(
        default_factory=lambda: {"train": 8192, "val": 1024, "test": 2048, "ood": 2048}
    )
    t_end: float = 4.0
    channel_names: ClassVar[tuple[str, ...]] = ("angle", "angular velocity")
    channel_units: ClassVar[tuple[str, ...]] = ("rad", "rad/s")
    time_unit: ClassVar[str] = "s"

    def vector_field(
        self, t: Scalar, y: Float[Array, " 2"], params: dict[str, Scalar]
    ) -> Float[Array, " 2"]:
        """See `AbstractSystem.vector_field`."""
        theta, omega = y
        p = params
        return jnp.stack([omega, -(p["g"] / p["L"]) * jnp.sin(theta) - p["damping"] * omega])


register_system("pendulum", Pendulum)
