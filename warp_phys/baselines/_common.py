"""Pieces shared by the baselines: the linear output head (`HeadBaseline`) and parameter
counting/matching."""

import abc
import functools
import json
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from .._interface import AbstractSequenceModel


def head_output(raw: Float[Array, " out"], data_size: int, probabilistic: bool, lower: float):
    """Split a linear head's output into the mean, or `(mean, std)` with
    `std = max(softplus(raw_std), lower)` (the reference clipped the raw value without a
    softplus, spec section 8.11; a softplus keeps the gradient alive)."""
    if not probabilistic:
        return raw
    return raw[:data_size], jnp.maximum(jax.nn.softplus(raw[data_size:]), lower)


class HeadBaseline(AbstractSequenceModel):
    """A baseline whose state is decoded by a linear `head`: the mean `(data_size,)`, or
    `(mean, std)` with `std = max(softplus(raw), std_lower_bound)` when probabilistic.

    A subclass declares `head` among its own fields (their order is the order of the
    saved leaves), sets the fields below and says which part of its state the head
    reads (`_features`).
    """

    head: eqx.AbstractVar[eqx.nn.Linear]
    data_size: int = eqx.field(static=True)
    output_size: int = eqx.field(static=True)  # channels predicted (default data_size)
    is_probabilistic: bool = eqx.field(static=True)
    std_lower_bound: float = eqx.field(static=True)
    config_json: str = eqx.field(static=True)

    @property
    def config(self) -> dict:
        return json.loads(self.config_json)

    @property
    def probabilistic(self) -> bool:
        return self.is_probabilistic

    @abc.abstractmethod
    def _features(self, state: PyTree[Array]) -> Float[Array, " width"]:
        """The vector of `state` that the head reads."""

    def decode(self, state, t, u: Float[Array, " data"]):
        """The linear head on the state's features (`t` and `u` are not used)."""
        raw = self.head(self._features(state))
        return head_output(raw, self.output_size, self.is_probabilistic, self.std_lower_bound)


def config_json(output_size=None, **config) -> str:
    """The constructor arguments as JSON (`output_size` only when it was given, so the
    configs of earlier checkpoints stay as they were)."""
    if output_size is not None:
        config["output_size"] = int(output_size)
    return json.dumps(config, sort_keys=True)


def count_parameters(model: eqx.Module) -> int:
    """Number of trainable scalars (all inexact array leaves) of `model`; works on real
    models and on `eqx.filter_eval_shape` outputs alike."""
    leaves = [
        leaf
        for leaf in jax.tree.leaves(model)
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype")
        and jnp.issubdtype(leaf.dtype, jnp.inexact)
    ]
    return int(sum(leaf.size for leaf in leaves))


def match_size(
    build: Callable[[int], eqx.Module], target: int, *, multiple: int = 1, limit: int = 1 << 16
) -> int:
    """The size `s` (a multiple of `multiple`) whose model `build(s)` has the parameter
    count closest to `target`. `build` is only traced (`eqx.filter_eval_shape`), so this
    is cheap even for large sizes."""
    if target < 1:
        raise ValueError(f"target parameter count must be >= 1, got {target}")

    @functools.cache
    def count(units: int) -> int:
        return count_parameters(eqx.filter_eval_shape(build, units * multiple))

    lo, hi = 1, 1
    while count(hi) < target:
        lo, hi = hi, hi * 2
        if hi * multiple > limit:
            raise ValueError(f"no size up to {limit} reaches {target} parameters")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    best = min((lo, hi), key=lambda u: abs(count(u) - target))
    return best * multiple
