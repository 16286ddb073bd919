"""Losses and metrics of the tasks, for any sequence model (WARP, GRU, LSTM,
Transformer) through its teacher-forced `__call__`.

- Classification (spec section 1.5): cross-entropy on the logits after the last step;
  for WARP the root's output at that step *is* the logits (`WARP(output_size=classes)`).
- Masked reconstruction (completion): an autoregressive rollout with teacher forcing,
  scored on `loss_steps` random steps only (the spec's `nb_recons_loss_steps`).
- In-context regression: the y channel of the output after every token.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.stats import norm
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._conventions import teacher_forcing_mask
from .._forecast import ar_rollout
from .._interface import mean_of
from ..training.protocol import predict
from ._data import DIGIT_LEVELS


def step_outputs(model, xs: Float[Array, "T data"]) -> Float[Array, "T out"]:
    """Output t of `model` after reading `xs[:t + 1]`, for t = 0..T-1 (the mean of a
    probabilistic model): the teacher-forced call on `xs` with its last step repeated
    as a placeholder target. For WARP, output t is the root with weights theta_t at
    tau_{t+1} (its `seq_len` should be T + 1, so the last is decoded at tau = 1)."""
    return mean_of(model(jnp.concatenate([xs, xs[-1:]])))


def class_logits(model, xs: Float[Array, "T data"], length: Int[Array, ""]):
    """The logits `(classes,)` after the sequence's own last step `length - 1`."""
    return step_outputs(model, xs)[length - 1]


def _batch_logits(model, xs, lengths) -> Float[Array, "N classes"]:
    return jax.vmap(lambda x, n: class_logits(model, x, n))(xs, lengths)


_jitted_logits = eqx.filter_jit(_batch_logits)


def classification_loss(model, batch, key=None) -> Float[Array, ""]:
    """Mean cross-entropy of the last-step logits; `batch` is `(xs (N, T, C), lengths
    (N,), labels (N,))`. `key` is not used (the loss is deterministic)."""
    xs, lengths, labels = batch
    logits = _batch_logits(model, xs, lengths)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def accuracy(model, batch) -> float:
    """Share of `batch` (as `classification_loss`'s) whose argmax logit is the label."""
    xs, lengths, labels = (jnp.asarray(a) for a in batch)
    logits = _jitted_logits(model, xs, lengths)
    return float(jnp.mean(jnp.argmax(logits, -1) == labels))


def masked_reconstruction_loss(
    model,
    batch,
    key: PRNGKeyArray,
    *,
    forcing_prob: float = 0.15,
    loss_steps: int = 32,
    context: int = 1,
) -> Float[Array, ""]:
    """MSE of an autoregressive rollout (the first `context` inputs observed, then each
    with probability `forcing_prob`, else the fed-back prediction: the completion's
    protocol) on `loss_steps` random predicted steps per sequence. `batch` is
    `(xs (N, T, d),)`."""
    (xs,) = batch
    N, T, _ = xs.shape
    steps = min(loss_steps, T - 1)

    def one(x, k):
        coin, pick = jax.random.split(k)
        prediction = mean_of(
            ar_rollout(model, x, teacher_forcing_mask(coin, T, forcing_prob, context), batch_size=N)
        )
        scored = jax.random.choice(pick, T - 1, (steps,), replace=False)
        return jnp.mean((prediction[scored] - x[1:][scored]) ** 2)

    return jnp.mean(jax.vmap(one)(xs, jax.random.split(key, N)))


@eqx.filter_jit
def completion(model, xs: Float[Array, "N T d"], context: int) -> Float[Array, "N H d"]:
    """The forecast of steps `context..T-1` from the first `context` steps."""
    prediction, _ = predict(model, jnp.asarray(xs), protocol="forecast", context=context)
    return mean_of(prediction)


def bits_per_dim(prediction, target, sigma: float, levels: int = DIGIT_LEVELS) -> float:
    """Bits per pixel of `target` in [0, 1] (`levels` grey levels) under a discretised
    Gaussian of mean `prediction` and std `sigma`: the mass of each level's bin of width
    1 / (levels - 1), the end bins open to -inf / +inf. A uniform guess gives
    log2(levels) bits."""
    half = 0.5 / (levels - 1)
    t, m = jnp.asarray(target), jnp.asarray(prediction)
    upper = jnp.where(t >= 1 - half, 1.0, norm.cdf((t + half - m) / sigma))
    lower = jnp.where(t <= half, 0.0, norm.cdf((t - half - m) / sigma))
    mass = jnp.maximum(upper - lower, 1e-12)
    return float(-jnp.mean(jnp.log(mass)) / math.log(2.0))


def icl_predictions(model, tokens: Float[Array, "N P token"]) -> Float[Array, "N P"]:
    """The y channel of the output after each token: the prediction of y_i from i
    pairs and x_i."""
    return jax.vmap(lambda x: step_outputs(model, x)[:, -1])(tokens)


_jitted_icl = eqx.filter_jit(icl_predictions)


def icl_loss(model, batch, key=None) -> Float[Array, ""]:
    """MSE of `icl_predictions` over all positions; `batch` is `(tokens, ys)`."""
    tokens, ys = batch
    return jnp.mean((icl_predictions(model, tokens) - ys) ** 2)


def icl_errors(model, tokens, ys) -> np.ndarray:
    """MSE `(pairs,)` of the prediction of y_i after i context pairs."""
    predictions = _jitted_icl(model, tokens)
    return np.asarray(jnp.mean((predictions - ys) ** 2, axis=0))
