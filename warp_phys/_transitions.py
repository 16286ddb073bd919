"""Every transition kind by name: `make_transition` builds the A of WARP's recurrence
from its kind (see `warp_phys._transition` for the kinds, costs and memory)."""

import math

from jaxtyping import PRNGKeyArray

from ._elementwise import ContinuousTransition, DiagonalTransition
from ._transition import AbstractTransition, BlockTransition, DenseTransition, LowRankTransition

TRANSITIONS = ("dense", "diagonal", "lowrank", "block", "continuous")
DEFAULT_RANK = 8


def check_transition(kind: str, rank: int | None, time_step: float | None = None) -> None:
    """A one-line `ValueError` unless `kind` is a known transition, `rank` is None or,
    for `"lowrank"`, a positive int, and `time_step` is None or, for `"continuous"`, a
    positive finite float."""
    if kind not in TRANSITIONS:
        raise ValueError(f"transition must be one of {', '.join(TRANSITIONS)}; got {kind!r}")
    if rank is not None and kind != "lowrank":
        raise ValueError(f"transition_rank applies to transition='lowrank' only, not {kind!r}")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"transition_rank must be a positive int, got {rank!r}")
    if time_step is not None and kind != "continuous":
        raise ValueError("time_step applies to transition='continuous' only")
    if time_step is not None and not (math.isfinite(time_step) and time_step > 0):
        raise ValueError(f"time_step must be a positive finite float, got {time_step!r}")


def make_transition(
    kind: str, block_sizes: tuple[int, ...], *, rank: int | None, key: PRNGKeyArray, dtype
) -> AbstractTransition:
    """The transition `kind` at its initialisation (A = I) for a root whose flat
    parameter tensors have sizes `block_sizes` (D = their sum)."""
    check_transition(kind, rank)
    size = sum(block_sizes)
    if kind == "dense":
        return DenseTransition(size, dtype)
    if kind == "diagonal":
        return DiagonalTransition(size, dtype)
    if kind == "block":
        return BlockTransition(tuple(block_sizes), dtype)
    if kind == "continuous":
        return ContinuousTransition(size, dtype)
    rank = DEFAULT_RANK if rank is None else rank
    if rank > size:
        raise ValueError(f"transition_rank {rank} exceeds D_theta = {size}")
    return LowRankTransition(size, rank, key=key, dtype=dtype)
