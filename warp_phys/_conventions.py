"""What every autoregressive rollout shares: the index conventions, the time line of an
irregular grid, the fed-back value, and the checks at the entry of a rollout or forecast.

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

The mechanisms (`warp_phys._rollout`: a scan; `warp_phys._kernel_rollout`: precomputed
kernels) build on this module; `warp_phys._forecast` chooses between them.
"""

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._interface import check_sequence, mean_of

Convention = Literal["clean", "reference"]
CONVENTIONS = ("clean", "reference")


def check_convention(convention) -> None:
    """A one-line `ValueError` unless `convention` is `"clean"` or `"reference"`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be 'clean' or 'reference', got {convention!r}")


def check_noise(model, noise_key) -> None:
    """Stochastic feedback (`noise_key` given) needs a probabilistic model."""
    if noise_key is not None and not model.probabilistic:
        raise ValueError(
            "stochastic feedback needs a probabilistic model (one predicting mean and std, "
            "trained with the Gaussian NLL)"
        )


def check_length(model, consumed: int) -> None:
    """A rollout feeding `consumed` inputs must fit the model's `max_length`."""
    limit = model.max_length
    if limit is not None and consumed > limit:
        raise ValueError(
            f"this rollout feeds {consumed} inputs but the model holds at most {limit} "
            f"(its max_length); shorten the context or horizon"
        )


def check_horizon(horizon) -> None:
    """`horizon` must be a non-negative Python int (it fixes a scan's length)."""
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 0:
        raise ValueError(f"horizon must be a non-negative int, got {horizon!r}")


def fed_back(out, noise_key, t) -> Array:
    """The value fed back as the next input: the mean, or a sample with `noise_key`."""
    if noise_key is None or not isinstance(out, tuple):
        return mean_of(out)
    mean, std = out
    eps = jax.random.normal(jax.random.fold_in(noise_key, t), mean.shape, mean.dtype)
    return mean + std * eps


def concat_first(first, rest):
    """Prepend `first` (a pytree of single entries) to the stacked `rest`."""
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
    the feedback key, `xs` of shape `(T, data)` with T >= 2 and `observed` of shape
    `(T,)`; returns both as arrays."""
    check_convention(convention)
    check_noise(model, noise_key)
    xs = check_sequence(xs, model.data_size)
    T = xs.shape[0]
    if T < 2:
        raise ValueError("a rollout needs at least 2 time steps")
    observed = jnp.asarray(observed, bool)
    if observed.shape != (T,):
        raise ValueError(f"observed must have shape ({T},), got {observed.shape}")
    return xs, observed


def forecast_entry(model, context, horizon: int, one, *, convention, key, ts=None):
    """The entry shared by every forecast (`scan_reconstruct`, `kernel_reconstruct`):
    checks the convention, the feedback key and `horizon`; vmaps a batch
    `(N, L, data)` (and its times `ts` `(N, L + horizon)`) with one key per trajectory
    split from `key`; validates each context `(L, data)` and returns empty predictions
    `(0, data)` for `horizon == 0`. Otherwise it returns `one(context, key)` (or
    `one(context, key, ts)` with times), the forecast `(horizon, data)` of one
    trajectory (or a `(mean, std)` pair)."""
    check_convention(convention)
    check_noise(model, key)
    context = jnp.asarray(context)
    check_horizon(horizon)
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


def teacher_forcing_mask(
    key: PRNGKeyArray,
    length: int,
    forcing_prob: float,
    context: int = 1,
    context_max: int | None = None,
) -> Bool[Array, " T"]:
    """Which inputs are observed in autoregressive training: the first `context` steps
    (with `context_max`, a number of them drawn uniformly from `context..context_max`),
    then each step independently with probability `forcing_prob`."""
    if context_max is not None:  # without it the coin's key stays what it always was
        key, length_key = jax.random.split(key)
        context = jax.random.randint(length_key, (), context, context_max + 1)
    coin = jax.random.bernoulli(key, forcing_prob, (length,))
    return coin | (jnp.arange(length) < context)


def reference_context(length: int, context: int) -> int:
    """Number of leading steps the reference code treats as context: those with
    tau_t <= L / T, where tau_t = t / (T - 1) (spec section 1.6c; 100 for T=256, L=100).
    Computed exactly in integers: t * T <= L * (T - 1)."""
    if length < 2 or not 0 <= context <= length:
        raise ValueError(f"need 0 <= context <= length and length >= 2, got {context}, {length}")
    return min(length, context * (length - 1) // length + 1)


def forecast_inputs(
    context: Float[Array, "L data"], horizon: int
) -> tuple[Float[Array, "T data"], Bool[Array, " T"]]:
    """`(xs, observed)` of a rollout that observes `context` and then runs free for
    `horizon` steps: the context padded with `horizon` zero rows (never read), and
    the mask `t < L`, both over T = L + horizon steps."""
    L = context.shape[0]
    xs = jnp.concatenate([context, jnp.zeros((horizon, context.shape[1]), context.dtype)])
    return xs, jnp.arange(L + horizon) < L
