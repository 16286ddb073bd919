"""Rollouts of a WARP whose state is driven by observations only (`free_run="hold"`).

A plain WARP rollout feeds its own predictions back as inputs, so theta_t keeps moving
after the context; with a physical prior the parameters read from theta_t then change
from step to step, and a time-varying oscillator can pump energy into the forecast (a
lightly damped out-of-distribution MSD trajectory blew up late in its forecast). With
`free_run="hold"`, theta advances only on observed inputs, one recurrence step per
observation, driven by the difference (or feature pair) of consecutive observations;
between observations it is held, and the decoder runs on its own previous output. After
a context the read-out parameters are therefore constant, and training sees exactly
what a forecast does.

One scan does it, as `warp_phys._rollout.rollout` does for the advancing WARP, and at
the same cost per step (measured: a training step of the cpu-preset WARP-Phys at batch
32 takes the same time either way); a forecast is the context's `encode` followed by a
scan of the decoder alone.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._conventions import concat_first, fed_back, forecast_entry, rollout_entry


def held(model) -> bool:
    """Whether `model` is a WARP with `free_run="hold"` (baselines never are)."""
    return getattr(model, "free_run", "advance") == "hold"


def check_held(convention: str, ts) -> None:
    """A held WARP runs in the clean convention on a regular grid; a `ValueError` else."""
    if convention != "clean" or ts is not None:
        raise ValueError(
            "a WARP with free_run='hold' runs in the clean convention on a regular grid "
            f"(got convention={convention!r}{', time stamps ts' if ts is not None else ''})"
        )


def held_rollout(
    model,
    xs: Float[Array, "T data"],
    observed: Bool[Array, " T"],
    *,
    convention: str = "clean",
    noise_key: PRNGKeyArray | None = None,
    ts: Float[Array, " T"] | None = None,
    return_states: bool = False,
):
    """`warp_phys.rollout` for a WARP with `free_run="hold"` (same arguments and returns;
    clean convention on a regular grid only): predictions of x_1..x_{T-1}, each decoded
    from the state of the observations so far, at tau_{t+1}, after the input of step t
    (x_t where observed, else the fed-back prediction)."""
    check_held(convention, ts)
    xs, observed = rollout_entry(model, xs, observed, convention, noise_key)
    theta = model.initial_state(xs[0])
    first = model.decode(theta, 1, xs[0])

    def step(carry, inputs):
        theta, last_observed, fed = carry
        t, x_t, is_observed = inputs
        theta = jnp.where(is_observed, model.advance(theta, x_t, last_observed), theta)
        last_observed = jnp.where(is_observed, x_t, last_observed)
        u = jnp.where(is_observed, x_t, fed)
        out = model.decode(theta, t + 1, u)
        traced = (out, theta, u) if return_states else out
        return (theta, last_observed, fed_back(out, noise_key, t + 1)), traced

    init = (theta, xs[0], fed_back(first, noise_key, 1))
    inputs = (jnp.arange(1, xs.shape[0] - 1), xs[1:-1], observed[1:-1])
    _, rest = jax.lax.scan(step, init, inputs)
    return concat_first((first, theta, xs[0]) if return_states else first, rest)


def held_reconstruct(
    model,
    context: Float[Array, "*batch L data"],
    horizon: int,
    *,
    mode: str = "auto",
    convention: str = "clean",
    key: PRNGKeyArray | None = None,
    ts=None,
):
    """`warp_phys.reconstruct` for a WARP with `free_run="hold"`: the state after the
    context (`mode`), held, and `horizon` steps of the decoder on its own outputs.

    **Returns:** predictions of x_L..x_{L+horizon-1}, `(horizon, data)` (batched:
    `(N, horizon, data)`), or `(mean, std)`.
    """

    def one(context, key, ts=None):
        check_held(convention, ts)
        L = context.shape[0]
        theta = model.encode(context, mode)
        first = model.decode(theta, L, context[-1])

        def step(fed, t):
            out = model.decode(theta, t, fed)
            return fed_back(out, key, t), out

        steps = jnp.arange(L + 1, L + horizon)
        return concat_first(first, jax.lax.scan(step, fed_back(first, key, L), steps)[1])

    return forecast_entry(model, context, horizon, one, convention=convention, key=key, ts=ts)
