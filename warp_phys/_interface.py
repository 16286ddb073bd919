"""The small interface that rollouts, training and evaluation use: WARP and the
baselines (GRU, LSTM, Transformer) all implement it, so they share one training loop,
one rollout and one evaluation.

A sequence model consumes inputs u_0, u_1, ... one at a time into a state, and decodes
a prediction of the next observation from the state:

    state_0 = initial_state(x_0)                    (has consumed u_0 = x_0)
    state_t = advance(state_{t-1}, u_t, u_{t-1})
    x_hat_{t+1} = decode(state_t, t + 1, u_t)

`empty_state(x_0)` is the state before any input is consumed; the reference
convention (spec section 1.6c) starts there and consumes u_0 in its step 0.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

_MODEL_CLASSES: dict[str, type] = {}


def register_model_class(cls: type) -> type:
    """Let `load_model` rebuild models of class `cls` (by its name) from their `config`;
    usable as a class decorator."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_class(name: str) -> type | None:
    """The registered model class called `name`, or None."""
    return _MODEL_CLASSES.get(name)


class AbstractSequenceModel(eqx.Module):
    """Base class of every model the training loop and the rollouts accept.

    A subclass provides `data_size`, `config` (JSON-able constructor arguments without
    `key`, so `load_model` can rebuild it), `empty_state`, `initial_state`, `advance`,
    `decode` and a teacher-forced `__call__`. `max_length` (None: unbounded) is the
    number of inputs a state can hold (a Transformer's cache size).
    """

    data_size: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def config(self) -> dict:
        """The constructor arguments (without `key`) that rebuild this architecture."""

    @property
    def probabilistic(self) -> bool:
        """Whether predictions come as `(mean, std)` rather than the mean alone."""
        return False

    @property
    def max_length(self) -> int | None:
        """How many inputs one state can consume (None: no limit)."""
        return None

    @abc.abstractmethod
    def empty_state(self, x0: Float[Array, " data"]) -> PyTree[Array]:
        """The state before any input is consumed (`x0` may condition it, as in WARP)."""

    def initial_state(self, x0: Float[Array, " data"]) -> PyTree[Array]:
        """The state after consuming the first input x_0."""
        return self.advance(self.empty_state(x0), x0, x0)

    @abc.abstractmethod
    def advance(
        self, state: PyTree[Array], u: Float[Array, " data"], u_prev: Float[Array, " data"]
    ) -> PyTree[Array]:
        """Consume the next input `u` (`u_prev` is the input consumed before it)."""

    @abc.abstractmethod
    def decode(self, state: PyTree[Array], t, u: Float[Array, " data"]):
        """Prediction at (possibly fractional) step index `t` from `state`, whose last
        consumed input is `u`. Returns the mean `(data_size,)` or `(mean, std)`."""

    @abc.abstractmethod
    def __call__(self, xs: Float[Array, "T data"], mode: str = "auto"):
        """Teacher-forced predictions of `xs[1:]`, shape `(T-1, data_size)` (or a
        `(mean, std)` pair), equal to a rollout in which every input is observed."""

    def encode(self, context: Float[Array, "L data"], mode: str = "auto") -> PyTree[Array]:
        """The state after consuming all of `context` (default: a scan of `advance`)."""
        state = self.initial_state(context[0])

        def step(carry, u):
            state, u_prev = carry
            return (self.advance(state, u, u_prev), u), None

        (state, _), _ = jax.lax.scan(step, (state, context[0]), context[1:])
        return state


def check_sequence(xs, data_size: int, name: str = "xs") -> Array:
    """`xs` as an array of shape `(T, data_size)` with T >= 1, or a clear `ValueError`."""
    xs = jnp.asarray(xs)
    if xs.ndim != 2 or xs.shape[1] != data_size:
        raise ValueError(
            f"{name} must have shape (T, {data_size}) (time, data_size), got {xs.shape}"
        )
    if xs.shape[0] < 1:
        raise ValueError(f"{name} must contain at least one time step")
    return xs


def check_times(ts, dtype) -> Array:
    """Time stamps `ts` as an array of shape `(T,)` with T >= 1 and `dtype`, or a clear
    `ValueError`; when concrete (not traced) they must be finite and strictly increasing."""
    if jnp.ndim(ts) != 1 or jnp.shape(ts)[0] < 1:
        raise ValueError(f"ts must have shape (T,) with T >= 1, got {jnp.shape(ts)}")
    if not isinstance(ts, jax.core.Tracer):  # checked in numpy: no tracing, no compile
        values = np.asarray(ts, np.float64)
        if not np.all(np.isfinite(values)) or not np.all(np.diff(values) > 0):
            raise ValueError("ts must be finite and strictly increasing")
    return jnp.asarray(ts, dtype)


def mean_of(out):
    """The mean of a prediction that is either the mean or a `(mean, std)` pair."""
    return out[0] if isinstance(out, tuple) else out
