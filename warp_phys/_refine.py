"""Refinement: a physical prior's parameters fitted to the observed context, then a forecast.

WARP reads a prior's physical parameters from theta_t with no gradient step at test time.
`refine_parameters` starts from that read-out at the end of the context (the values WARP
would use for its first forecast step: the readout of theta_{L-1} at tau_L with x_{L-1})
and runs K Levenberg-Marquardt iterations (optimistix) of a least-squares fit of the prior
alone to the context (data units), its parameters held fixed over the context, in two
stages:

1. floor(K / 2) iterations on the one-step residual, over the raw parameters:
       r_t = predict(constrain(raw), tau_t, x_{t-1}) - x_t,        t = 1..L-1
   nearly linear in the prior's step map, so it moves a poor read-out into the right
   basin (a free run from a wrong frequency has many local minima), but it takes the
   noisy inputs x_{t-1} as exact and so biases the parameters under noise;
2. the remaining iterations on the shooting (free-running) residual, over the raw
   parameters and the initial state s_0:
       s_t = predict(constrain(raw), tau_t, s_{t-1}),   r_t = s_t - x_t,   t = 0..L-1
   which averages the noise out (x_0 is not trusted either).

Measured on clean and 5 %-noisy MSD contexts of 25 and 100 steps from a poor start
(README, "Refinement"): shooting alone stalls in local minima on long contexts, the
one-step fit alone is biased under noise, the two stages beat both for K >= 10. Both
residuals cost one pass over the context per iteration. The optimisation is in raw
space, so every value it tries satisfies the prior's constraints (omega0 > 0, ...).

Two starts. The fit runs both stages from two points, vmapped in one compilation: WARP's
read-out, and the prior's declared initial values (the raw values of `ParameterSpec.init`,
the population centre the readouts are built around); per context it keeps the fit with
the lower sum of squared shooting residuals on the context (a non-finite sum counts as
the worst), so the choice uses the context only. Why: a read-out far out of distribution
can sit deep in a transform's tail, where the gradient vanishes and LM cannot leave. On an
out-of-distribution MSD-Zero trajectory a trained WARP (seed 2) read omega0 94, zeta 0.000
(truth 39.04, 0.0169): from there refinement fixed omega0 but left zeta at ~0, and a
handful of such contexts made that run's refined OOD MSE 9.8e-2 (raw units; 4e-5 and 9e-5
for seeds 0 and 1). With the second start: zeta 0.0169, OOD MSE 3.7e-5, in-distribution
MSEs unchanged; on 512 MSD test contexts (K = 20) the fit took 1.2x the time of one start.

`refined_forecast` runs the prior forward with the refined, fixed parameters from the end
of the fitted run, s_{L-1} (the context's last state with its noise fitted away). K = 0
takes the read-out unchanged and forecasts with it held fixed; `warp_phys.reconstruct`
uses this module only for `refine >= 1`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Float

from .decoders import PhysicalPrior
from .decoders._parameters import split_raw

# a residual that overflowed counts as this (data units), so Levenberg-Marquardt rejects
# the step instead of propagating NaN
_OVERFLOW = 1e3
# K of `refine="auto"`: on MSD / MSD-Zero test contexts refine 20 takes a 60 s WARP-Phys
# from 1e-1 to 2e-5 raw MSE (README, "Time to accuracy"); 5 is not enough from a poor start
DEFAULT_REFINE_STEPS = 20


def physical_prior_of(model) -> PhysicalPrior:
    """The model's `PhysicalPrior` decoder, or a one-line `ValueError` naming what it has."""
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, PhysicalPrior):
        what = type(model).__name__ if decoder is None else type(decoder).__name__
        raise ValueError(
            f"refinement needs a WARP model with a physical prior decoder (PhysicalPrior: "
            f"damped_oscillator, sinusoid, decoder_from_function, sympy:...); got {what}"
        )
    return decoder


def resolve_refine(
    model, refine, *, convention: str = "clean", regular: bool = True, context: int | None = None
) -> int:
    """K for a refine request: an int as given (None: 0); `"auto"`: `DEFAULT_REFINE_STEPS`
    where refinement applies (a `PhysicalPrior` decoder, clean convention, regular grid,
    and a `context` of L steps that observes more numbers, L x data, than the fit has
    unknowns: the parameters and the initial state), else 0."""
    if refine != "auto":
        return 0 if refine is None else check_steps(refine)
    prior = getattr(model, "decoder", None)
    if not isinstance(prior, PhysicalPrior) or convention != "clean" or not regular:
        return 0
    unknowns = sum(spec.size for spec in prior.parameters) + prior.data_size
    observed = None if context is None else context * prior.data_size
    return DEFAULT_REFINE_STEPS if observed is None or observed > unknowns else 0


def check_steps(steps) -> int:
    """`steps` (K) must be a non-negative Python int (it fixes the solver's loop)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"refine steps must be a non-negative int, got {steps!r}")
    return steps


def _free_run(prior: PhysicalPrior, raw, s0, taus):
    """s_0..s_{n}: the prior run from `s0` with `constrain(raw)` held fixed, stepping to
    each of `taus` `(n,)`; shape `(n + 1, data)`, data units."""
    physical = prior.constrain(raw)

    def step(s, tau):
        s = prior.predict(physical, tau, s)
        return s, s

    return jnp.concatenate([s0[None], jax.lax.scan(step, s0, taus)[1]])


def _shooting_residuals(z, args):
    prior, context, taus = args
    raw, s0 = z
    r = _free_run(prior, raw, s0, taus) - context
    return jnp.where(jnp.isfinite(r), r, _OVERFLOW)


def _one_step_residuals(raw, args):
    prior, context, taus = args
    physical = prior.constrain(raw)
    predict = jax.vmap(lambda tau, x: prior.predict(physical, tau, x))
    r = predict(taus, context[:-1]) - context[1:]
    return jnp.where(jnp.isfinite(r), r, _OVERFLOW)


def _two_stage(prior: PhysicalPrior, context, raw, taus, steps: int):
    """`(raw, s_0)` after `steps` Levenberg-Marquardt iterations from `(raw, x_0)`: half
    (rounded down) on the one-step residual, the rest on the shooting residual."""
    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-8)
    options = dict(args=(prior, context, taus), throw=False)
    first, z = steps // 2, (raw, context[0])
    if first:
        fit = optx.least_squares(_one_step_residuals, solver, raw, max_steps=first, **options)
        z = (fit.value, context[0])
    if steps > first:
        fit = optx.least_squares(_shooting_residuals, solver, z, max_steps=steps - first, **options)
        z = fit.value
    return z


def _shooting_cost(prior: PhysicalPrior, context, taus, z) -> Float[Array, ""]:
    """Sum of squared shooting residuals of `z = (raw, s_0)` on the context; inf if not
    finite (an overflowed residual already counts as `_OVERFLOW`)."""
    cost = jnp.sum(_shooting_residuals(z, (prior, context, taus)) ** 2)
    return jnp.where(jnp.isfinite(cost), cost, jnp.inf)


def _least_squares(prior: PhysicalPrior, context, raw, taus, steps: int):
    """`(raw, s_0)`: `_two_stage` from the read-out `raw` and from the prior's declared
    initial values, whichever fits the context better (`steps = 0`: the read-out)."""
    if not steps:
        return raw, context[0]
    leaves = jax.tree.leaves(raw)
    centre = split_raw(prior.readout.offset(leaves[0].dtype), prior.parameters)
    starts = jax.tree.map(lambda a, b: jnp.stack([a, jnp.broadcast_to(b, a.shape)]), raw, centre)
    fits = jax.vmap(lambda r: _two_stage(prior, context, r, taus, steps))(starts)
    costs = jax.vmap(lambda z: _shooting_cost(prior, context, taus, z))(fits)
    return jax.tree.map(lambda a: a[jnp.argmin(costs)], fits)


def _fit_one(model, context, steps: int, mode: str):
    """`(raw, fitted run (L, data))` for one context `(L, data)` in data units."""
    prior = physical_prior_of(model)
    L = context.shape[0]
    theta = model.encode(context, mode)
    raw = prior.raw_parameters(prior.unflatten(theta), model.tau(L), context[-1])
    taus = model.tau(jnp.arange(1, L))
    raw, s0 = _least_squares(prior, context, raw, taus, steps)
    return raw, _free_run(prior, raw, s0, taus)


@eqx.filter_jit
def _fit(model, context, steps: int, mode: str):
    return jax.vmap(lambda c: _fit_one(model, c, steps, mode))(context)


def _batched(context: Array, data_size: int) -> tuple[Array, bool]:
    """`context` as `(N, L, data)` and whether it was a single `(L, data)`."""
    context = jnp.asarray(context)
    if context.ndim not in (2, 3) or context.shape[-1] != data_size or context.shape[-2] < 1:
        raise ValueError(
            f"context must have shape (L, {data_size}) or (N, L, {data_size}) with L >= 1, "
            f"got {context.shape}"
        )
    return (context[None], True) if context.ndim == 2 else (context, False)


def refine_parameters(
    model, context: Float[Array, "*batch L data"], *, steps: int = 5, mode: str = "auto"
) -> dict[str, Array]:
    """The prior's physical parameters after `steps` Levenberg-Marquardt iterations on the
    context, from WARP's read-out at its end and from the prior's declared initial values,
    the better fit of the two kept (see the module docstring).

    **Arguments:**

    - `model`: a WARP model whose decoder is a `PhysicalPrior`.
    - `context`: the observed steps in data units (as the model sees them, normalised
      when the run normalises), `(L, data)` or a batch `(N, L, data)`.
    - `steps`: K >= 0 iterations (0: the read-out itself).
    - `mode`: how WARP's theta is computed over the context (as in `reconstruct`).

    **Returns:** `{name: array}` in the prior's units (`prior.parameter_units`), each of
    the declared shape (batched: with a leading `N`).
    """
    prior = physical_prior_of(model)
    context, single = _batched(context, prior.data_size)
    raw, _ = _fit(model, context, check_steps(steps), mode)
    physical = jax.vmap(prior.constrain)(raw)
    return jax.tree.map(lambda a: a[0], physical) if single else physical


def refined_forecast(
    model, context: Float[Array, "*batch L data"], horizon: int, *, steps: int, mode="auto"
) -> Float[Array, "*batch horizon data"]:
    """Forecast `horizon` steps after the context with the refined parameters fixed:
    s_t = predict(p, tau_t, s_{t-1}) for t = L..L+horizon-1, from the fitted s_{L-1}.

    **Arguments:** as `refine_parameters`, plus `horizon` (a Python int).

    **Returns:** predictions of x_L..x_{L+horizon-1} in data units, `(horizon, data)`
    (batched: `(N, horizon, data)`), as `reconstruct` returns them.
    """
    prior = physical_prior_of(model)
    context, single = _batched(context, prior.data_size)
    raw, run = _fit(model, context, check_steps(steps), mode)
    L = context.shape[1]
    taus = model.tau(jnp.arange(L, L + horizon))
    forecast = jax.vmap(lambda r, s: _free_run(prior, r, s, taus)[1:])(raw, run[:, -1])
    return forecast[0] if single else forecast
