"""Parameter ranges: validation, the uniform box they span, and how much of an OOD box
lies outside the training one (for exact rejection sampling)."""

import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array

Range = tuple[float, float]

MIN_OOD_ACCEPTANCE = 0.01
"""Below this share of the OOD volume outside the training box, no OOD split is drawn."""


def check_range(what: str, value: Any) -> Range:
    """Validates `value` as a `(low, high)` pair of finite floats (a scalar means fixed)."""
    if isinstance(value, int | float):
        value = (value, value)
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        msg = f"{what}: expected a (low, high) pair or a number, got {value!r}"
        raise ValueError(msg) from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{what}: range ({low}, {high}) must be finite")
    if low > high:
        raise ValueError(f"{what}: range ({low}, {high}) is inverted: low must be <= high")
    return low, high


def box(ranges: Mapping[str, Range], names: tuple[str, ...]) -> tuple[Array, Array]:
    """`(low, high)`, each float32 `(len(names),)`: the corners of the ranges of `names`."""
    low = jnp.array([ranges[n][0] for n in names], jnp.float32)
    high = jnp.array([ranges[n][1] for n in names], jnp.float32)
    return low, high


def outside_share(train: Mapping[str, Range], ood: Mapping[str, Range]) -> float:
    """Fraction of the volume of the `ood` box outside the `train` box (a fixed OOD
    parameter counts as fully overlapping)."""
    inside = 1.0
    for p, (lo, hi) in ood.items():
        tlo, thi = train[p]
        overlap = max(0.0, min(hi, thi) - max(lo, tlo))
        inside *= 1.0 if hi == lo else overlap / (hi - lo)
    return 1.0 - inside


def candidates_for(acceptance: float) -> int:
    """Candidates per OOD draw: a power of two K with `(1 - acceptance)^K < 1e-12`."""
    if acceptance >= 1.0:
        return 1
    need = math.log(1e-12) / math.log1p(-max(acceptance, MIN_OOD_ACCEPTANCE))
    return 1 << max(4, math.ceil(math.log2(need)))
