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
  sample 2 T D (r + 1) FLOPs for A^t theta_0 = (A^t W) h + A^t b, and an FFT causal
  convolution of O(D d T log T) FLOPs with O(D T) memory.

The parallel form therefore wins once N > r + 1 + d (and for any N when T is long
enough for the scan's sequential latency to dominate). Both give the same states to
float32 rounding.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def input_differences(inputs: Float[Array, "T d"]) -> Float[Array, "T d"]:
    """du_t = u_t - u_{t-1}, with du_0 = 0."""
    return jnp.concatenate([jnp.zeros_like(inputs[:1]), jnp.diff(inputs, axis=0)])


def sequential_states(
    A: Float[Array, "D D"],
    B: Float[Array, "D d"],
    theta0: Float[Array, " D"],
    inputs: Float[Array, "T d"],
) -> Float[Array, "T D"]:
    """States theta_0..theta_{T-1} by a `lax.scan` over time."""

    def step(theta, du):
        theta = A @ theta + B @ du
        return theta, theta

    _, rest = jax.lax.scan(step, theta0, input_differences(inputs)[1:])
    return jnp.concatenate([theta0[None], rest])


def matrix_powers_times(
    A: Float[Array, "D D"], M: Float[Array, "D m"], n: int
) -> Float[Array, "n D m"]:
    """[M, A M, A^2 M, ..., A^{n-1} M] by repeated products (never forms A^k)."""

    def step(P, _):
        return A @ P, P

    _, powers = jax.lax.scan(step, M, None, length=n)
    return powers


def causal_convolution(
    kernel: Float[Array, "T D d"], signal: Float[Array, "T d"]
) -> Float[Array, "T D"]:
    """out_t = sum_{s<=t} kernel_{t-s} signal_s, by zero-padded FFT along time."""
    T = signal.shape[0]
    n = 2 * T
    kernel_f = jnp.fft.rfft(kernel, n=n, axis=0)
    signal_f = jnp.fft.rfft(signal, n=n, axis=0)
    out = jnp.fft.irfft(jnp.einsum("fDd,fd->fD", kernel_f, signal_f), n=n, axis=0)
    return out[:T].astype(signal.dtype)


def parallel_states(
    A: Float[Array, "D D"],
    B: Float[Array, "D d"],
    head_weight: Float[Array, "D r"],
    head_bias: Float[Array, " D"],
    features: Float[Array, " r"],
    inputs: Float[Array, "T d"],
) -> Float[Array, "T D"]:
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
    driven = causal_convolution(powers[:, :, r + 1 :], input_differences(inputs))
    return free + driven
