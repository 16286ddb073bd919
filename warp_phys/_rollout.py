"""Autoregressive rollouts: feeding predictions back as the inputs that drive theta.

Index convention (the spec's "clean" one): the input u_t is the observation x_t when
it is given (in the context, or by teacher forcing) and the model's own prediction
x_hat_t otherwise; theta_t = A theta_{t-1} + B (u_t - u_{t-1}); the prediction of
x_{t+1} is decoded from theta_t at tau_{t+1} with u_t as the previous observation.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._model import WARP, Mode


def _mean(out):
    return out[0] if isinstance(out, tuple) else out


def rollout(model: WARP, xs: Float[Array, "T data"], observed: Bool[Array, " T"]):
    """Predictions of x_1..x_{T-1}, feeding back predictions where `observed` is False.

    **Arguments:**

    - `xs`: shape `(T, data_size)`; rows where `observed` is False are never read
      (except `xs[0]`, which is always used: theta_0 = phi(x_0)).
    - `observed`: shape `(T,)`, whether x_t is given to the model as input u_t.

    **Returns:** the mean of shape `(T-1, data_size)`, or `(mean, std)`.
    With `observed` all True this equals `model(xs, mode="sequential")`.
    """
    xs = model._check_sequence(xs, "xs")
    theta0 = model.initial_state(xs[0])
    first = model.decode(theta0, 1, xs[0])

    def step(carry, inputs):
        theta, u_prev, prediction = carry
        t, x_t, is_observed = inputs
        u = jnp.where(is_observed, x_t, prediction)
        theta = model.step(theta, u - u_prev)
        out = model.decode(theta, t + 1, u)
        return (theta, u, _mean(out)), out

    T = xs.shape[0]
    steps = jnp.arange(1, T - 1)
    _, rest = jax.lax.scan(step, (theta0, xs[0], _mean(first)), (steps, xs[1:-1], observed[1:-1]))
    return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


def teacher_forcing_mask(
    key: PRNGKeyArray, length: int, forcing_prob: float, context: int = 1
) -> Bool[Array, " T"]:
    """Which inputs are observed in autoregressive training: the first `context` steps,
    then each step independently with probability `forcing_prob`."""
    coin = jax.random.bernoulli(key, forcing_prob, (length,))
    return coin | (jnp.arange(length) < context)


def reconstruct(
    model: WARP,
    context: Float[Array, "*batch L data"],
    horizon: int,
    *,
    mode: Mode = "parallel",
):
    """Forecast `horizon` steps after an observed context, feeding predictions back.

    **Arguments:**

    - `context`: the first L >= 1 observations, shape `(L, data_size)` (or a batch
      `(N, L, data_size)`, which is vmapped).
    - `horizon`: number of future steps (a Python int, static under `jit`).
    - `mode`: how theta is computed over the context ("parallel" or "sequential").

    **Returns:** predictions of x_L..x_{L+horizon-1}, shape `(horizon, data_size)`
    (batched: `(N, horizon, data_size)`), or `(mean, std)` for probabilistic models.
    """
    context = jnp.asarray(context)
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 0:
        raise ValueError(f"horizon must be a non-negative int, got {horizon!r}")
    if context.ndim == 3:
        return jax.vmap(lambda c: reconstruct(model, c, horizon, mode=mode))(context)
    context = model._check_sequence(context, "context")
    L = context.shape[0]
    if horizon == 0:
        empty = jnp.zeros((0, model.data_size), context.dtype)
        return (empty, empty) if model.probabilistic else empty

    theta = model.weight_trajectory(context, mode)[-1]
    first = model.decode(theta, L, context[-1])

    def step(carry, t):
        theta, u_prev, prediction = carry
        theta = model.step(theta, prediction - u_prev)
        out = model.decode(theta, t + 1, prediction)
        return (theta, prediction, _mean(out)), out

    _, rest = jax.lax.scan(step, (theta, context[-1], _mean(first)), jnp.arange(L, L + horizon - 1))
    return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


reconstruct_jit = eqx.filter_jit(reconstruct)
