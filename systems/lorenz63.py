"""Lorenz-63: the chaotic convection model, beyond the paper's systems."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from ._base import AbstractSystem, Range
from ._registry import register_system


class Lorenz63(AbstractSystem):
    """`x' = sigma (y - x)`, `y' = x (rho - z) - y`, `z' = x y - beta z`; state `(x, y, z)`.

    Parameters around the classic `(10, 28, 8/3)`. A short window `t in [0, 2]` (about two
    Lyapunov times) on 256 steps, `y_0` uniform in a box around the attractor. Raw scale
    (`|x|, |y| < ~30`, `0 < z < ~55`).
    """

    name: str = "lorenz63"
    state_size: ClassVar[int] = 3
    param_ranges: dict[str, Range] = eqx.field(
        default_factory=lambda: {"sigma": (9.0, 11.0), "rho": (26.0, 30.0), "beta": (2.4, 3.0)}
    )
    ood_ranges: dict[str, Range] | None = eqx.field(
        default_factory=lambda: {"sigma": (8.0, 12.0), "rho": (24.0, 32.0), "beta": (2.2, 3.2)}
    )
    y0_ranges: tuple[Range, ...] | None = ((-10.0, 10.0), (-10.0, 10.0), (15.0, 35.0))
    split_sizes: dict[str, int] = eqx.field(
        default_factory=lambda: {"train": 8192, "val": 1024, "test": 2048, "ood": 2048}
    )
    t_end: float = 2.0
    channel_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")

    def vector_field(
        self, t: Scalar, y: Float[Array, " 3"], params: dict[str, Scalar]
    ) -> Float[Array, " 3"]:
        """See `AbstractSystem.vector_field`."""
        x, yy, z = y
        p = params
        return jnp.stack(
            [p["sigma"] * (yy - x), x * (p["rho"] - z) - yy, x * yy - p["beta"] * z]
        )


register_system("lorenz63", Lorenz63)
