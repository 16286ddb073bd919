"""GRU and LSTM baselines (spec section 5): an equinox cell and a linear head, behind
the same sequence-model interface as WARP."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._common import HeadBaseline, config_json


class _RecurrentBaseline(HeadBaseline):
    """A recurrent cell whose hidden state is decoded by a linear head.

    The state starts at zero (as in the reference); `advance` feeds the input u_t to
    the cell (the previous input is not used); `decode` applies the head to the hidden
    state: the mean of shape `(data_size,)`, or `(mean, std)` with
    `std = max(softplus(raw), std_lower_bound)` when `probabilistic`.
    """

    cell_class: ClassVar[type]

    cell: eqx.Module
    head: eqx.nn.Linear
    hidden_size: int = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        *,
        hidden_size: int = 64,
        probabilistic: bool = False,
        std_lower_bound: float = 1e-4,
        output_size: int | None = None,
        key: PRNGKeyArray,
    ):
        if int(data_size) < 1 or int(hidden_size) < 1:
            raise ValueError(
                f"data_size and hidden_size must be >= 1, got {data_size}, {hidden_size}"
            )
        cell_key, head_key = jax.random.split(key)
        self.cell = self.cell_class(data_size, hidden_size, key=cell_key)
        self.output_size = int(data_size if output_size is None else output_size)
        out = 2 * self.output_size if probabilistic else self.output_size
        self.head = eqx.nn.Linear(hidden_size, out, key=head_key)
        self.data_size = int(data_size)
        self.hidden_size = int(hidden_size)
        self.is_probabilistic = bool(probabilistic)
        self.std_lower_bound = float(std_lower_bound)
        self.config_json = config_json(
            data_size=self.data_size,
            hidden_size=self.hidden_size,
            probabilistic=self.is_probabilistic,
            std_lower_bound=self.std_lower_bound,
            output_size=output_size,
        )

    def _features(self, state) -> Float[Array, " hidden"]:
        return state

    def empty_state(self, x0: Float[Array, " data"]) -> PyTree[Array]:
        """The zero hidden state."""
        return jnp.zeros(self.hidden_size, x0.dtype)

    def advance(self, state, u: Float[Array, " data"], u_prev: Float[Array, " data"]):
        """One cell step on the input `u`."""
        return self.cell(u, state)

    def __call__(self, xs: Float[Array, "T data"], mode: str = "auto"):
        """Teacher-forced predictions of `xs[1:]` (a scan; `mode` is accepted for
        interface compatibility with WARP and ignored)."""

        def step(state, u):
            state = self.cell(u, state)
            return state, state

        _, states = jax.lax.scan(step, self.empty_state(xs[0]), xs[:-1])
        return jax.vmap(lambda state: self.decode(state, 0, xs[0]))(states)


class GRU(_RecurrentBaseline):
    """GRU baseline: `eqx.nn.GRUCell(data_size, hidden_size)` and a linear head.

    **Arguments:** `data_size`; `hidden_size` (see `hidden_size_for` to match a
    parameter budget); `probabilistic` (predict `(mean, std)`, for the Gaussian NLL);
    `std_lower_bound`; `output_size` (channels predicted, default `data_size`, e.g.
    class logits); `key`.
    """

    cell_class: ClassVar[type] = eqx.nn.GRUCell


class LSTM(_RecurrentBaseline):
    """LSTM baseline: `eqx.nn.LSTMCell(data_size, hidden_size)` and a linear head on the
    hidden state h (the state is the pair `(h, c)`). Arguments as for `GRU`."""

    cell_class: ClassVar[type] = eqx.nn.LSTMCell

    def _features(self, state):
        return state[0]

    def empty_state(self, x0):
        zeros = jnp.zeros(self.hidden_size, x0.dtype)
        return zeros, zeros
