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

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import register_decoder
from ._prior import ParameterSpec, PhysicalPrior

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
class DampedOscillatorDecoder(PhysicalPrior):
    """Mass-spring-damper prior: theta_t gives `(omega0, zeta)`, the state moves exactly.

    `mode="step"` (default): `y = exp(dt E) x_prev`, a one-step forecast of the
    previous state `x_prev = (position, velocity)`. `mode="analytic"`: `y = exp(t E) x0`
    with `t = time_scale * tau`, the closed-form solution from an initial state `x0 =
    (position0, velocity0)`, two further parameters (stored in data units).

    The readout (`readout=`, see `PhysicalPrior`) reads `(omega0, zeta)` from theta_t:
    `"weights"` (default): an MLP `[tau] -> raw` (`[tau, x_prev]` with `input_prev=True`)
    whose weights are theta_t;
    `"direct"`: they are entries of theta_t; `"latent"`: a trained MLP of a latent code.
    The old `parametrization="mlp" | "direct"` is an alias of `readout="weights" |
    "direct"`. Either way they are positive: `omega0 = omega0_init * softplus(raw +
    log(e - 1))` (equal to `omega0_init` at `raw = 0`), likewise `zeta`.

    Units: the physics is in physical units (`units = "physical"`); with data
    normalised as `data = (physical - shift) / scale`, pass `scale` and `shift`
    (`WARP(data_scale=..., data_shift=...)` does) and the transition stays exact. For the
    paper's data, physical time equals tau, so `dt = 1 / (seq_len - 1)`, which WARP
    passes (`needs_dt`).

    **Arguments:**

    - `data_size`: must be 2 (position, velocity).
    - `width`, `depth`, `activation`, `input_prev`, `latent_size`: the readout (see
      `ReadoutSettings`). `input_prev` defaults to False here: the parameters are then a
      function of theta_t and tau only, which identified better and extrapolated further
      on validation (README, "Which readout").
    - `readout`: `"weights"`, `"direct"` or `"latent"`; `parametrization`: its old name.
    - `mode`: `"step"` or `"analytic"`.
    - `dt`: physical time of one step (default 1/255: 256 points on [0, 1]).
    - `time_scale`: physical time per unit tau (analytic mode).
    - `omega0_init`, `zeta_init`: values at raw 0 (radians per unit time; ratio).
    - `log_omega0`: read omega0 on a log axis, `omega0_init * exp(raw)`, instead of
      `omega0_init * softplus(raw + log(e - 1))`.
    - `scale`, `shift`: per-channel normalisation of the data, length-2 sequences.

    **Returns** (of `__call__(params, tau, x_prev)`): the predicted state, shape `(2,)`,
    in data units.
    """

    mode: str = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)

    def __init__(
        self,
        data_size: int = 2,
        width: int = 16,
        depth: int = 2,
        activation: str = "swish",
        input_prev: bool = False,
        readout: str | None = None,
        parametrization: Literal["mlp", "direct"] | None = None,
        mode: Literal["step", "analytic"] = "step",
        dt: float = 1.0 / 255.0,
        time_scale: float = 1.0,
        omega0_init: float = 10.0,
        zeta_init: float = 0.1,
        latent_size: int = 8,
        log_omega0: bool = False,
        scale=(1.0, 1.0),
        shift=(0.0, 0.0),
    ):
        if data_size != 2:
            raise ValueError(
                f"damped_oscillator predicts (position, velocity): data_size must be 2, "
                f"got {data_size}"
            )
        if mode not in ("step", "analytic"):
            raise ValueError(f"mode must be 'step' or 'analytic', got {mode!r}")
        if not (dt > 0 and time_scale > 0 and omega0_init > 0 and zeta_init > 0):
            raise ValueError(
                "dt, time_scale, omega0_init and zeta_init must be > 0, got "
                f"{dt}, {time_scale}, {omega0_init}, {zeta_init}"
            )
        scale, shift = tuple(float(s) for s in scale), tuple(float(s) for s in shift)
        specs = [
            ParameterSpec("omega0", transform=("log" if log_omega0 else "around", omega0_init),
                          unit="rad/time"),
            ParameterSpec("zeta", transform=("around", zeta_init), unit="1"),
        ]
        if mode == "analytic" and len(scale) == len(shift) == 2:
            specs += [
                ParameterSpec(f"{n}0", transform=("affine", scale[i], shift[i]), unit="data")
                for i, n in enumerate(("position", "velocity"))
            ]  # the initial state, stored in data units
        super().__init__(
            2, specs, readout=readout_alias(readout, parametrization, "weights"), width=width,
            depth=depth, activation=activation, input_prev=input_prev, latent_size=latent_size,
            init_scale=0.0, scale=scale, shift=shift, dt=dt,
        )
        self.mode, self.time_scale = mode, float(time_scale)

    def forward(self, physical, tau: Float[Array, ""], state: Float[Array, " 2"]):
        """One exact step from `state` (or, analytic, from `(position0, velocity0)` over
        `time_scale * tau`), physical units in and out."""
        if self.mode == "step":
            elapsed = self.dt
        else:
            state = jnp.stack([physical["position0"], physical["velocity0"]])
            elapsed = self.time_scale * jnp.asarray(tau)
        return damped_transition(physical["omega0"], physical["zeta"], elapsed) @ state


def readout_alias(readout: str | None, parametrization: str | None, default: str) -> str:
    """The readout named by `readout=` or by the old `parametrization=` (`"mlp"` is
    `"weights"`, `"direct"` is `"direct"`); `default` when neither is given."""
    if parametrization is None:
        return default if readout is None else readout
    if readout is not None:
        raise ValueError("give readout= or its old name parametrization=, not both")
    aliases = {"mlp": "weights", "direct": "direct"}
    if parametrization not in aliases:
        raise ValueError(f"parametrization must be 'mlp' or 'direct', got {parametrization!r}")
    return aliases[parametrization]
