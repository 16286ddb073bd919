r"""WARP's autoregressive rollouts through precomputed kernels instead of a scan over A.

Unrolled, WARP's recurrence is, for ANY input sequence (including one built from the
model's own fed-back predictions),

    theta_t = A^{t+o} theta_0 + sum_{s<=t} K_{t-s} delta_s,      K_k = A^k B,

where delta_s is the drive consumed at step s (`WARP.drive_input`: the input
difference, or the feature drive's output; written below as differences) and o the
power offset of the convention (clean: theta_t = A theta_{t-1} + B (u_t - u_{t-1}),
o = 0, delta_0 = 0; reference: step t consumes delta_t = v_t - out_{t-2}, o = 1).
With the hypernetwork's linear head theta_0 = W h(x_0) + b,

    A^{t+o} theta_0 = (A^{t+o} W) h(x_0) + A^{t+o} b,

so everything that involves A is a batch-shared tensor: `powers[t]` =
A^t [A^o W | A^o b | B] of shape (D, m), m = r + 1 + d, for t < n (a `lax.scan` of
products `X <- A X`, whose hand-written VJP forms dA as one large GEMM:
`matrix_powers_and_next`), with the kernel rows laid out as `kernel` of shape
(n d, D), row k d + j = (A^k B)[:, j]. Each sample keeps a shift register of its input
differences, hist_t = [delta_t, delta_{t-1}, ..., delta_0, 0, ...] of shape (n d,)
(delta_t is written at the front and the rest shifts by d), so that per step

    theta_t = powers[t] [h(x_0); 1; 0] + kernel^T hist_t,

and under `jax.vmap` over a batch of N samples the driven part is ONE
(N, n d) x (n d, D) GEMM per step (the free part one (N, m) x (m, D) GEMM); the
backward pass adds two GEMMs of each shape (the history's gradient, needed because the
history holds fed-back predictions, and the kernel's, accumulated over steps). No
per-step product with A remains.

Causality: hist_t is zero beyond its first (t + 1) d entries. The steps are split into
`stages` consecutive blocks of equal length; each block computes its own powers
(continuing from the previous block) and the block ending at step t_c uses a register
and kernel truncated to t_c d rows, so the driven GEMMs cost a fraction
(S + 1) / (2 S) of the full-length ones (S = number of stages: 1 -> 1, 8 -> 0.56). The
stages are a handful of `lax.scan`s with static shapes, not a loop over time.

Cost model (forward FLOPs; the training step with its backward is ~3x both forms;
N = batch, T ~ n steps, D = D_theta, d = the drive's size (data_size, or F with
`drive_features`), r = hypernetwork feature size, m = r + 1 + d, S = stages, one
multiply-add = 2 FLOPs; the decoder is the same in both and left out):

- scan (`warp_phys._rollout.rollout`):  2 N T D^2.
  Memory: the N T D states kept for the backward pass.
- kernel (this module):  2 T D^2 m  (powers, once per batch)
                       + 2 N T D m  (the free part A^t theta_0 per sample)
                       + 2 N d D (S + 1) / (2 S) T^2  (the driven GEMMs).
  Memory: T m D for the powers (and as much for their gradient), N d T^2 (S + 1)/(2 S)
  history residuals, and the N T D states (or none with `checkpoint=True`, which
  recomputes theta_t in the backward pass at the price of one more forward GEMM).

Dividing both by 2 T D, the kernel form is cheaper when

    D m + N m + N d T (S + 1) / (2 S)  <  N D,

i.e. when the batch amortises the per-batch powers (N > m, roughly) and the history
length T d is small against D_theta. `warp_phys._forecast.choose_ar_algorithm`
applies this rule. On the paper's MSD configuration (D 4898, T 256, d 2, r 128,
N 1024, S 8) it predicts a 4.7x smaller FLOP count than the scan; at D 1000, N 64 the
scan is cheaper.

Both forms give the same outputs and gradients to float32 rounding (tests compare
them); for a non-contractive A the rounding differences grow along the rollout, as
they would between any two orderings of the same sums.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._conventions import Convention, fed_back, forecast_entry, forecast_inputs, rollout_entry
from ._model import WARP
from ._recurrence import matrix_powers_and_next


def default_stages(steps: int) -> int:
    """The number of causal stages `kernel_rollout` uses by default: one per 32 steps,
    at most 8 (more stages save little and each adds a scan to compile)."""
    return max(1, min(8, steps // 32))


def stage_bounds(steps: int, stages: int) -> list[tuple[int, int]]:
    """`(start, stop)` of each causal stage: `stages` blocks of equal length (the last
    may be shorter) covering steps `0..steps-1`."""
    size = math.ceil(steps / max(1, min(stages, steps)))
    return [(start, min(steps, start + size)) for start in range(0, steps, size)]


def _head(model: WARP, offset: int) -> Float[Array, "D_theta m"]:
    """[A^o W | A^o b | B], shape `(D_theta, r + 1 + d)`: the columns whose powers the
    kernelised recurrence needs."""
    hyper = model.hypernetwork
    head = jnp.concatenate([hyper.weight, hyper.bias[:, None]], axis=1)  # (D, r + 1)
    if offset:
        head = model.A @ head
    return jnp.concatenate([head, model.B], axis=1)


def _staged_scan(body, carry, inputs, model: WARP, offset: int, stages: int, checkpoint):
    """`lax.scan` of `body(kernel_rows, (hist, carry), (input, power))` over the leading
    axis of `inputs`, where `power` = A^t [A^o W | A^o b | B] for step t.

    The steps run in causal stages; each stage computes its own block of powers
    (continuing from the previous stage's last one, so no large array is sliced), appends
    their B columns to the kernel, and scans with a register and kernel holding only
    the rows that can be non-zero (after step t: t + 1 blocks of d).
    """
    steps = jax.tree.leaves(inputs)[0].shape[0]
    d, D = model.B.shape[1], model.theta_size  # d: the drive's size
    X = _head(model, offset)
    hist = jnp.zeros((0,), X.dtype)
    kernel = jnp.zeros((0, D), X.dtype)
    outs = []
    for start, stop in stage_bounds(steps, stages):
        powers, X = matrix_powers_and_next(model.A, X, stop - start)  # (len, D, m)
        rows = jnp.swapaxes(powers[:, :, -d:], 1, 2).reshape((stop - start) * d, D)
        kernel = jnp.concatenate([kernel, rows])  # (A^k B)^T for k < stop
        hist = jnp.pad(hist, (0, stop * d - hist.shape[0]))

        def stage_body(state, inp, kernel=kernel):
            return body(kernel, state, inp)

        if checkpoint:
            stage_body = jax.checkpoint(stage_body)
        segment = jax.tree.map(lambda a, start=start, stop=stop: a[start:stop], inputs)
        (hist, carry), out = jax.lax.scan(stage_body, (hist, carry), (segment, powers))
        outs.append(out)
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


def _shift_in(hist, delta):
    """Write `delta` at the front of the register and drop its (zero) last block."""
    return jnp.concatenate([delta, hist[: hist.shape[0] - delta.shape[0]]])


def kernel_rollout(
    model: WARP,
    xs: Float[Array, "T data"],
    observed: Bool[Array, " T"],
    *,
    convention: Convention = "clean",
    noise_key: PRNGKeyArray | None = None,
    stages: int | None = None,
    checkpoint: bool = False,
):
    """`rollout(model, xs, observed, ...)` for a WARP model, through precomputed kernels.

    Same semantics and return values as `warp_phys.rollout` (both conventions, teacher
    forcing masks, stochastic feedback); theta_t is formed as
    `powers[t] [h; 1; 0] + kernel^T hist_t` instead of `A theta_{t-1} + B delta_t` (see
    the module docstring). Under `jax.vmap` over samples the powers and kernel are
    computed once per batch.

    **Arguments:**

    - `model`: a `WARP` model.
    - `xs`: shape `(T, data_size)`, T >= 2; rows where `observed` is False are never
      read (except `xs[0]`).
    - `observed`: shape `(T,)`, whether x_t is given to the model as its input.
    - `convention`: `"clean"` or `"reference"` (see `warp_phys._conventions`).
    - `noise_key`: feed back reparameterised samples (probabilistic decoders only).
    - `stages`: causal stages (default `default_stages(steps)`); 1 uses full-length
      registers throughout.
    - `checkpoint`: recompute theta_t in the backward pass instead of storing the
      `(T, D_theta)` states per sample (less memory, one more GEMM per step).

    **Returns:** as `rollout`: clean: predictions of x_1..x_{T-1}, shape
    `(T-1, data_size)`; reference: out_0..out_{T-1}, shape `(T, data_size)`; a
    `(mean, std)` pair for probabilistic decoders.
    """
    if not isinstance(model, WARP):
        raise TypeError(f"kernel_rollout needs a WARP model, got {type(model).__name__}")
    if (kind := model.transition.kind) != "dense":
        raise ValueError(f"the kernel algorithm needs a dense transition, not {kind!r} (use scan)")
    xs, observed = rollout_entry(model, xs, observed, convention, noise_key)
    T = xs.shape[0]
    x0 = xs[0]
    d = model.B.shape[1]  # the drive's size: data_size, or drive_features
    steps = T - 1 if convention == "clean" else T
    features = model.hypernetwork.features(x0)
    coefficients = jnp.concatenate(
        [features, jnp.ones((1,), features.dtype), jnp.zeros((d,), features.dtype)]
    )  # (m,): picks [W | b] out of powers[t]
    stages = default_stages(steps) if stages is None else int(stages)
    if stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages}")
    t_all = jnp.arange(steps)

    if convention == "clean":
        # step t = 0..T-2: u_t (x_0 at t = 0), theta_t, prediction of x_{t+1}
        obs = observed[:steps].at[0].set(True)

        def body(rows, state, inp):
            hist, (u_prev, fed) = state
            (t, x_t, is_observed), power = inp
            u = jnp.where(is_observed, x_t, fed)
            delta = model.drive_input(u, u_prev)
            hist = _shift_in(hist, jnp.where(t > 0, delta, 0.0))  # theta_0 = phi(x_0): no drive
            theta = coefficients @ power.T + hist @ rows
            out = model.decode(theta, t + 1, u)
            return (hist, (u, fed_back(out, noise_key, t + 1))), out

        init = (x0, x0)
        inputs = (t_all, xs[:steps], obs)
    else:
        # step t = 0..T-1: v_t, delta_t = v_t - out_{t-2}, out_t at tau_t + (tau_t - tau_prev)

        def body(rows, state, inp):
            hist, (h, p, t_prev) = state
            (t, x_t, is_observed), power = inp
            v = jnp.where(is_observed, x_t, h)
            hist = _shift_in(hist, model.drive_input(v, p))
            theta = coefficients @ power.T + hist @ rows
            out = model.decode(theta, 2 * t - t_prev, p)
            return (hist, (fed_back(out, noise_key, t), h, t)), out

        init = (x0, x0, t_all[0])
        inputs = (t_all, xs, observed)
    offset = 0 if convention == "clean" else 1
    return _staged_scan(body, init, inputs, model, offset, stages, checkpoint)


def kernel_reconstruct(
    model: WARP,
    context: Float[Array, "*batch L data"],
    horizon: int,
    *,
    convention: Convention = "clean",
    key: PRNGKeyArray | None = None,
    stages: int | None = None,
):
    """`reconstruct(model, context, horizon, ...)` for a WARP model through the kernels:
    the kernel rollout over the context followed by `horizon` fed-back steps.

    **Arguments:**

    - `model`: a `WARP` model.
    - `context`: the first L >= 1 observations `(L, data_size)`, or a batch
      `(N, L, data_size)` (vmapped; the kernels are computed once).
    - `horizon`: number of future steps (a Python int).
    - `convention`, `key`: as in `warp_phys.reconstruct`; `stages`: as in
      `kernel_rollout`.

    **Returns:** predictions of x_L..x_{L+horizon-1}, shape `(horizon, data_size)`
    (batched: `(N, horizon, data_size)`), or `(mean, std)`.
    """

    def one(context, key):
        xs, observed = forecast_inputs(context, horizon)
        L = context.shape[0]
        first = L - 1 if convention == "clean" else L  # index of the prediction of x_L
        outs = kernel_rollout(
            model, xs, observed, convention=convention, noise_key=key, stages=stages
        )
        return jax.tree.map(lambda a: a[first:], outs)

    return forecast_entry(model, context, horizon, one, convention=convention, key=key)
