"""Losses on predictions: plain MSE and the Gaussian negative log-likelihood."""

import jax.numpy as jnp
from jaxtyping import Array, Float


def mse(prediction: Float[Array, "..."], target: Float[Array, "..."]) -> Float[Array, ""]:
    """Mean squared error over all entries (no 1/2 factor: the paper's metric)."""
    return jnp.mean((prediction - target) ** 2)


def gaussian_nll(
    mean: Float[Array, "..."], std: Float[Array, "..."], target: Float[Array, "..."]
) -> Float[Array, ""]:
    """Mean of log(std) + (target - mean)^2 / (2 std^2), per channel, no constant term."""
    return jnp.mean(jnp.log(std) + 0.5 * ((target - mean) / std) ** 2)


def prediction_loss(prediction, target) -> Float[Array, ""]:
    """MSE for a mean prediction, Gaussian NLL for a `(mean, std)` pair."""
    if isinstance(prediction, tuple):
        return gaussian_nll(*prediction, target)
    return mse(prediction, target)
