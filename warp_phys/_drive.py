r"""WARP's feature drive: the state accumulates learned statistics of consecutive steps.

The default drive of WARP is the input difference, theta_t = A theta_{t-1} +
B (x_t - x_{t-1}). With A = I (its initialisation) it telescopes,
theta_t = theta_0 + B (x_t - x_0): the state knows x_0 and x_t only, nothing of the
path between them. For a linear system observed as s_t the least-squares transition
from a context, M = (sum s_t s_{t-1}^T)(sum s_{t-1} s_{t-1}^T)^{-1}, is made of sums of
products of consecutive steps, and the physics (omega_0, zeta of an oscillator) is a
function of M. The feature drive

    theta_t = A theta_{t-1} + B e(x_{t-1}, x_t) / (T - 1),

with e a small MLP `(2 data,) -> (features,)` and T the training length, makes the
state (with A = I) the running mean of learned features of step pairs, so it can hold
such sums; a non-linear read-out of theta can then turn them into parameters (measured
on MSD, `benchmarks/readouts.py`: the `weights` readout gains, `latent` does not). Once
the context is over, the fed-back inputs follow the identified system, so the running
statistics stay consistent.

Scale-free drive (`scale_free=True`, `WARP(drive_scale_free=True)`): e reads the pair
divided by its norm about the physical origin, (x_{t-1}, x_t) / |(x_{t-1}, x_t)|. For a
linear system the direction of a step pair depends on the dynamics and the phase but
not on the amplitude, so the running statistics, and the parameters read from them, are
the same for every initial amplitude; the drive is also bounded whatever the inputs.
Off by default: it reads the physics worse (README, "Which readout"), since how fast the
amplitude decays over the context is the damping.

The parallel and structured recurrences take the drive as differences of
pseudo-inputs u_t = sum_{k=1..t} e(x_{k-1}, x_k) / (T - 1), u_0 = 0
(`FeatureDrive.pseudo_inputs`): u_t - u_{t-1} is step t's drive, and every mode of
`warp_phys._recurrence` applies unchanged with B of shape `(D_theta, features)`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

DRIVE_WIDTH = 32  # hidden units of e
_TINY = 1e-12  # keeps the scale-free norm finite for a pair at the origin


class FeatureDrive(eqx.Module):
    """e(x_{t-1}, x_t) / (T - 1): one hidden layer of `DRIVE_WIDTH` (GELU) over the
    concatenated pair, `features` outputs, scaled by `scale` = 1 / (T - 1).

    **Arguments:**

    - `data_size`: channels d of one observation.
    - `features`: the drive's size F (the number of columns of B).
    - `seq_len`: the training length T that sets the scale.
    - `origin`: None, or scale-free: the physical zero in data units `(data,)`, about
      which the pair is divided by its norm before e reads it.
    - `key`: a JAX PRNG key.
    """

    mlp: eqx.nn.MLP
    scale: float = eqx.field(static=True)
    origin: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self, data_size: int, features: int, seq_len: int, *, origin=None, key: PRNGKeyArray
    ):
        self.mlp = eqx.nn.MLP(
            2 * data_size, features, DRIVE_WIDTH, 1, activation=jax.nn.gelu, key=key
        )
        self.scale = 1.0 / (int(seq_len) - 1)
        self.origin = None if origin is None else tuple(float(o) for o in origin)

    @property
    def size(self) -> int:
        """F, the drive's size."""
        return self.mlp.out_size

    def __call__(
        self, u: Float[Array, " data"], u_prev: Float[Array, " data"]
    ) -> Float[Array, " features"]:
        """The drive of the step that consumes `u` after `u_prev`, shape `(features,)`."""
        pair = jnp.concatenate([u_prev, u])
        if self.origin is not None:
            pair = pair - jnp.tile(jnp.asarray(self.origin, pair.dtype), 2)  # both halves
            pair = pair * jax.lax.rsqrt(jnp.sum(pair**2) + _TINY)
        return self.mlp(pair) * self.scale

    def pseudo_inputs(self, xs: Float[Array, "T data"]) -> Float[Array, "T features"]:
        """u_0 = 0, u_t = sum_{k=1..t} drive(x_k, x_{k-1}), shape `(T, features)`: inputs
        whose differences are the drives, for the recurrences of `warp_phys._recurrence`."""
        drives = jax.vmap(self)(xs[1:], xs[:-1])
        return jnp.concatenate([jnp.zeros_like(drives[:1]), jnp.cumsum(drives, axis=0)])


def make_drive(
    drive_features: int,
    data_size: int,
    seq_len: int,
    transition: str,
    *,
    scale_free: bool = False,
    data_scale=None,
    data_shift=None,
    key: PRNGKeyArray,
) -> FeatureDrive | None:
    """The `FeatureDrive` of `drive_features` outputs (`scale_free`: about the physical
    zero of data normalised as `(raw - data_shift) / data_scale`), or None for 0 (the
    difference drive); a one-line `ValueError` for a negative or non-int size, a
    scale-free difference drive, or a time-aware transition (whose exact step solution
    assumes inputs that move linearly)."""
    if isinstance(drive_features, bool) or not isinstance(drive_features, int):
        raise ValueError(f"drive_features must be an int >= 0, got {drive_features!r}")
    if drive_features < 0:
        raise ValueError(f"drive_features must be >= 0 (0: difference drive), got {drive_features}")
    if drive_features == 0:
        if scale_free:
            raise ValueError("drive_scale_free needs the feature drive (drive_features > 0)")
        return None
    if transition == "continuous":
        raise ValueError(
            "drive_features applies to regular grids only, not transition='continuous' "
            "(its step solution assumes inputs that move linearly between samples)"
        )
    origin = None
    if scale_free:
        scale, shift = data_scale or [1.0] * data_size, data_shift or [0.0] * data_size
        origin = [-m / s for m, s in zip(shift, scale, strict=True)]  # where raw = 0
    return FeatureDrive(data_size, drive_features, seq_len, origin=origin, key=key)
