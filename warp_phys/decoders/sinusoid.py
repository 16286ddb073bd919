"""The paper's SINE prior: `y = A sin(2 pi f tau + phase)` with a learned phase.

Two registered variants (WARP_SPEC section 2):

- `"sinusoid"`: the phase (and optionally the amplitude and frequency) is read from a
  small MLP of tau whose weights are theta_t (the paper uses width 48, depth 3, swish);
- `"sinusoid_phase"`: theta_t *is* the phase, one scalar per channel (D_theta =
  data_size).

In WARP the decoder is evaluated at tau_{t+1}, so a learned phase also absorbs the
constant offset `2 pi f dtau` of a one-step forecast.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import register_decoder
from ._prior import ParameterSpec, PhysicalPrior


@register_decoder("sinusoid")
class SinusoidDecoder(PhysicalPrior):
    """`y_c = A_c sin(2 pi f_c tau + phase_c)` for each channel `c`, in physical units.

    The physical parameters are `phase` (radians), and `amplitude` (physical data units)
    and `frequency` (cycles per unit tau) when they are learned; each `(data_size,)`.
    With the default `readout="weights"` they come from an MLP `[tau] (+ x_prev)` whose
    weights are theta_t (the paper: width 48, depth 3, swish); learned amplitude and
    frequency are positive, `A_c = amplitude * softplus(raw + log(e-1))` (equal to
    `amplitude` at raw 0), likewise `f_c`.

    **Arguments:**

    - `data_size`: number of channels.
    - `width`, `depth`, `activation`: the readout's MLP (`depth` hidden layers of `width`).
    - `amplitude`, `frequency`: nominal amplitude and frequency (cycles per unit tau).
    - `learn_amplitude`, `learn_frequency`: also read A and f from theta_t.
    - `input_prev`: feed `x_prev` to the MLP as well (the paper does not).
    - `readout`, `latent_size`, `scale`, `shift`, `dt`: see `PhysicalPrior`.

    **Returns** (of `__call__(params, tau, x_prev)`): the mean, shape `(data_size,)`,
    data units.
    """

    amplitude: float = eqx.field(static=True)
    frequency: float = eqx.field(static=True)

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
        readout: str = "weights",
        latent_size: int = 8,
        scale=None,
        shift=None,
        dt: float | None = None,
    ):
        if data_size < 1 or width < 1 or depth < 0:
            raise ValueError(
                f"sinusoid decoder needs data_size >= 1, width >= 1, depth >= 0; "
                f"got {data_size}, {width}, {depth}"
            )
        shape = (data_size,)
        specs = [ParameterSpec("phase", shape, unit="rad")]
        if learn_amplitude:
            specs.append(ParameterSpec("amplitude", shape, ("around", amplitude), unit="data"))
        if learn_frequency:
            specs.append(ParameterSpec("frequency", shape, ("around", frequency), unit="1/tau"))
        super().__init__(
            data_size, specs, readout=readout, width=width, depth=depth, activation=activation,
            input_prev=input_prev, latent_size=latent_size, scale=scale, shift=shift, dt=dt,
        )
        self.amplitude, self.frequency = float(amplitude), float(frequency)

    def forward(self, physical, tau: Float[Array, ""], state):
        amplitude = physical.get("amplitude", self.amplitude)
        frequency = physical.get("frequency", self.frequency)
        return amplitude * jnp.sin(2 * jnp.pi * frequency * jnp.asarray(tau) + physical["phase"])


@register_decoder("sinusoid_phase")
class SinusoidPhaseDecoder(SinusoidDecoder):
    """The minimal SINE prior: `y_c = amplitude * sin(2 pi frequency tau + phase_c)`.

    With the default `readout="direct"`, theta_t is the phase itself (`params =
    {"phase": (data_size,)}`, D_theta = data_size, initialised `0.1 * N(0, 1)`);
    amplitude and frequency are fixed options. Other arguments as `SinusoidDecoder`.

    **Returns** (of `__call__(params, tau, x_prev)`): the mean, shape `(data_size,)`.
    """

    def __init__(
        self,
        data_size: int = 1,
        amplitude: float = 1.0,
        frequency: float = 1.0,
        readout: str = "direct",
        width: int = 16,
        depth: int = 2,
        latent_size: int = 8,
        scale=None,
        shift=None,
        dt: float | None = None,
    ):
        super().__init__(
            data_size, width=width, depth=depth, amplitude=amplitude, frequency=frequency,
            readout=readout, latent_size=latent_size, scale=scale, shift=shift, dt=dt,
        )
