"""Autoregressive rollouts by a scan over time: feeding predictions back as the inputs
that drive the state.

Works for every `AbstractSequenceModel` (WARP and the baselines), in both index
conventions and on irregular time grids (see `warp_phys._conventions`). This is one
mechanism; `warp_phys._kernel_rollout` is the other (WARP only), and
`warp_phys._forecast` chooses between them.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._conventions import (
    Convention,
    advance_step,
    check_length,
    concat_first,
    fed_back,
    forecast_entry,
    forecast_inputs,
    rollout_entry,
    timeline,
)
from ._held_rollout import held, held_reconstruct, held_rollout
from ._interface import AbstractSequenceModel


def rollout(
    model: AbstractSequenceModel,
    xs: Float[Array, "T data"],
    observed: Bool[Array, " T"],
    *,
    convention: Convention = "clean",
    noise_key: PRNGKeyArray | None = None,
    ts: Float[Array, " T"] | None = None,
    return_states: bool = False,
):
    """Run the model along `xs`, feeding back predictions where `observed` is False.

    **Arguments:**

    - `model`: any `AbstractSequenceModel` (WARP, GRU, LSTM, Transformer).
    - `xs`: shape `(T, data)` with T >= 2; rows where `observed` is False are never
      read (except `xs[0]`, which is always used).
    - `observed`: shape `(T,)`, whether x_t is given to the model as its input.
    - `convention`: `"clean"` or `"reference"` (see `warp_phys._conventions`).
    - `noise_key`: feed back reparameterised samples (probabilistic models only).
    - `ts`: the time stamps `(T,)` of an irregular grid (time-aware models, clean
      convention); default: a regular grid.
    - `return_states`: also return the states the rollout visits and their inputs.

    **Returns:** clean: predictions of x_1..x_{T-1}, shape `(T-1, data)`;
    reference: out_0..out_{T-1}, shape `(T, data)`, scored against x_0..x_{T-1}.
    A `(mean, std)` pair for probabilistic models. With `observed` all True the clean
    rollout equals `model(xs, mode="sequential")`.

    With `return_states=True`: `(predictions, states, inputs)`, where `states[t]` is the
    state after consuming `inputs[t]` (x_t if observed, else the fed-back value) and
    `predictions[t]` is decoded from it: clean: the state that predicts x_{t+1}, for
    t = 0..T-2 (WARP: theta_t, shape `(T-1, D_theta)`; inputs `(T-1, data)`);
    reference: the state of step t (`(T, ...)`; its input v_t). A baseline's states
    are its state pytree, stacked. A WARP with `free_run="hold"` advances its state on
    observed inputs only (`warp_phys._held_rollout`).
    """
    if held(model):
        return held_rollout(
            model, xs, observed, convention=convention, noise_key=noise_key, ts=ts,
            return_states=return_states,
        )
    xs, observed = rollout_entry(model, xs, observed, convention, noise_key)
    positions, steps = timeline(model, ts, xs.shape[0], convention)
    if convention == "reference":
        check_length(model, xs.shape[0])
        return _reference_rollout(model, xs, observed, noise_key, return_states)
    check_length(model, xs.shape[0] - 1)
    state = model.initial_state(xs[0])
    first = model.decode(state, positions[1], xs[0])

    def step(carry, inputs):
        state, u_prev, fed = carry
        t, x_t, is_observed, position, h = inputs
        u = jnp.where(is_observed, x_t, fed)
        state = advance_step(model, state, u, u_prev, h)
        out = model.decode(state, position, u)
        traced = (out, state, u) if return_states else out
        return (state, u, fed_back(out, noise_key, t + 1)), traced

    h = None if steps is None else steps[:-1]
    inputs = (jnp.arange(1, xs.shape[0] - 1), xs[1:-1], observed[1:-1], positions[2:], h)
    init = (state, xs[0], fed_back(first, noise_key, 1))
    _, rest = jax.lax.scan(step, init, inputs)
    return concat_first((first, state, xs[0]) if return_states else first, rest)


def _reference_rollout(model, xs, observed, noise_key, return_states):
    """out_0..out_{T-1} of the reference convention (with their states and inputs)."""
    x0 = xs[0]

    def step(carry, inputs):
        state, h, p, t_prev = carry
        t, x_t, is_observed = inputs
        v = jnp.where(is_observed, x_t, h)
        state = model.advance(state, v, p)
        out = model.decode(state, 2 * t - t_prev, p)  # tau_t + (tau_t - tau_prev)
        traced = (out, state, v) if return_states else out
        return (state, fed_back(out, noise_key, t), h, t), traced

    steps = jnp.arange(xs.shape[0])
    init = (model.empty_state(x0), x0, x0, steps[0])
    return jax.lax.scan(step, init, (steps, xs, observed))[1]


def scan_reconstruct(
    model: AbstractSequenceModel,
    context: Float[Array, "*batch L data"],
    horizon: int,
    *,
    mode: str = "auto",
    convention: Convention = "clean",
    key: PRNGKeyArray | None = None,
    ts: Float[Array, "*batch L+horizon"] | None = None,
):
    """`warp_phys.reconstruct` through the scan: the state after the context (WARP:
    `model.encode` in `mode`), then `horizon` fed-back steps.

    **Arguments:** as `warp_phys.reconstruct` (without `ar_algorithm`).

    **Returns:** predictions of x_L..x_{L+horizon-1}, shape `(horizon, data)`
    (batched: `(N, horizon, data)`), or `(mean, std)`.
    """

    if held(model):
        return held_reconstruct(
            model, context, horizon, mode=mode, convention=convention, key=key, ts=ts
        )

    def one(context, key, ts=None):
        return _scan_forecast(model, context, horizon, mode, convention, key, ts)

    return forecast_entry(model, context, horizon, one, convention=convention, key=key, ts=ts)


def _scan_forecast(model, context, horizon, mode, convention, key, ts=None):
    """The forecast of one context `(L, data)`, horizon >= 1."""
    L = context.shape[0]
    positions, steps = timeline(model, ts, L + horizon, convention)
    if convention == "reference":
        xs, observed = forecast_inputs(context, horizon)
        outs = rollout(model, xs, observed, convention="reference", noise_key=key)
        return jax.tree.map(lambda a: a[L:], outs)
    check_length(model, L + horizon - 1)
    state = model.encode(context, mode) if ts is None else model.encode(context, mode, ts[:L])
    first = model.decode(state, positions[L], context[-1])

    def step(carry, inputs):
        state, u_prev, fed = carry
        t, position, h = inputs
        state = advance_step(model, state, fed, u_prev, h)
        out = model.decode(state, position, fed)
        return (state, fed, fed_back(out, key, t + 1)), out

    init = (state, context[-1], fed_back(first, key, L))
    h = None if steps is None else steps[L - 1 : -1]
    _, rest = jax.lax.scan(step, init, (jnp.arange(L, L + horizon - 1), positions[L + 1 :], h))
    return concat_first(first, rest)
