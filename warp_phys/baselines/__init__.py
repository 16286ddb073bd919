"""Baselines behind the same sequence-model interface as WARP (spec section 5): GRU,
LSTM and a causal Transformer. They train with the same loop and are evaluated with the
same rollouts; `hidden_size_for` matches their size to a parameter budget."""

import jax

from .._interface import register_model_class
from ._common import count_parameters, match_size
from ._rnn import GRU, LSTM
from ._transformer import Transformer

BASELINES = {"gru": GRU, "lstm": LSTM, "transformer": Transformer}

for _cls in BASELINES.values():
    register_model_class(_cls)


def hidden_size_for(kind: str, *, params: int, data_size: int, **options) -> int:
    """The width whose baseline has the parameter count closest to `params`.

    **Arguments:**

    - `kind`: `"gru"`, `"lstm"` (returns `hidden_size`) or `"transformer"` (returns
      `d_model`, a multiple of `heads`).
    - `params`: the target number of trainable scalars, e.g. `count_parameters(warp)`
      or the size of WARP's A (`warp.theta_size ** 2`, the reference's choice).
    - `data_size`: channels of one observation.
    - `options`: the other constructor arguments (e.g. `probabilistic`, `layers`).

    **Returns:** the matched `hidden_size` / `d_model`.
    """
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose from {sorted(BASELINES)}")
    cls = BASELINES[kind]
    key = jax.random.PRNGKey(0)
    if kind == "transformer":
        heads = options.get("heads", 2)
        return match_size(
            lambda d: cls(data_size, d_model=d, **options, key=key), params, multiple=heads
        )
    return match_size(lambda h: cls(data_size, hidden_size=h, **options, key=key), params)


__all__ = ["BASELINES", "GRU", "LSTM", "Transformer", "count_parameters", "hidden_size_for"]
