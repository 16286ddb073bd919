"""Forecasts and rollouts with the algorithm chosen: the plain scan
(`warp_phys._rollout`, every sequence model) or WARP's precomputed kernels
(`warp_phys._kernel_rollout`), by the cost model of the latter's docstring.

This module sits above both mechanisms: it imports them, they never import it.
"""

from typing import Literal

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._conventions import Convention, check_horizon
from ._held_rollout import held
from ._interface import AbstractSequenceModel
from ._kernel_rollout import default_stages, kernel_reconstruct, kernel_rollout, stage_bounds
from ._model import WARP
from ._refine import check_steps, refined_forecast
from ._rollout import rollout, scan_reconstruct

ArAlgorithm = Literal["auto", "kernel", "scan"]
AR_ALGORITHMS = ("auto", "kernel", "scan")


def ar_flops(
    algorithm: Literal["kernel", "scan"],
    T: int,
    d: int,
    D: int,
    r: int,
    batch: int,
    stages: int | None = None,
) -> float:
    """Forward FLOPs of one autoregressive rollout of a batch (the cost model of
    `warp_phys._kernel_rollout`; a training step costs about three times this in both
    algorithms).

    **Arguments:**

    - `algorithm`: `"kernel"` or `"scan"`.
    - `T`: steps of the rollout; `d`: data size; `D`: D_theta; `r`: the
      hypernetwork's feature size; `batch`: samples sharing one model.
    - `stages`: causal stages of the kernel form (default `default_stages(T)`).

    **Returns:** the FLOP count, a Python float.
    """
    if algorithm == "scan":
        return 2.0 * batch * T * D * D
    if algorithm != "kernel":
        raise ValueError(f"algorithm must be 'kernel' or 'scan', got {algorithm!r}")
    m = r + 1 + d
    bounds = stage_bounds(T, default_stages(T) if stages is None else stages)
    history = sum((stop - start) * stop for start, stop in bounds)  # sum_t (register blocks)
    return 2.0 * T * D * D * m + 2.0 * batch * T * D * m + 2.0 * batch * d * D * history


def choose_ar_algorithm(T: int, d: int, D: int, r: int, batch: int) -> Literal["kernel", "scan"]:
    """`"kernel"` when its FLOP count (`ar_flops`) is below the scan's, else `"scan"`.

    **Arguments:** `T` steps, `d` data size, `D` D_theta, `r` hypernetwork feature
    size, `batch` samples per model evaluation (the precompute is shared by them).

    **Returns:** `"kernel"` or `"scan"`.
    """
    kernel = ar_flops("kernel", T, d, D, r, batch)
    return "kernel" if kernel < ar_flops("scan", T, d, D, r, batch) else "scan"


def resolve_ar_algorithm(
    model, ar_algorithm: ArAlgorithm, steps: int, batch: int
) -> Literal["kernel", "scan"]:
    """The autoregressive algorithm to run: `ar_algorithm` itself unless `"auto"`, which
    is `choose_ar_algorithm`'s pick for a WARP model with a dense A (`steps` steps,
    `batch` samples sharing the powers) and `"scan"` for any other model. A WARP with
    `free_run="hold"` always gets `"scan"`, whose entry (`rollout`, `scan_reconstruct`)
    hands it to `warp_phys._held_rollout`."""
    if ar_algorithm not in AR_ALGORITHMS:
        raise ValueError(f"ar_algorithm must be one of {AR_ALGORITHMS}, got {ar_algorithm!r}")
    if held(model):
        return "scan"  # the kernel form precomputes an advancing state's powers
    if ar_algorithm != "auto":
        return ar_algorithm
    if not isinstance(model, WARP) or model.transition.kind != "dense":
        return "scan"  # a structured A's step is far cheaper than D^2: the scan wins
    r = model.hypernetwork.feature_size
    return choose_ar_algorithm(steps, model.B.shape[1], model.theta_size, r, batch)


def ar_rollout(
    model,
    xs: Float[Array, "T data"],
    observed: Bool[Array, " T"],
    *,
    ar_algorithm: ArAlgorithm = "auto",
    batch_size: int = 1,
    convention: Convention = "clean",
    noise_key: PRNGKeyArray | None = None,
    ts: Float[Array, " T"] | None = None,
):
    """`rollout` with the autoregressive algorithm chosen: `"scan"` (the plain
    recurrence, any sequence model), `"kernel"` (WARP only, `kernel_rollout`) or
    `"auto"` (the kernel form for WARP when `choose_ar_algorithm` finds it cheaper for
    `batch_size` samples sharing the model, e.g. the vmapped batch of a training step).
    Time stamps `ts` (irregular grids, time-aware models) always scan.

    **Returns:** exactly what `rollout` returns.
    """
    ar_algorithm = resolve_ar_algorithm(model, ar_algorithm, len(xs), batch_size)
    if ar_algorithm == "kernel" and ts is None:
        return kernel_rollout(model, xs, observed, convention=convention, noise_key=noise_key)
    return rollout(model, xs, observed, convention=convention, noise_key=noise_key, ts=ts)


def reconstruct(
    model: AbstractSequenceModel,
    context: Float[Array, "*batch L data"],
    horizon: int,
    *,
    mode: str = "auto",
    convention: Convention = "clean",
    key: PRNGKeyArray | None = None,
    ar_algorithm: ArAlgorithm = "auto",
    ts: Float[Array, "*batch L+horizon"] | None = None,
    refine: int | None = None,
):
    """Forecast `horizon` steps after an observed context, feeding predictions back.

    **Arguments:**

    - `context`: the first L >= 1 observations, shape `(L, data)` (or a batch
      `(N, L, data)`, which is vmapped).
    - `horizon`: number of future steps (a Python int, static under `jit`).
    - `mode`: how WARP's theta is computed over the context ("auto",
      "parallel" or "sequential"; other models scan).
    - `convention`: `"clean"` or `"reference"` indexing (see `warp_phys._conventions`).
    - `key`: feed back samples instead of means (probabilistic models; a batch uses
      one key per trajectory, split from it).
    - `ar_algorithm`: how WARP forms its states: `"scan"` (the recurrence above),
      `"kernel"` (`kernel_reconstruct`: powers of A precomputed once for the batch;
      `mode` does not apply) or `"auto"`: the kernel when `choose_ar_algorithm`'s cost
      model finds it cheaper for L + horizon steps and the N trajectories of the batch,
      as in training. Both agree to float32 rounding; other models always scan.
    - `ts`: for a time-aware model on an irregular grid, the times of the context and of
      the steps to forecast, `(L + horizon,)` (batched: `(N, L + horizon)`); the
      forecast is made at those times (scan only, clean convention).
    - `refine`: K >= 1 fits the physical prior's parameters to the context by K
      Levenberg-Marquardt iterations, started from WARP's read-out, and forecasts with the
      prior alone, its parameters fixed (`warp_phys._refine`; a WARP model with a
      `PhysicalPrior` decoder, regular grid, clean convention). None or 0: no refinement.

    **Returns:** predictions of x_L..x_{L+horizon-1}, shape `(horizon, data)`
    (batched: `(N, horizon, data)`), or `(mean, std)` for probabilistic models.
    """
    if refine is not None and check_steps(refine) > 0:
        check_horizon(horizon)
        if ts is not None or convention != "clean" or key is not None:
            raise ValueError("refine works on a regular grid in the clean convention, without key")
        return refined_forecast(model, context, horizon, steps=refine, mode=mode)
    if ts is None and _forecast_algorithm(model, context, horizon, ar_algorithm) == "kernel":
        return kernel_reconstruct(model, context, horizon, convention=convention, key=key)
    return scan_reconstruct(
        model, context, horizon, mode=mode, convention=convention, key=key, ts=ts
    )


def _forecast_algorithm(model, context, horizon, ar_algorithm) -> str:
    """`"kernel"` or `"scan"` for `reconstruct` (a malformed context scans, and its
    entry checks name the problem)."""
    check_horizon(horizon)
    shape = jnp.shape(context)
    if len(shape) not in (2, 3) or shape[-2] < 1:
        return "scan"
    batch = shape[0] if len(shape) == 3 else 1
    return resolve_ar_algorithm(model, ar_algorithm, shape[-2] + horizon, batch)
