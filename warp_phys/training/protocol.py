"""Training objectives and evaluation protocols, for any sequence model.

- Objectives: `"autoregressive"` (each input observed with probability `forcing_prob`,
  otherwise the fed-back prediction; optionally a reparameterised sample) and
  `"teacher_forced"` (every input observed: the non-autoregressive mode).
- Evaluation (spec section 4): `"forecast"`: observe a context of L steps, run free to
  the end, score the steps after the context; `"full"`: every input observed, score
  every predicted step (the LV repeat-copy protocol).

Inputs and targets may differ (LV repeat-copy: the input is the clipped sequence, the
target its repetition); a fed-back prediction stands in for an input.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._conventions import Convention, reference_context, teacher_forcing_mask
from .._forecast import ArAlgorithm, ar_rollout, reconstruct
from .._interface import mean_of
from .._rollout import rollout
from .losses import gaussian_nll, mse, reduce_over_time, step_losses

Objective = Literal["autoregressive", "teacher_forced"]
EvalProtocol = Literal["forecast", "full"]
OBJECTIVES = ("autoregressive", "teacher_forced")
EVAL_PROTOCOLS = ("forecast", "full")


def sequence_step_losses(
    model,
    inputs: Float[Array, "T data"],
    targets: Float[Array, "T data"],
    key: PRNGKeyArray,
    *,
    objective: Objective = "autoregressive",
    forcing_prob: float = 0.25,
    train_context: int = 1,
    train_context_max: int | None = None,
    convention: Convention = "clean",
    stochastic: bool = False,
    mode: str = "auto",
    ar_algorithm: ArAlgorithm = "auto",
    batch_size: int = 1,
    ts: Float[Array, " T"] | None = None,
) -> Float[Array, " T"]:
    """The loss of each predicted step of one sequence (squared error, or Gaussian NLL
    for probabilistic models, a mean over channels; observed at times `ts` on an
    irregular grid, for a time-aware model); `sequence_loss` is their mean.

    `ar_algorithm` picks how a WARP rollout forms its states (`"scan"`, `"kernel"`, or
    `"auto"`: the cheaper for `batch_size` sequences sharing the model, see
    `warp_phys._kernel_rollout`); both give the same loss to float32 rounding.

    The autoregressive objective observes the first `train_context` inputs (with
    `train_context_max`, a number drawn uniformly from `train_context..train_context_max`
    per sequence), then each with probability `forcing_prob`. The clean convention
    scores the predictions of `targets[1:]`; the reference one scores out_t against
    `targets[t]` for every t.
    `key` is split into the teacher-forcing coin and, with `stochastic=True`, the
    independent noise of the fed-back samples (spec section 8.10).
    """
    coin_key, noise_key = jax.random.split(key)
    T = inputs.shape[0]
    if objective == "teacher_forced":
        observed = jnp.ones(T, bool)
    elif objective == "autoregressive":
        observed = teacher_forcing_mask(
            coin_key, T, forcing_prob, train_context, train_context_max
        )
    else:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    noise = noise_key if stochastic and objective == "autoregressive" else None
    if convention == "clean" and objective == "teacher_forced":
        prediction = model(inputs, mode) if ts is None else model(inputs, mode, ts)
    else:
        prediction = ar_rollout(
            model,
            inputs,
            observed,
            ar_algorithm=ar_algorithm,
            batch_size=batch_size,
            convention=convention,
            noise_key=noise,
            ts=ts,
        )
    start = 1 if convention == "clean" else 0
    return step_losses(prediction, targets[start:])


def sequence_loss(model, inputs, targets, key, **options) -> Float[Array, ""]:
    """Loss (MSE, or Gaussian NLL for probabilistic models) of one sequence: the mean
    of `sequence_step_losses` (same arguments)."""
    return jnp.mean(sequence_step_losses(model, inputs, targets, key, **options))


def batch_loss(
    model, inputs, targets, key, ts=None, *, time_reduction: str = "mean", **options
) -> Float[Array, ""]:
    """The training loss of a batch `(N, T, data_size)` (times `ts` `(N, T)`): the
    per-step losses of `sequence_step_losses` reduced by `reduce_over_time`."""
    options.setdefault("batch_size", inputs.shape[0])
    keys = jax.random.split(key, inputs.shape[0])
    losses = jax.vmap(lambda x, y, k, t: sequence_step_losses(model, x, y, k, ts=t, **options))
    return reduce_over_time(losses(inputs, targets, keys, ts), time_reduction)


def predict(
    model,
    inputs: Float[Array, "N T data"],
    *,
    protocol: EvalProtocol = "forecast",
    context: int = 1,
    convention: Convention = "clean",
    mode: str = "auto",
    ar_algorithm: ArAlgorithm = "auto",
    ts: Float[Array, "N T"] | None = None,
    refine: int | None = None,
):
    """Predictions under an evaluation protocol, and the first step they predict.

    **Arguments:**

    - `inputs`: `(N, T, data_size)`; with `"forecast"` only the first `context` steps
      are read.
    - `protocol`: `"forecast"` or `"full"` (see the module docstring).
    - `context`: L, the observed steps (`"forecast"` only). The reference convention
      cuts the context where tau_t <= L / T, as the reference code did.
    - `mode`, `ar_algorithm`: how WARP's states are formed (see `reconstruct`); the
      forecast uses the kernelised recurrence when `ar_algorithm` says so or, with
      `"auto"`, when its cost model finds it cheaper for the N trajectories.
    - `ts`: the time stamps `(N, T)` of irregularly sampled inputs (time-aware models).
    - `refine`: K refinement steps of a physical prior before the forecast (see
      `reconstruct`; `"forecast"` only).

    **Returns:** `(prediction, start)`: the mean `(N, T - start, data_size)` (or a
    `(mean, std)` pair) predicting steps `start..T-1`, and `start` (a Python int).
    """
    N, T, _ = inputs.shape
    if protocol == "full":
        if convention == "clean" and ts is not None:
            return jax.vmap(lambda x, t: model(x, mode, t))(inputs, ts), 1
        if convention == "clean":
            return jax.vmap(lambda x: model(x, mode))(inputs), 1
        observed = jnp.ones(T, bool)
        return jax.vmap(lambda x: rollout(model, x, observed, convention=convention))(inputs), 0
    if protocol != "forecast":
        raise ValueError(f"protocol must be one of {EVAL_PROTOCOLS}, got {protocol!r}")
    if not 1 <= context < T:
        raise ValueError(
            f"context must be in [1, {T - 1}] for sequences of {T} steps, got {context}"
        )
    start = reference_context(T, context) if convention == "reference" else context
    prediction = reconstruct(
        model,
        inputs[:, :start],
        T - start,
        mode=mode,
        convention=convention,
        ar_algorithm=ar_algorithm,
        ts=ts,
        refine=refine,
    )
    return prediction, start


@eqx.filter_jit
def protocol_mse(
    model,
    inputs,
    targets,
    *,
    protocol="forecast",
    context=1,
    convention="clean",
    ar_algorithm="auto",
    ts=None,
):
    """MSE of the mean prediction under `predict`'s protocol, in the data's units."""
    prediction, start = predict(
        model,
        inputs,
        protocol=protocol,
        context=context,
        convention=convention,
        ar_algorithm=ar_algorithm,
        ts=ts,
    )
    return mse(mean_of(prediction), targets[:, start:])


def forecast_mse(model, trajectories, context: int, *, convention: Convention = "clean"):
    """MSE of the forecast from the first `context` steps over the rest of each
    trajectory `(N, T, data_size)` (the paper's evaluation protocol)."""
    trajectories = jnp.asarray(trajectories)
    return protocol_mse(
        model,
        trajectories,
        trajectories,
        protocol="forecast",
        context=context,
        convention=convention,
    )


def prediction_metrics(prediction, targets, start: int, normalizer=None) -> dict:
    """Metrics of a protocol's predictions against raw `targets` `(N, T, d)`.

    `prediction` is in the model's (normalised) units; `normalizer` maps it back.
    Returns `mse` (raw units, no 1/2), `mse_normalized` (the model's units), for
    probabilistic models `nll` (raw units, no constant term), all Python floats, and
    `diverged`: the number of trajectories whose prediction has a NaN or inf. A diverged
    trajectory makes `mse` non-finite (it is counted, not dropped); `mse_finite` then
    gives the MSE over the others, so a few blow-ups do not hide how the rest did.
    """
    target = jnp.asarray(targets)[:, start:]
    mean = mean_of(prediction)
    out = {}
    if normalizer is not None:
        out["mse_normalized"] = float(mse(mean, normalizer.apply(target)))
        mean = normalizer.invert(mean)
    out["mse"] = float(mse(mean, target))
    finite = jnp.all(jnp.isfinite(mean), axis=tuple(range(1, mean.ndim)))
    out["diverged"] = int(finite.size - jnp.sum(finite))
    if 0 < out["diverged"] < finite.size:
        out["mse_finite"] = float(mse(mean[finite], target[finite]))
    if isinstance(prediction, tuple):
        std = prediction[1] * (1.0 if normalizer is None else normalizer.std)
        out["nll"] = float(gaussian_nll(mean, std, target))
    return out
