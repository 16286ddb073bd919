"""Autoregressive rollouts: feeding predictions back as the inputs that drive the state.

Works for every `AbstractSequenceModel` (WARP and the baselines). Two index conventions:

- `"clean"` (default, spec section 1.6): the input u_t is the observation x_t when it is
  given (in the context, or by teacher forcing) and the fed-back prediction otherwise;
  the state consumes u_0..u_t (WARP: theta_t = A theta_{t-1} + B (u_t - u_{t-1})); the
  prediction of x_{t+1} is decoded from it at tau_{t+1} with u_t as the previous
  observation. Outputs are predictions of x_1..x_{T-1}; no target leaks into its own
  prediction.
- `"reference"` (the reference code's exact indexing, spec section 1.6c): carry
  (state, h, p, tau_prev) = (empty_state(x_0), x_0, x_0, tau_0); at step t = 0..T-1 the
  input is v_t = x_t if observed else h; the state consumes v_t with difference
  v_t - p, where p = out_{t-2} (x_0 for t < 2); out_t is decoded at
  tau_t + (tau_t - tau_prev) with p as the previous observation, and scored against
  x_t. Outputs are out_0..out_{T-1}.

Irregular time grids: a time-aware model (`WARP(transition="continuous")`) takes the
time stamps `ts` of the sequence (clean convention): decoding happens at the real times
and each step of the state spans the real interval (see `WARP.clock`).

Stochastic variant: with a `noise_key`, a probabilistic model feeds back a
reparameterised sample mean + std * eps instead of the mean (eps drawn from
`fold_in(noise_key, t)`, a key separate from the teacher-forcing coin).
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._interface import AbstractSequenceModel, check_sequence, mean_of

Convention = Literal["clean", "reference"]
CONVENTIONS = ("clean", "reference")
ArAlgorithm = Literal["auto", "kernel", "scan"]
AR_ALGORITHMS = ("auto", "kernel", "scan")


def _check_convention(convention) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be 'clean' or 'reference', got {convention!r}")


def _check_noise(model, noise_key) -> None:
    if noise_key is not None and not model.probabilistic:
        raise ValueError(
            "stochastic feedback needs a probabilistic model (one predicting mean and std, "
            "trained with the Gaussian NLL)"
        )


def _check_length(model, consumed: int) -> None:
    limit = model.max_length
    if limit is not None and consumed > limit:
        raise ValueError(
            f"this rollout feeds {consumed} inputs but the model holds at most {limit} "
            f"(its max_length); shorten the context or horizon"
        )


def _fed_back(out, noise_key, t) -> Array:
    """The value fed back as the next input: the mean, or a sample with `noise_key`."""
    if noise_key is None or not isinstance(out, tuple):
        return mean_of(out)
    mean, std = out
    eps = jax.random.normal(jax.random.fold_in(noise_key, t), mean.shape, mean.dtype)
    return mean + std * eps


def _concat_first(first, rest):
    return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


def timeline(model, ts, length: int, convention: str = "clean"):
    """`(positions, steps)` of a rollout over `length` inputs: the (fractional) step index
    of every input `(length,)` and the step sizes h_t between them `(length - 1,)`;
    `steps` is None on a regular grid (`ts` None), where positions are 0..length-1."""
    if ts is None:
        return jnp.arange(length), None
    if not hasattr(model, "clock"):  # WARP's clock names its transition in its error
        raise ValueError(
            f"{type(model).__name__} does not take time stamps ts: irregular grids need a "
            "time-aware model, WARP(transition='continuous')"
        )
    if convention != "clean":
        raise ValueError("time stamps ts are supported with the clean convention only")
    positions = model.clock(ts)
    if positions.shape != (length,):
        raise ValueError(f"ts must have shape ({length},), got {positions.shape}")
    return positions, jnp.diff(positions)


def advance_step(model, state, u, u_prev, h):
    """`model.advance`, over a step of `h` intervals when the grid is irregular."""
    return model.advance(state, u, u_prev) if h is None else model.advance(state, u, u_prev, h)


def rollout_entry(model, xs, observed, convention, noise_key) -> tuple[Array, Array]:
    """The checks shared by every rollout (`rollout`, `kernel_rollout`): the convention,
    the feedback key, `xs` of shape `(T, data_size)` with T >= 2 and `observed` of
    shape `(T,)`; returns both as arrays."""
    _check_convention(convention)
    _check_noise(model, noise_key)
    xs = check_sequence(xs, model.data_size)
    T = xs.shape[0]
    if T < 2:
        raise ValueError("a rollout needs at least 2 time steps")
    observed = jnp.asarray(observed, bool)
    if observed.shape != (T,):
        raise ValueError(f"observed must have shape ({T},), got {observed.shape}")
    return xs, observed


def rollout(
    model: AbstractSequenceModel,
    xs: Float[Array, "T data"],
    observed: Bool[Array, " T"],
    *,
    convention: Convention = "clean",
    noise_key: PRNGKeyArray | None = None,
    ts: Float[Array, " T"] | None = None,
):
    """Run the model along `xs`, feeding back predictions where `observed` is False.

    **Arguments:**

    - `model`: any `AbstractSequenceModel` (WARP, GRU, LSTM, Transformer).
    - `xs`: shape `(T, data_size)` with T >= 2; rows where `observed` is False are never
      read (except `xs[0]`, which is always used).
    - `observed`: shape `(T,)`, whether x_t is given to the model as its input.
    - `convention`: `"clean"` or `"reference"` (see the module docstring).
    - `noise_key`: feed back reparameterised samples (probabilistic models only).
    - `ts`: the time stamps `(T,)` of an irregular grid (time-aware models, clean
      convention); default: a regular grid.

    **Returns:** clean: predictions of x_1..x_{T-1}, shape `(T-1, data_size)`;
    reference: out_0..out_{T-1}, shape `(T, data_size)`, scored against x_0..x_{T-1}.
    A `(mean, std)` pair for probabilistic models. With `observed` all True the clean
    rollout equals `model(xs, mode="sequential")`.
    """
    xs, observed = rollout_entry(model, xs, observed, convention, noise_key)
    positions, steps = timeline(model, ts, xs.shape[0], convention)
    if convention == "reference":
        _check_length(model, xs.shape[0])
        return _reference_rollout(model, xs, observed, noise_key)
    _check_length(model, xs.shape[0] - 1)
    state = model.initial_state(xs[0])
    first = model.decode(state, positions[1], xs[0])

    def step(carry, inputs):
        state, u_prev, fed = carry
        t, x_t, is_observed, position, h = inputs
        u = jnp.where(is_observed, x_t, fed)
        state = advance_step(model, state, u, u_prev, h)
        out = model.decode(state, position, u)
        return (state, u, _fed_back(out, noise_key, t + 1)), out

    inputs = (
        jnp.arange(1, xs.shape[0] - 1), xs[1:-1], observed[1:-1], positions[2:],
        None if steps is None else steps[:-1],
    )  # fmt: skip
    init = (state, xs[0], _fed_back(first, noise_key, 1))
    _, rest = jax.lax.scan(step, init, inputs)
    return _concat_first(first, rest)


def _reference_rollout(model, xs, observed, noise_key):
    x0 = xs[0]

    def step(carry, inputs):
        state, h, p, t_prev = carry
        t, x_t, is_observed = inputs
        v = jnp.where(is_observed, x_t, h)
        state = model.advance(state, v, p)
        out = model.decode(state, 2 * t - t_prev, p)  # tau_t + (tau_t - tau_prev)
        return (state, _fed_back(out, noise_key, t), h, t), out

    steps = jnp.arange(xs.shape[0])
    init = (model.empty_state(x0), x0, x0, steps[0])
    _, outs = jax.lax.scan(step, init, (steps, xs, observed))
    return outs


def teacher_forcing_mask(
    key: PRNGKeyArray, length: int, forcing_prob: float, context: int = 1
) -> Bool[Array, " T"]:
    """Which inputs are observed in autoregressive training: the first `context` steps,
    then each step independently with probability `forcing_prob`."""
    coin = jax.random.bernoulli(key, forcing_prob, (length,))
    return coin | (jnp.arange(length) < context)


def reference_context(length: int, context: int) -> int:
    """Number of leading steps the reference code treats as context: those with
    tau_t <= L / T, where tau_t = t / (T - 1) (spec section 1.6c; 100 for T=256, L=100).
    Computed exactly in integers: t * T <= L * (T - 1)."""
    if length < 2 or not 0 <= context <= length:
        raise ValueError(f"need 0 <= context <= length and length >= 2, got {context}, {length}")
    return min(length, context * (length - 1) // length + 1)


def _check_horizon(horizon) -> None:
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 0:
        raise ValueError(f"horizon must be a non-negative int, got {horizon!r}")


def forecast_entry(model, context, horizon: int, one, *, convention, key, ts=None):
    """The entry shared by every forecast (`reconstruct`, `kernel_reconstruct`): checks
    the convention, the feedback key and `horizon`; vmaps a batch `(N, L, data_size)`
    (and its times `ts` `(N, L + horizon)`) with one key per trajectory split from
    `key`; validates each context `(L, data_size)` and returns empty predictions
    `(0, data_size)` for `horizon == 0`. Otherwise it returns `one(context, key)` (or
    `one(context, key, ts)` with times), the forecast `(horizon, data_size)` of one
    trajectory (or a `(mean, std)` pair)."""
    _check_convention(convention)
    _check_noise(model, key)
    context = jnp.asarray(context)
    _check_horizon(horizon)
    if context.ndim == 3:
        keys = None if key is None else jax.random.split(key, context.shape[0])
        if ts is not None and jnp.shape(ts)[:1] != context.shape[:1]:
            raise ValueError(
                f"ts must have shape ({context.shape[0]}, L + horizon) for a batch of "
                f"{context.shape[0]} contexts, got {jnp.shape(ts)}"
            )

        def each(c, k, t):
            return forecast_entry(model, c, horizon, one, convention=convention, key=k, ts=t)

        return jax.vmap(each)(context, keys, ts)
    context = check_sequence(context, model.data_size, "context")
    if horizon == 0:
        empty = jnp.zeros((0, model.data_size), context.dtype)
        return (empty, empty) if model.probabilistic else empty
    return one(context, key) if ts is None else one(context, key, ts)


def reconstruct(
    model: AbstractSequenceModel,
    context: Float[Array, "*batch L data"],
    horizon: int,
    *,
    mode: str = "auto",
    convention: Convention = "clean",
    key: PRNGKeyArray | None = None,
    ar_algorithm: ArAlgorithm = "auto",
    ts: Float[Array, "*batch L+horizon"] | None = None,
):
    """Forecast `horizon` steps after an observed context, feeding predictions back.

    **Arguments:**

    - `context`: the first L >= 1 observations, shape `(L, data_size)` (or a batch
      `(N, L, data_size)`, which is vmapped).
    - `horizon`: number of future steps (a Python int, static under `jit`).
    - `mode`: how WARP's theta is computed over the context ("auto",
      "parallel" or "sequential"; other models scan).
    - `convention`: `"clean"` or `"reference"` indexing (see the module docstring).
    - `key`: feed back samples instead of means (probabilistic models; a batch uses
      one key per trajectory, split from it).
    - `ar_algorithm`: how WARP forms its states: `"scan"` (the recurrence above),
      `"kernel"` (`kernel_reconstruct`: powers of A precomputed once for the batch;
      `mode` does not apply) or `"auto"`: the kernel when `choose_ar_algorithm`'s cost
      model finds it cheaper for L + horizon steps and the N trajectories of the batch,
      as in training. Both agree to float32 rounding; other models always scan.
    - `ts`: for a time-aware model on an irregular grid, the times of the context and of
      the steps to forecast, `(L + horizon,)` (batched: `(N, L + horizon)`); the
      forecast is made at those times (scan only, clean convention).

    **Returns:** predictions of x_L..x_{L+horizon-1}, shape `(horizon, data_size)`
    (batched: `(N, horizon, data_size)`), or `(mean, std)` for probabilistic models.
    """
    if ts is None and _forecast_algorithm(model, context, horizon, ar_algorithm) == "kernel":
        from ._kernel_rollout import kernel_reconstruct  # that module imports this one

        return kernel_reconstruct(model, context, horizon, convention=convention, key=key)

    def one(context, key, ts=None):
        return _scan_forecast(model, context, horizon, mode, convention, key, ts)

    return forecast_entry(model, context, horizon, one, convention=convention, key=key, ts=ts)


def _forecast_algorithm(model, context, horizon, ar_algorithm) -> str:
    """`"kernel"` or `"scan"` for `reconstruct` (a malformed context scans, and its
    entry checks name the problem)."""
    from ._kernel_rollout import resolve_ar_algorithm  # that module imports this one

    _check_horizon(horizon)
    shape = jnp.shape(context)
    if len(shape) not in (2, 3) or shape[-2] < 1:
        return "scan"
    batch = shape[0] if len(shape) == 3 else 1
    return resolve_ar_algorithm(model, ar_algorithm, shape[-2] + horizon, batch)


def _scan_forecast(model, context, horizon, mode, convention, key, ts=None):
    """`reconstruct` of one context `(L, data_size)`, horizon >= 1, through the scan."""
    L = context.shape[0]
    positions, steps = timeline(model, ts, L + horizon, convention)
    if convention == "reference":
        xs = jnp.concatenate([context, jnp.zeros((horizon, model.data_size), context.dtype)])
        observed = jnp.arange(L + horizon) < L
        outs = rollout(model, xs, observed, convention="reference", noise_key=key)
        return jax.tree.map(lambda a: a[L:], outs)
    _check_length(model, L + horizon - 1)
    state = model.encode(context, mode) if ts is None else model.encode(context, mode, ts[:L])
    first = model.decode(state, positions[L], context[-1])

    def step(carry, inputs):
        state, u_prev, fed = carry
        t, position, h = inputs
        state = advance_step(model, state, fed, u_prev, h)
        out = model.decode(state, position, fed)
        return (state, fed, _fed_back(out, key, t + 1)), out

    init = (state, context[-1], _fed_back(first, key, L))
    inputs = (jnp.arange(L, L + horizon - 1), positions[L + 1 :],
              None if steps is None else steps[L - 1 : -1])  # fmt: skip
    _, rest = jax.lax.scan(step, init, inputs)
    return _concat_first(first, rest)


reconstruct_jit = eqx.filter_jit(reconstruct)
