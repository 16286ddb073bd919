"""Losses on predictions: plain MSE and the Gaussian negative log-likelihood."""

from typing import Literal, get_args

import jax.numpy as jnp
from jaxtyping import Array, Float


def mse(prediction: Float[Array, "..."], target: Float[Array, "..."]) -> Float[Array, ""]:
    """Mean squared error over all entries (no 1/2 factor: the paper's metric)."""
    return jnp.mean((prediction - target) ** 2)


def gaussian_nll(
    mean: Float[Array, "..."], std: Float[Array, "..."], target: Float[Array, "..."]
) -> Float[Array, ""]:
    """Mean of log(std) + (target - mean)^2 / (2 std^2), per channel, no constant term."""
    return jnp.mean(step_losses((mean, std), target))


def step_losses(prediction, target: Float[Array, "T data"]) -> Float[Array, " T"]:
    """The loss of each step, a mean over its channels: squared error for a mean
    prediction, the Gaussian NLL terms for a `(mean, std)` pair."""
    if isinstance(prediction, tuple):
        mean, std = prediction
        return jnp.mean(jnp.log(std) + 0.5 * ((target - mean) / std) ** 2, axis=-1)
    return jnp.mean((prediction - target) ** 2, axis=-1)


TimeReduction = Literal["mean", "log_mean"]
LOG_FLOOR = 1e-12  # keeps a perfectly predicted step finite in "log_mean"


def reduce_over_time(losses: Float[Array, "N T"], how: TimeReduction = "mean") -> Float[Array, ""]:
    """One loss from the per-step losses of a batch of sequences.

    `"mean"`: the mean of every entry (the paper's MSE). `"log_mean"`: the mean over
    the steps of the log of each step's batch mean (MSE only). Its gradient weighs a
    step by one over its MSE, so every step's relative error counts alike: with the
    plain mean the first steps of a sequence, where a model cannot yet know the
    trajectory's physics, carry nearly all of the loss (99 % in the first 25 of 256
    steps for a trained MSD-Zero model), and their noise drowns the forecast's signal.
    """
    if how == "mean":
        return jnp.mean(losses)
    if how == "log_mean":
        return jnp.mean(jnp.log(jnp.mean(losses, axis=0) + LOG_FLOOR))
    raise ValueError(f"time reduction must be one of {get_args(TimeReduction)}, got {how!r}")
