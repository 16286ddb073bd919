"""Every transition kind by name: `make_transition` builds the A of WARP's recurrence
from its kind (see `warp_phys._transition` for the kinds, costs and memory)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._elementwise import ContinuousTransition, DiagonalTransition
from ._transition import AbstractTransition, BlockTransition, DenseTransition, LowRankTransition

TRANSITIONS = ("dense", "diagonal", "lowrank", "block", "continuous")
DEFAULT_RANK = 8
INITS = ("identity", "rotation")  # A's initialisation (WARP's `transition_init`)


def check_transition(
    kind: str, rank: int | None, time_step: float | None = None, init: str = "identity"
) -> None:
    """A one-line `ValueError` unless `kind` is a known transition, `rank` is None or,
    for `"lowrank"`, a positive int, `time_step` is None or, for `"continuous"`, a
    positive finite float, and `init` is one of `INITS`, other than `"identity"` for
    `"dense"` only."""
    if kind not in TRANSITIONS:
        raise ValueError(f"transition must be one of {', '.join(TRANSITIONS)}; got {kind!r}")
    if init not in INITS:
        raise ValueError(f"transition_init must be one of {', '.join(INITS)}; got {init!r}")
    if init != "identity" and kind != "dense":
        raise ValueError(
            f"transition_init {init!r} applies to transition='dense' only, not {kind!r}"
        )
    if rank is not None and kind != "lowrank":
        raise ValueError(f"transition_rank applies to transition='lowrank' only, not {kind!r}")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"transition_rank must be a positive int, got {rank!r}")
    if time_step is not None and kind != "continuous":
        raise ValueError("time_step applies to transition='continuous' only")
    if time_step is not None and not (math.isfinite(time_step) and time_step > 0):
        raise ValueError(f"time_step must be a positive finite float, got {time_step!r}")


def rotation_matrix(size: int, key: PRNGKeyArray, dtype=jnp.float32) -> Float[Array, "D D"]:
    """A `(size, size)` block-diagonal matrix of 2 x 2 rotations by angles drawn uniformly
    in (0, pi) (and 1 on the last diagonal entry when `size` is odd): its eigenvalues
    e^{+-i phi} spread over the unit circle, so A^t theta_0 oscillates at as many
    frequencies and the root's weights carry a clock of the step, with no decay or
    growth (|eigenvalue| = 1)."""
    pairs = size // 2
    angles = jax.random.uniform(key, (pairs,), dtype, minval=0.0, maxval=math.pi)
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    i = 2 * jnp.arange(pairs)
    A = jnp.eye(size, dtype=dtype).at[i, i].set(cos).at[i + 1, i + 1].set(cos)
    return A.at[i, i + 1].set(-sin).at[i + 1, i].set(sin)


def make_transition(
    kind: str,
    block_sizes: tuple[int, ...],
    *,
    rank: int | None,
    key: PRNGKeyArray,
    dtype,
    init: str = "identity",
) -> AbstractTransition:
    """The transition `kind` at its initialisation for a root whose flat parameter
    tensors have sizes `block_sizes` (D = their sum): A = I, or with `init="rotation"`
    (dense only) the `rotation_matrix` drawn from `key`."""
    check_transition(kind, rank, init=init)
    size = sum(block_sizes)
    if kind == "dense":
        dense = DenseTransition(size, dtype)
        if init == "rotation":
            dense = eqx.tree_at(lambda t: t.matrix, dense, rotation_matrix(size, key, dtype))
        return dense
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
