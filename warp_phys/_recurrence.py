r"""The linear recurrence on the weights, in sequential and parallel form.

Given inputs u_0..u_{T-1} (shape `(T, data_size)`) and theta_0, WARP's states are

    theta_t = A theta_{t-1} + B (u_t - u_{t-1}),   t = 1..T-1,

equivalently, with du_0 = 0 and the kernel K_k = A^k B,

    theta_t = A^t theta_0 + sum_{s=1..t} K_{t-s} du_s.

Cost model (D = D_theta, d = data_size, r = hypernetwork feature size, N = batch,
one multiply-add = 2 FLOPs):

- sequential (`lax.scan`): 2 N T D^2 FLOPs, as N x D by D x D products per step;
  memory N T D for the stored states (kept for the backward pass).
- parallel: a per-batch precompute of A^k [W | b | B] for k < T, i.e.
  2 T D^2 (r + 1 + d) FLOPs and T D (r + 1 + d) memory, shared by all samples; then per
  sample 2 T D (r + 1) FLOPs for A^t theta_0 = (A^t W) h + A^t b, and the causal
  convolution with the kernel: 2 T^2 d D FLOPs as one GEMM with a (T, T d) history
  buffer when T d <= 2048, else an FFT of O(D d T log T) FLOPs and O(D T) memory.

Per sample the parallel form costs T D (2 r + 2 T d) against the scan's 2 T D^2, so it
wins once N > r + 1 + d and T d < D; both give the same states to float32 rounding.

`A` may also be a structured transition (`warp_phys._transition`), which acts through
`A @ x` (the scan calls its `advance`); the scan then costs its `step_cost` per step
instead of D^2. Three kinds have their own parallel form:

- diagonal A = diag(a): `diagonal_states`, a `lax.associative_scan` over the pairs
  (a, B du_t): O(T D (d + log T)) work, log T depth, O(T D) memory;
- low rank A = I + U V^T: `lowrank_states`. By induction theta_t = theta_0 +
  B (u_t - u_0) + U z_t with an r-dim state z_0 = 0,
  z_t = (I + V^T U) z_{t-1} + V^T theta_0 + V^T B (u_{t-1} - u_0): a scan of
  O(T r^2) and O(T D (r + d)) of GEMMs, O(T D) memory;
- continuous (time-aware) A(h) = exp(h Lambda): `diagonal_scan` over the time-varying
  pairs (exp(h_t Lambda), phi(h_t Lambda) B du_t), as cheap as the diagonal one.
"""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def input_differences(inputs: Float[Array, "T data"]) -> Float[Array, "T data"]:
    """du_t = u_t - u_{t-1}, with du_0 = 0."""
    return jnp.concatenate([jnp.zeros_like(inputs[:1]), jnp.diff(inputs, axis=0)])


def sequential_states(
    A,
    B: Float[Array, "D_theta data"],
    theta0: Float[Array, " D_theta"],
    inputs: Float[Array, "T data"],
    steps: Float[Array, " T-1"] | None = None,
) -> Float[Array, "T D_theta"]:
    """States theta_0..theta_{T-1} by a `lax.scan` over time (`A`: a transition of
    `warp_phys._transition`; one `A.advance` per step). `steps`: the step sizes h_t
    (in sampling intervals) of a time-aware transition on an irregular grid."""

    def step(theta, inputs):
        du, h = inputs
        theta = A.advance(theta, B @ du, h)
        return theta, theta

    _, rest = jax.lax.scan(step, theta0, (input_differences(inputs)[1:], steps))
    return jnp.concatenate([theta0[None], rest])


def matrix_powers_times(
    A: Float[Array, "D_theta D_theta"], M: Float[Array, "D_theta m"], n: int
) -> Float[Array, "n D_theta m"]:
    """[M, A M, A^2 M, ..., A^{n-1} M] by repeated products `A @ P` (never forms A^k;
    `A` an array or a structured transition)."""
    return _powers_and_next(A, M, n)[0]


def toeplitz_convolution(
    kernel: Float[Array, "T data D_theta"], signal: Float[Array, "T data"]
) -> Float[Array, "T D_theta"]:
    """out_t = sum_{s<=t} kernel_{t-s}^T signal_s as one (T, T d) x (T d, D) product.

    `2 T^2 d D` FLOPs at matrix-multiply speed; under `jax.vmap` over samples the
    products of the whole batch fuse into one large GEMM.
    """
    T, d, D = kernel.shape
    lag = jnp.arange(T)[:, None] - jnp.arange(T)[None, :]  # [t, k] -> source index t - k
    history = jnp.where((lag >= 0)[..., None], signal[jnp.maximum(lag, 0)], 0.0)  # (T, T, d)
    return history.reshape(T, T * d) @ kernel.reshape(T * d, D)


def fft_convolution(
    kernel: Float[Array, "T data D_theta"], signal: Float[Array, "T data"]
) -> Float[Array, "T D_theta"]:
    """The same causal convolution by zero-padded FFT along time, O(D d T log T)."""
    T = signal.shape[0]
    n = 2 * T
    kernel_f = jnp.fft.rfft(kernel, n=n, axis=0)
    signal_f = jnp.fft.rfft(signal, n=n, axis=0)
    out = jnp.fft.irfft(jnp.einsum("fdD,fd->fD", kernel_f, signal_f), n=n, axis=0)
    return out[:T].astype(signal.dtype)


# Above this many (lag, channel) pairs the FFT's O(T log T) beats the GEMM's O(T^2)
# despite the FFT's much lower FLOP rate on CPU (measured: 1e9-3e9 FLOP/s against
# 1e11 for GEMM), and the GEMM's (T, T d) history buffer gets large.
_GEMM_CONVOLUTION_LIMIT = 2048


def causal_convolution(
    kernel: Float[Array, "T data D_theta"], signal: Float[Array, "T data"]
) -> Float[Array, "T D_theta"]:
    """out_t = sum_{s<=t} kernel_{t-s}^T signal_s: a GEMM for short sequences, an FFT
    for long ones (`T d > 2048`)."""
    if signal.shape[0] * signal.shape[1] <= _GEMM_CONVOLUTION_LIMIT:
        return toeplitz_convolution(kernel, signal)
    return fft_convolution(kernel, signal)


def parallel_states(
    A: Float[Array, "D_theta D_theta"],
    B: Float[Array, "D_theta data"],
    head_weight: Float[Array, "D_theta r"],
    head_bias: Float[Array, " D_theta"],
    features: Float[Array, " r"],
    inputs: Float[Array, "T data"],
) -> Float[Array, "T D_theta"]:
    """States theta_0..theta_{T-1} without a sequential scan over the batch.

    `theta_0 = head_weight @ features + head_bias` (the hypernetwork's linear head).
    Everything computed from A, B and the head alone does not depend on the sample, so
    under `jax.vmap` over samples it is computed once per batch.
    """
    T = inputs.shape[0]
    r = head_weight.shape[1]
    stacked = jnp.concatenate([head_weight, head_bias[:, None], B], axis=1)
    powers = matrix_powers_times(A, stacked, T)  # (T, D, r + 1 + d)
    free = powers[:, :, :r] @ features + powers[:, :, r]  # A^t theta_0
    kernel = jnp.swapaxes(powers[:, :, r + 1 :], 1, 2)  # K_k^T = (A^k B)^T, (T, d, D)
    return free + causal_convolution(kernel, input_differences(inputs))


def diagonal_states(
    a: Float[Array, " D_theta"],
    B: Float[Array, "D_theta data"],
    theta0: Float[Array, " D_theta"],
    inputs: Float[Array, "T data"],
) -> Float[Array, "T D_theta"]:
    """States of theta_t = a * theta_{t-1} + B du_t by `lax.associative_scan`
    (see `diagonal_scan`)."""
    drive = (input_differences(inputs) @ B.T).at[0].set(theta0)  # (T, D)
    return diagonal_scan(jnp.broadcast_to(a, drive.shape), drive)


def diagonal_scan(
    decay: Float[Array, "T D_theta"], drive: Float[Array, "T D_theta"]
) -> Float[Array, "T D_theta"]:
    """theta_t = decay_t * theta_{t-1} + drive_t with theta_0 = drive_0 (decay_0 unused),
    by `lax.associative_scan` over the pairs (decay_t, drive_t) under
    (a_i, b_i) . (a_j, b_j) = (a_i a_j, a_j b_i + b_j): O(T D) work, log T depth."""

    def combine(earlier, later):
        a_i, b_i = earlier
        a_j, b_j = later
        return a_i * a_j, a_j * b_i + b_j

    return jax.lax.associative_scan(combine, (decay, drive))[1]


def lowrank_states(
    U: Float[Array, "D_theta r"],
    V: Float[Array, "D_theta r"],
    B: Float[Array, "D_theta data"],
    theta0: Float[Array, " D_theta"],
    inputs: Float[Array, "T data"],
) -> Float[Array, "T D_theta"]:
    """States of theta_t = (I + U V^T) theta_{t-1} + B du_t as
    theta_t = theta_0 + B (u_t - u_0) + U z_t, where the r-dim z follows
    z_t = (I + V^T U) z_{t-1} + V^T theta_0 + V^T B (u_{t-1} - u_0), z_0 = 0
    (see the module docstring). Never forms a D x D matrix."""
    shifted = inputs - inputs[0]  # u_t - u_0, (T, d)
    grow = jnp.eye(U.shape[1], dtype=U.dtype) + V.T @ U  # (r, r)
    drive = V.T @ theta0 + shifted[:-1] @ (V.T @ B).T  # (T - 1, r)

    def step(z, y):
        z = grow @ z + y
        return z, z

    _, z = jax.lax.scan(step, jnp.zeros_like(drive[0]), drive)
    z = jnp.concatenate([jnp.zeros_like(drive[:1]), z])  # (T, r)
    return theta0 + shifted @ B.T + z @ U.T


def preferred_mode(length: int, data_size: int, theta_size: int) -> str:
    """The mode `"auto"` picks: `"parallel"` when its per-sample convolution is at least
    four times cheaper than the scan's per-sample product (4 T d <= D_theta), leaving
    room to amortise the per-batch precompute; `"sequential"` otherwise."""
    return "parallel" if 4 * length * data_size <= theta_size else "sequential"


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matrix_powers_and_next(
    A: Float[Array, "D_theta D_theta"], M: Float[Array, "D_theta m"], n: int
) -> tuple[Float[Array, "n D_theta m"], Float[Array, "D_theta m"]]:
    """`(matrix_powers_times(A, M, n), A^n M)`: the powers [M, A M, ..., A^{n-1} M] of
    shape `(n, D, m)` and the next one, to continue in another call, with a hand-written
    VJP whose gradient w.r.t. A is ONE large GEMM.

    Autodiff of the power scan adds Lambda_k P_{k-1}^T (a rank-m update of a D x D
    matrix) at every step, reading and writing the whole D x D accumulator n times. Here
    the backward scan only runs the adjoint recurrence Lambda_k = G_k + A^T Lambda_{k+1}
    (one (D, D) x (D, m) product per step), and dA = sum_k Lambda_k P_{k-1}^T is one
    (D, n m) x (n m, D) product at the end. Cost: 2 n D^2 m FLOPs forward, twice that
    backward; memory n D m for the powers and as much for the adjoints.
    """
    return _powers_and_next(A, M, n)


def _powers_and_next(A, M, n):
    """`([M, A M, ..., A^{n-1} M], A^n M)` by a scan of products `A @ P`."""

    def step(P, _):
        return A @ P, P

    last, powers = jax.lax.scan(step, M, None, length=n)
    return powers, last


def _powers_fwd(A, M, n):
    powers, last = _powers_and_next(A, M, n)
    return (powers, last), (A, powers)


def _powers_bwd(n, residuals, cotangents):
    A, powers = residuals
    G, G_last = cotangents
    A_T = A.T

    def step(adjoint, G_k):  # Lambda_{k+1} -> Lambda_k = G_k + A^T Lambda_{k+1}
        return G_k + A_T @ adjoint, adjoint

    # outputs Lambda_1 .. Lambda_n (Lambda_n = G_last); the final carry is Lambda_0 = dM
    dM, lambdas = jax.lax.scan(step, G_last, G, reverse=True)
    dA = jnp.einsum("kim,kjm->ij", lambdas, powers)  # sum_k Lambda_{k+1} P_k^T
    return dA, dM


matrix_powers_and_next.defvjp(_powers_fwd, _powers_bwd)
