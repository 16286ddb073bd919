r"""The transition A of WARP's recurrence theta_t = A theta_{t-1} + B du_t, dense or
structured.

Every kind is a small `eqx.Module` holding only its parameters. It acts as a matrix
through `A @ x` (`x` of shape `(D,)` or `(D, m)`), so the sequential scan and the power
kernels of `warp_phys._recurrence` work for all kinds without ever forming A when it is
structured. Costs per product with a vector (multiply-adds) and parameter memory:

| kind       | A                                   | `A @ theta`     | memory        |
|------------|-------------------------------------|-----------------|---------------|
| `dense`    | a D x D matrix (init I)             | D^2             | D^2           |
| `diagonal` | diag(a) (init a = 1)                | D               | D             |
| `lowrank`  | I + U V^T, U, V of shape (D, r)     | 2 D r           | 2 D r         |
|            | (init V = 0, U ~ N(0, 1/D))         |                 |               |
| `block`    | one dense block per parameter       | sum_b D_b^2     | sum_b D_b^2   |
|            | tensor of the root (init I blocks)  |                 |               |
| `continuous` | exp(h Lambda), Lambda = diag(rate) | D             | D             |
|            | (init rate = 0), h the step size    |                 |               |

The two diagonal kinds, `diagonal` and the time-aware `continuous` (for irregular time
grids), are in `warp_phys._elementwise`; `warp_phys._transitions.make_transition`
builds any kind by name.

`parallel_states` is each kind's unrolled recurrence over a whole sequence (see
`warp_phys._recurrence` for the algorithms and their costs). `lr_divisor` sizes the
default learning rate of A's parameters (`lr / lr_divisor`) so that one Adam step,
which moves every entry by about the step size, moves A by at most about `lr` in
spectral norm: D for dense, 1 for diagonal, sqrt(D r) for lowrank, the largest block
for block.
"""

import abc
import itertools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg
from jaxtyping import Array, Float, PRNGKeyArray

from ._recurrence import (
    lowrank_states,
    matrix_powers_times,
    parallel_states,
    preferred_mode,
)


class AbstractTransition(eqx.Module):
    """A linear map on theta of shape `(D,)`; see the module docstring.

    A subclass provides `size` (D), `__matmul__` (A x for `x` of shape `(D,)` or
    `(D, m)`), `step_cost` and `lr_divisor`, and may specialise `powers_times`,
    `as_matrix` and `parallel_states`.
    """

    kind: ClassVar[str]
    time_aware: ClassVar[bool] = False  # whether A depends on the step size h

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """D_theta."""

    @abc.abstractmethod
    def __matmul__(self, x: Array) -> Array:
        """A x for `x` of shape `(D,)` or `(D, m)`."""

    @property
    @abc.abstractmethod
    def step_cost(self) -> int:
        """Multiply-adds of one product `A @ theta`."""

    @property
    @abc.abstractmethod
    def lr_divisor(self) -> float:
        """The default learning rate of A's parameters is `lr / lr_divisor`."""

    def advance(
        self,
        theta: Float[Array, " D_theta"],
        drive: Float[Array, " D_theta"],
        h: Array | None = None,
    ) -> Float[Array, " D_theta"]:
        """One recurrence step A theta + drive (`drive` = B du); `h`, the step size in
        sampling intervals, is for time-aware kinds only."""
        if h is not None:
            raise ValueError(
                f"transition {self.kind!r} does not depend on the step size; irregular "
                "time grids need transition='continuous'"
            )
        return self @ theta + drive

    def powers_times(self, M: Float[Array, "D_theta m"], n: int) -> Float[Array, "n D_theta m"]:
        """[M, A M, ..., A^{n-1} M], shape `(n, D, m)`: a scan of n - 1 products."""
        return matrix_powers_times(self, M, n)

    def as_matrix(self) -> Float[Array, "D_theta D_theta"]:
        """A as a dense `(D, D)` array (D^2 memory: for plots and tests at small D)."""
        return self @ jnp.eye(self.size, dtype=self.dtype)

    @property
    def dtype(self):
        return jax.tree.leaves(self)[0].dtype

    def preferred_mode(self, length: int, data_size: int) -> str:
        """The mode WARP's `"auto"` picks for a sequence of `length` steps."""
        return preferred_mode(length, data_size, self.step_cost // self.size)

    def parallel_states(
        self,
        B: Float[Array, "D_theta data"],
        head_weight: Float[Array, "D_theta r"],
        head_bias: Float[Array, " D_theta"],
        features: Float[Array, " r"],
        inputs: Float[Array, "T data"],
    ) -> Float[Array, "T D_theta"]:
        """theta_0..theta_{T-1} without a scan over D-sized states, theta_0 =
        `head_weight @ features + head_bias`. Default: the power kernels A^k [W | b | B]
        and a causal convolution (`warp_phys._recurrence.parallel_states`)."""
        return parallel_states(self, B, head_weight, head_bias, features, inputs)


class DenseTransition(AbstractTransition):
    """A = `matrix`, shape `(D, D)`: the paper's transition."""

    kind: ClassVar[str] = "dense"
    matrix: Float[Array, "D_theta D_theta"]

    def __init__(self, size: int, dtype=jnp.float32):
        self.matrix = jnp.eye(size, dtype=dtype)

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    def __matmul__(self, x):
        return self.matrix @ x

    @property
    def step_cost(self) -> int:
        return self.size**2

    @property
    def lr_divisor(self) -> float:
        return self.size

    def as_matrix(self):
        return self.matrix

    def parallel_states(self, B, head_weight, head_bias, features, inputs):
        return parallel_states(self.matrix, B, head_weight, head_bias, features, inputs)


class LowRankTransition(AbstractTransition):
    """A = I + U V^T with `U`, `V` of shape `(D, r)`; never forms A.

    Powers: (I + U V^T)^k = I + U C_k V^T with the r x r recurrence
    C_0 = 0, C_{k+1} = I + C_k (I + V^T U).
    """

    kind: ClassVar[str] = "lowrank"
    U: Float[Array, "D_theta r"]
    V: Float[Array, "D_theta r"]

    def __init__(self, size: int, rank: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        self.U = jax.random.normal(key, (size, rank), dtype) / math.sqrt(size)
        self.V = jnp.zeros((size, rank), dtype)

    @property
    def size(self) -> int:
        return self.U.shape[0]

    @property
    def rank(self) -> int:
        return self.U.shape[1]

    def __matmul__(self, x):
        return x + self.U @ (self.V.T @ x)

    @property
    def step_cost(self) -> int:
        return 2 * self.size * self.rank

    @property
    def lr_divisor(self) -> float:
        return math.sqrt(self.size * self.rank)

    def power_coefficients(self, n: int) -> Float[Array, "n r r"]:
        """C_0..C_{n-1}, shape `(n, r, r)`, with A^k = I + U C_k V^T (O(n r^3))."""
        r = self.rank
        eye = jnp.eye(r, dtype=self.U.dtype)
        grow = eye + self.V.T @ self.U

        def step(C, _):
            return eye + C @ grow, C

        _, coefficients = jax.lax.scan(step, jnp.zeros_like(eye), None, length=n)
        return coefficients

    def powers_times(self, M, n):
        """A^k M = M + U C_k (V^T M) for k < n: O(n D r m) FLOPs, no D x D product."""
        C = self.power_coefficients(n)
        return M[None] + jnp.einsum("dr,krs,sm->kdm", self.U, C, self.V.T @ M)

    def preferred_mode(self, length, data_size):
        # measured as for diagonal: the r-dim recurrence beat the scan 2x (fwd and bwd)
        return "parallel"

    def parallel_states(self, B, head_weight, head_bias, features, inputs):
        theta0 = head_weight @ features + head_bias
        return lowrank_states(self.U, self.V, B, theta0, inputs)


class BlockTransition(AbstractTransition):
    """A = block_diag(`blocks`): one dense `(D_b, D_b)` block per parameter tensor of
    the root network, in the order of its flat layout (couples weights within a tensor,
    never across tensors)."""

    kind: ClassVar[str] = "block"
    blocks: tuple[Float[Array, "Db Db"], ...]

    def __init__(self, sizes: tuple[int, ...], dtype=jnp.float32):
        self.blocks = tuple(jnp.eye(n, dtype=dtype) for n in sizes)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(b.shape[0] for b in self.blocks)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def __matmul__(self, x):
        ends = list(itertools.accumulate(self.sizes))
        starts = [0] + ends[:-1]
        parts = [b @ x[i:j] for b, i, j in zip(self.blocks, starts, ends, strict=True)]
        return jnp.concatenate(parts, axis=0)

    @property
    def step_cost(self) -> int:
        return sum(n * n for n in self.sizes)

    @property
    def lr_divisor(self) -> float:
        return max(self.sizes)

    def as_matrix(self):
        return jax.scipy.linalg.block_diag(*self.blocks)
