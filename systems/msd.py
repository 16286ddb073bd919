"""Mass-spring-damper `m x'' + c x' + k x = 0` (the paper's MSD and MSD-Zero data sets)."""

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from ._base import AbstractSystem, Range
from ._registry import register_system


class MassSpringDamper(AbstractSystem):
    """Damped linear oscillator; state `(x, v)` (position, velocity), time in `[0, 1]`.

    Parameters: mass `m`, stiffness `k`, damping `c`. Defaults are the reference's MSD
    set: `x_0 = (1, 0)`, 20480 train / 4096 test trajectories of 256 steps, raw scale.
    """

    name: str = "msd"
    state_size: ClassVar[int] = 2
    param_ranges: dict[str, Range] = eqx.field(
        default_factory=lambda: {"m": (0.02, 0.04), "k": (4.0, 16.0), "c": (0.01, 0.2)}
    )
    ood_ranges: dict[str, Range] | None = eqx.field(
        default_factory=lambda: {"m": (0.01, 0.05), "k": (2.0, 18.0), "c": (0.01, 0.3)}
    )
    y0_ranges: tuple[Range, ...] | None = ((1.0, 1.0), (0.0, 0.0))
    split_sizes: dict[str, int] = eqx.field(
        default_factory=lambda: {"train": 20480, "val": 2048, "test": 4096, "ood": 4096}
    )
    channel_names: ClassVar[tuple[str, ...]] = ("position x", "velocity v")

    def vector_field(
        self, t: Scalar, y: Float[Array, " 2"], params: dict[str, Scalar]
    ) -> Float[Array, " 2"]:
        """`(x, v) -> (v, -(c v + k x) / m)`; see `AbstractSystem.vector_field`."""
        x, v = y
        m, k, c = params["m"], params["k"], params["c"]
        return jnp.stack([v, -(c * v + k * x) / m])

    def physical_parameters(self, params: Mapping[str, Any]) -> dict[str, float]:
        """`omega0 = sqrt(k / m)` (rad per time unit) and `zeta = c / (2 sqrt(k m))`
        (damping ratio), the parameters of the `damped_oscillator` decoder; see
        `AbstractSystem.physical_parameters`."""
        p = super().physical_parameters(params)
        if not {"m", "k", "c"} <= set(p):
            return p
        m, k, c = p["m"], p["k"], p["c"]
        return {"omega0": math.sqrt(k / m), "zeta": c / (2 * math.sqrt(k * m))}


@register_system("msd")
def msd() -> MassSpringDamper:
    """The reference MSD set: fixed `x_0 = (1, 0)`."""
    return MassSpringDamper()


@register_system("msd_zero")
def msd_zero() -> MassSpringDamper:
    """The reference's second MSD set (`mass-spring-damper-2`, the paper's "MSD-Zero").

    Same ODE and ranges, random `x_0 = (1, 0) + U(-0.5, 0.5)^2` per trajectory,
    8192 train / 2048 test.
    """
    return MassSpringDamper(
        name="msd_zero",
        y0_ranges=((0.5, 1.5), (-0.5, 0.5)),
        split_sizes={"train": 8192, "val": 819, "test": 2048, "ood": 2048},
    )


@register_system("msd_irregular")
def msd_irregular() -> MassSpringDamper:
    """MSD sampled irregularly: each trajectory keeps t = 0 and 255 random later points of
    a grid 4 times finer than MSD's (`irregular=4`; times in `extras["t"]`), 1024 train
    / 256 val / 512 test / 512 OOD trajectories."""
    return MassSpringDamper(
        name="msd_irregular",
        irregular=4,
        split_sizes={"train": 1024, "val": 256, "test": 512, "ood": 512},
    )
