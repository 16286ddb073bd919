"""Lotka-Volterra predator-prey system, plain and as the paper's repeat-copy task."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray, Scalar

from ._base import AbstractSystem, Range
from ._registry import register_system

TASKS = ("trajectory", "repeat_copy")


def repeat_copy(
    y: Float[Array, "N T data"], cut: Int[Array, " N"], gap: int
) -> tuple[Float[Array, "N T data"], Float[Array, "N T data"]]:
    """The repeat-copy construction of the reference LV data set.

    **Arguments:**

    - `y`: trajectories of shape `(N, T, D)`.
    - `cut`: cut points `c`, shape `(N,)`: the "core" is the steps `0 .. c-1`.
    - `gap`: number of zero steps between copies.

    **Returns:** `(target, inputs)`, both `(N, T, D)`: the target repeats
    `core, gap zeros, core, gap zeros, ...` cut to `T` steps; the input is the core
    followed by zeros.
    """
    steps = jnp.arange(y.shape[1])
    phase = steps[None, :] % (cut[:, None] + gap)  # (N, T) position within a period
    in_core = phase < cut[:, None]
    copied = jnp.take_along_axis(y, jnp.where(in_core, phase, 0)[..., None], axis=1)
    target = jnp.where(in_core[..., None], copied, 0.0)
    inputs = jnp.where((steps[None, :] < cut[:, None])[..., None], y, 0.0)
    return target, inputs


class LotkaVolterra(AbstractSystem):
    """`dx/dt = alpha x - beta x y`, `dy/dt = delta x y - gamma y`; state `(x, y)` (prey,
    predator), time in `[0, 1]`, `y_0 = (1, 1)`, 15000 train / 3000 test trajectories.

    The reference's `a, b, c, d` are `alpha, beta, delta, gamma`. With
    `task="repeat_copy"` the data are the reference's repeat-copy sequences (see
    `repeat_copy`; cut point uniform in `cut_range`, inclusive) and `extras["inputs"]`
    holds the model input; `extras["cut"]` the cut points.
    """

    name: str = "lotka_volterra"
    state_size: ClassVar[int] = 2
    param_ranges: dict[str, Range] = eqx.field(
        default_factory=lambda: {
            "alpha": (20.0, 50.0), "beta": (80.0, 120.0),
            "delta": (80.0, 120.0), "gamma": (20.0, 50.0),
        }
    )
    ood_ranges: dict[str, Range] | None = eqx.field(
        default_factory=lambda: {
            "alpha": (10.0, 60.0), "beta": (70.0, 130.0),
            "delta": (70.0, 130.0), "gamma": (10.0, 60.0),
        }
    )
    y0_ranges: tuple[Range, ...] | None = ((1.0, 1.0), (1.0, 1.0))
    split_sizes: dict[str, int] = eqx.field(
        default_factory=lambda: {"train": 15000, "val": 1500, "test": 3000, "ood": 3000}
    )
    task: str = "trajectory"
    cut_range: tuple[int, int] = (32, 63)
    gap: int = 50
    extra_sampling_fields: ClassVar[tuple[str, ...]] = ("task", "cut_range", "gap")
    channel_names: ClassVar[tuple[str, ...]] = ("prey", "predator")

    def __check_init__(self):
        if self.task not in TASKS:
            msg = f"system {self.name!r}: task must be one of {TASKS}, got {self.task!r}"
            raise ValueError(msg)
        low, high = self.cut_range
        if not (1 <= low <= high <= self.n_steps) or self.gap < 0:
            raise ValueError(
                f"system {self.name!r}: need 1 <= cut_range[0] <= cut_range[1] <= n_steps "
                f"and gap >= 0, got cut_range={self.cut_range}, gap={self.gap}"
            )

    def vector_field(
        self, t: Scalar, y: Float[Array, " 2"], params: dict[str, Scalar]
    ) -> Float[Array, " 2"]:
        """See `AbstractSystem.vector_field`."""
        prey, pred = y
        p = params
        return jnp.stack(
            [p["alpha"] * prey - p["beta"] * prey * pred,
             p["delta"] * prey * pred - p["gamma"] * pred]
        )

    def postprocess(
        self, keys: PRNGKeyArray, t: Float[Array, " T"], y: Float[Array, "N T 2"]
    ) -> tuple[Float[Array, "N T 2"], dict[str, Array]]:
        """Plain trajectories, or the repeat-copy target with `inputs` and `cut` extras."""
        if self.task == "trajectory":
            return y, {}
        low, high = self.cut_range
        cut = jax.vmap(lambda k: jr.randint(k, (), low, high + 1))(keys)
        target, inputs = repeat_copy(y, cut, self.gap)
        return target, {"inputs": inputs, "cut": cut}


@register_system("lotka_volterra")
def lotka_volterra() -> LotkaVolterra:
    """Plain Lotka-Volterra trajectories on the raw scale."""
    return LotkaVolterra()


@register_system("lotka_volterra_repeat")
def lotka_volterra_repeat() -> LotkaVolterra:
    """The paper's LV data set: repeat-copy task, min-max normalised to `[-1, 1]` with
    the (global, all channels) min and max of the train targets."""
    return LotkaVolterra(name="lotka_volterra_repeat", task="repeat_copy", normalise=True)
