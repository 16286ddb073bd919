"""The paper's SINE prior: `y = A sin(2 pi f tau + phase)` with a learned phase.

Two registered variants (WARP_SPEC section 2):

- `"sinusoid"`: the phase (and optionally the amplitude and frequency) is read from a
  small MLP of tau whose weights are theta_t (the paper uses width 48, depth 3, swish);
- `"sinusoid_phase"`: theta_t *is* the phase, one scalar per channel (D_theta =
  data_size).

In WARP the decoder is evaluated at tau_{t+1}, so a learned phase also absorbs the
constant offset `2 pi f dtau` of a one-step forecast.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import get_activation
from ._base import AbstractDecoder, register_decoder
from ._transforms import positive_around
from .mlp import mlp_apply, mlp_init


@register_decoder("sinusoid")
class SinusoidDecoder(AbstractDecoder):
    """`y_c = A_c sin(2 pi f_c tau + phase_c(tau))` for each channel `c`.

    `phase(tau)` is an MLP `[tau] (+ x_prev) -> data_size` (or `3 * data_size` outputs
    when the amplitude and frequency are learned too) whose weights are theta_t.
    Learned amplitude and frequency are positive: `A_c = amplitude * softplus(raw + log(e-1))`
    (equal to `amplitude` when the raw output is 0), likewise for `f_c`.

    **Arguments:**

    - `data_size`: number of channels.
    - `width`, `depth`, `activation`: the phase MLP (`depth` hidden layers of `width`).
    - `amplitude`, `frequency`: nominal amplitude and frequency (cycles per unit tau).
    - `learn_amplitude`, `learn_frequency`: also read A and f from the MLP.
    - `input_prev`: feed `x_prev` to the MLP as well (the paper does not).

    **Returns** (of `__call__(params, tau, x_prev)`): the mean, shape `(data_size,)`.
    """

    takes_size: ClassVar[bool] = True
    data_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    amplitude: float = eqx.field(static=True)
    frequency: float = eqx.field(static=True)
    learn_amplitude: bool = eqx.field(static=True)
    learn_frequency: bool = eqx.field(static=True)
    input_prev: bool = eqx.field(static=True)

    def __init__(
        self,
        data_size: int = 1,
        width: int = 16,
        depth: int = 2,
        activation: str = "swish",
        amplitude: float = 1.0,
        frequency: float = 1.0,
        learn_amplitude: bool = False,
        learn_frequency: bool = False,
        input_prev: bool = False,
    ):
        if data_size < 1 or width < 1 or depth < 0:
            raise ValueError(
                f"sinusoid decoder needs data_size >= 1, width >= 1, depth >= 0; "
                f"got {data_size}, {width}, {depth}"
            )
        get_activation(activation)
        self.data_size = int(data_size)
        self.width = int(width)
        self.depth = int(depth)
        self.activation = activation
        self.amplitude = float(amplitude)
        self.frequency = float(frequency)
        self.learn_amplitude = bool(learn_amplitude)
        self.learn_frequency = bool(learn_frequency)
        self.input_prev = bool(input_prev)

    @property
    def layer_sizes(self) -> list[int]:
        in_size = 1 + (self.data_size if self.input_prev else 0)
        heads = 1 + self.learn_amplitude + self.learn_frequency
        return [in_size] + [self.width] * self.depth + [heads * self.data_size]

    def init_params(self, key: PRNGKeyArray):
        return mlp_init(key, self.layer_sizes)

    def physical_parameters(
        self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Float[Array, " data"]]:
        """The sinusoid's parameters that `params` (one theta_t, unflattened) give at `tau`.

        **Arguments:**

        - `params`: the root parameters (`unflatten(theta_t)`).
        - `tau`: normalised time, a scalar.
        - `x_prev`: previous observation `(data_size,)` (read when `input_prev`).

        **Returns:** `{"phase": (data_size,)}` in radians, plus `"amplitude"` (data
        units) and `"frequency"` (cycles per unit tau) when they are learned; exactly
        the values `__call__` uses.
        """
        inputs = jnp.reshape(jnp.asarray(tau), (1,))
        if self.input_prev:
            inputs = jnp.concatenate([inputs, x_prev])
        out = mlp_apply(params, inputs, get_activation(self.activation))
        heads = jnp.reshape(out, (-1, self.data_size))
        physical, k = {"phase": heads[0]}, 1
        if self.learn_amplitude:
            physical["amplitude"], k = positive_around(self.amplitude, heads[k]), k + 1
        if self.learn_frequency:
            physical["frequency"] = positive_around(self.frequency, heads[k])
        return physical

    def __call__(self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]):
        tau = jnp.asarray(tau)
        physical = self.physical_parameters(params, tau, x_prev)
        amplitude = physical.get("amplitude", self.amplitude)
        frequency = physical.get("frequency", self.frequency)
        return amplitude * jnp.sin(2 * jnp.pi * frequency * tau + physical["phase"])


@register_decoder("sinusoid_phase")
class SinusoidPhaseDecoder(AbstractDecoder):
    """The minimal SINE prior: `y_c = amplitude * sin(2 pi frequency tau + theta_c)`.

    theta_t is the phase itself (`params = {"phase": (data_size,)}`, D_theta =
    data_size); amplitude and frequency are fixed options.

    **Returns** (of `__call__(params, tau, x_prev)`): the mean, shape `(data_size,)`.
    """

    data_size: int = eqx.field(static=True)
    amplitude: float = eqx.field(static=True)
    frequency: float = eqx.field(static=True)

    def __init__(self, data_size: int = 1, amplitude: float = 1.0, frequency: float = 1.0):
        if data_size < 1:
            raise ValueError(f"sinusoid_phase decoder needs data_size >= 1, got {data_size}")
        self.data_size = int(data_size)
        self.amplitude = float(amplitude)
        self.frequency = float(frequency)

    def init_params(self, key: PRNGKeyArray):
        return {"phase": 0.1 * jax.random.normal(key, (self.data_size,))}

    def physical_parameters(
        self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Float[Array, " data"]]:
        """`{"phase": (data_size,)}` in radians: theta_t itself (`tau`, `x_prev` unused)."""
        return {"phase": params["phase"]}

    def __call__(self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]):
        return self.amplitude * jnp.sin(2 * jnp.pi * self.frequency * tau + params["phase"])
