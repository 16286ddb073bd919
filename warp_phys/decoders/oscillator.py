"""The damped harmonic oscillator (mass-spring-damper) prior, advanced exactly.

The state `x = (position, velocity)` obeys `x' = E x` with

    E = [[0, 1], [-omega0^2, -2 zeta omega0]],

so one step of length `dt` is exactly `x(t + dt) = exp(dt E) x(t)`. `damped_transition`
evaluates that 2x2 matrix exponential in closed form: with `a = zeta omega0 dt`,
`q = (omega0 dt)^2 (zeta^2 - 1)` (the discriminant times dt^2),

    exp(dt E) = [[C + a S, dt S], [-omega0^2 dt S, C - a S]],
    C = e^{-a} cosh(sqrt q),   S = e^{-a} sinh(sqrt q) / sqrt q,

where for `q < 0` (under-damped) `cosh(sqrt q) = cos(sqrt(-q))` and `sinh(sqrt q)/sqrt q =
sin(sqrt(-q))/sqrt(-q)`. Both are entire functions of `q`; near `q = 0` (critical damping)
they are evaluated by their Taylor series, and the branches use the double-`where` trick,
so values and gradients are finite and smooth through `zeta = 1`. The over-damped branch
is written as `e^{sqrt q - a} (1 + e^{-2 sqrt q}) / 2` (and `expm1` for S), which never
overflows since `sqrt q < a`.

This replaces the reference code's explicit Euler step (WARP_SPEC section 2).
"""

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import get_activation
from ._base import AbstractDecoder, register_decoder
from ._transforms import positive_around
from .mlp import mlp_apply, mlp_init

# |q| below this uses the Taylor series (truncation error < |q|^5 / 10! < 3e-17).
_SERIES_EPS = 1e-2


def damped_transition(
    omega0: Float[Array, ""], zeta: Float[Array, ""], dt: Float[Array, ""]
) -> Float[Array, "2 2"]:
    """The exact transition matrix `exp(dt E)` of the damped oscillator.

    **Arguments:**

    - `omega0`: natural angular frequency, > 0 (radians per unit time).
    - `zeta`: damping ratio, >= 0 (1 is critical damping).
    - `dt`: time step, >= 0 (same time unit as `1 / omega0`).

    **Returns:** the `(2, 2)` matrix mapping `(position, velocity)` at time t to time
    t + dt. Differentiable in all three arguments, including at `zeta = 1`.
    """
    omega0, zeta, dt = jnp.asarray(omega0), jnp.asarray(zeta), jnp.asarray(dt)
    w = omega0 * dt
    a = zeta * w
    q = w**2 * (zeta - 1.0) * (zeta + 1.0)
    small = jnp.abs(q) < _SERIES_EPS
    over = q >= _SERIES_EPS
    decay = jnp.exp(-a)

    # over-damped: x = sqrt(q) > 0
    x = jnp.sqrt(jnp.where(over, q, 1.0))
    grow = jnp.exp(x - a)
    c_over = 0.5 * grow * (1.0 + jnp.exp(-2.0 * x))
    s_over = grow * (-jnp.expm1(-2.0 * x)) / (2.0 * x)
    # under-damped: y = sqrt(-q) > 0
    y = jnp.sqrt(jnp.where(q <= -_SERIES_EPS, -q, 1.0))
    c_under = decay * jnp.cos(y)
    s_under = decay * jnp.sin(y) / y
    # near-critical: Taylor series of cosh(sqrt q) and sinh(sqrt q) / sqrt q in q
    c_series = decay * (1 + q * (1 / 2 + q * (1 / 24 + q * (1 / 720 + q / 40320))))
    s_series = decay * (1 + q * (1 / 6 + q * (1 / 120 + q * (1 / 5040 + q / 362880))))

    c = jnp.where(small, c_series, jnp.where(over, c_over, c_under))
    s = jnp.where(small, s_series, jnp.where(over, s_over, s_under))
    return jnp.stack(
        [jnp.stack([c + a * s, dt * s]), jnp.stack([-omega0 * w * s, c - a * s])]
    )


@register_decoder("damped_oscillator")
class DampedOscillatorDecoder(AbstractDecoder):
    """Mass-spring-damper prior: theta_t gives `(omega0, zeta)`, the state moves exactly.

    `mode="step"` (default): `y = exp(dt E) x_prev`, a one-step forecast of the
    previous state `x_prev = (position, velocity)`. `mode="analytic"`: `y = exp(t E) x0`
    with `t = time_scale * tau`, the closed-form solution from an initial state `x0`
    that is itself part of theta.

    `parametrization="mlp"`: `(omega0, zeta)` come from an MLP `[tau] (+ x_prev) -> 2`
    whose weights are theta_t; `"direct"`: they are two entries of theta_t. Either way
    they are positive: `omega0 = omega0_init * softplus(raw + log(e - 1))` (equal to
    `omega0_init` at `raw = 0`), likewise `zeta`.

    Units: the decoder computes in physical units (`units = "physical"`). If the data
    are normalised as `data = (physical - shift) / scale` per channel (e.g.
    `shift = normalizer.mean`, `scale = normalizer.std`), pass `scale` and `shift` and
    the transition stays exact; `WARP(data_scale=..., data_shift=...)` does so. For the
    paper's data, physical time equals tau, so `dt = 1 / (seq_len - 1)`, which WARP
    passes (`needs_dt`).

    **Arguments:**

    - `data_size`: must be 2 (position, velocity).
    - `width`, `depth`, `activation`: the parameter MLP (ignored for `"direct"`).
    - `input_prev`: feed `x_prev` (data units) to the MLP next to tau.
    - `parametrization`: `"mlp"` or `"direct"`.
    - `mode`: `"step"` or `"analytic"`.
    - `dt`: physical time of one step (default 1/255: 256 points on [0, 1]).
    - `time_scale`: physical time per unit tau (analytic mode).
    - `omega0_init`, `zeta_init`: values at raw output 0 (radians per unit time; ratio).
    - `scale`, `shift`: per-channel normalisation of the data, length-2 sequences.

    **Returns** (of `__call__(params, tau, x_prev)`): the predicted state, shape `(2,)`,
    in data units.
    """

    takes_size: ClassVar[bool] = True
    needs_dt: ClassVar[bool] = True
    units: ClassVar[str] = "physical"
    data_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    input_prev: bool = eqx.field(static=True)
    parametrization: str = eqx.field(static=True)
    mode: str = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)
    omega0_init: float = eqx.field(static=True)
    zeta_init: float = eqx.field(static=True)
    scale: tuple[float, float] = eqx.field(static=True)
    shift: tuple[float, float] = eqx.field(static=True)

    def __init__(
        self,
        data_size: int = 2,
        width: int = 16,
        depth: int = 2,
        activation: str = "swish",
        input_prev: bool = True,
        parametrization: Literal["mlp", "direct"] = "mlp",
        mode: Literal["step", "analytic"] = "step",
        dt: float = 1.0 / 255.0,
        time_scale: float = 1.0,
        omega0_init: float = 10.0,
        zeta_init: float = 0.1,
        scale=(1.0, 1.0),
        shift=(0.0, 0.0),
    ):
        if data_size != 2:
            raise ValueError(
                f"damped_oscillator predicts (position, velocity): data_size must be 2, "
                f"got {data_size}"
            )
        if parametrization not in ("mlp", "direct"):
            raise ValueError(f"parametrization must be 'mlp' or 'direct', got {parametrization!r}")
        if mode not in ("step", "analytic"):
            raise ValueError(f"mode must be 'step' or 'analytic', got {mode!r}")
        if width < 1 or depth < 0:
            raise ValueError(f"need width >= 1 and depth >= 0, got {width}, {depth}")
        if not (dt > 0 and time_scale > 0 and omega0_init > 0 and zeta_init > 0):
            raise ValueError(
                "dt, time_scale, omega0_init and zeta_init must be > 0, got "
                f"{dt}, {time_scale}, {omega0_init}, {zeta_init}"
            )
        scale, shift = tuple(float(s) for s in scale), tuple(float(s) for s in shift)
        if len(scale) != 2 or len(shift) != 2 or 0.0 in scale:
            raise ValueError(f"scale and shift need 2 entries, scale nonzero; got {scale}, {shift}")
        get_activation(activation)
        self.data_size = 2
        self.width, self.depth, self.activation = int(width), int(depth), activation
        self.input_prev = bool(input_prev)
        self.parametrization, self.mode = parametrization, mode
        self.dt, self.time_scale = float(dt), float(time_scale)
        self.omega0_init, self.zeta_init = float(omega0_init), float(zeta_init)
        self.scale, self.shift = scale, shift

    def init_params(self, key: PRNGKeyArray):
        if self.parametrization == "mlp":
            in_size = 1 + (2 if self.input_prev else 0)
            params = {"mlp": mlp_init(key, [in_size] + [self.width] * self.depth + [2])}
        else:
            params = {"omega0": jnp.zeros(()), "zeta": jnp.zeros(())}
        if self.mode == "analytic":
            params["x0"] = jnp.zeros((2,))
        return params

    def physical_parameters(
        self, params, tau: Float[Array, ""], x_prev: Float[Array, " 2"]
    ) -> dict[str, Float[Array, ""]]:
        """The physical parameters that `params` (one theta_t, unflattened) give at `tau`.

        **Arguments:**

        - `params`: the root parameters (`unflatten(theta_t)`).
        - `tau`: normalised time, a scalar (WARP evaluates theta_t at tau_{t+1}).
        - `x_prev`: previous observation `(2,)`, data units (read by the MLP when
          `input_prev`).

        **Returns:** `{"omega0": ..., "zeta": ...}`, scalars: the natural angular
        frequency (radians per unit of physical time) and the damping ratio
        (dimensionless), exactly the values `__call__` uses. In `"analytic"` mode also
        `"position0"`, `"velocity0"`: the initial state, in physical units.
        """
        if self.parametrization == "mlp":
            inputs = jnp.reshape(jnp.asarray(tau), (1,))
            if self.input_prev:
                inputs = jnp.concatenate([inputs, x_prev])
            raw_omega, raw_zeta = mlp_apply(params["mlp"], inputs, get_activation(self.activation))
        else:
            raw_omega, raw_zeta = params["omega0"], params["zeta"]
        physical = {
            "omega0": positive_around(self.omega0_init, raw_omega),
            "zeta": positive_around(self.zeta_init, raw_zeta),
        }
        if self.mode == "analytic":
            x0 = params["x0"] * jnp.asarray(self.scale) + jnp.asarray(self.shift)
            physical["position0"], physical["velocity0"] = x0[0], x0[1]
        return physical

    def __call__(self, params, tau: Float[Array, ""], x_prev: Float[Array, " 2"]):
        scale, shift = jnp.asarray(self.scale), jnp.asarray(self.shift)
        physical = self.physical_parameters(params, tau, x_prev)
        omega0, zeta = physical["omega0"], physical["zeta"]
        if self.mode == "step":
            state, elapsed = x_prev, self.dt
        else:
            state, elapsed = params["x0"], self.time_scale * jnp.asarray(tau)
        physical = damped_transition(omega0, zeta, elapsed) @ (state * scale + shift)
        return (physical - shift) / scale
