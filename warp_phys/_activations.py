"""Named activation functions, so models can be rebuilt from a JSON config."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "swish": jax.nn.swish,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
    "sin": jnp.sin,
    "elu": jax.nn.elu,
    "identity": lambda x: x,
}


def get_activation(name: str) -> Callable:
    """Return the activation function called `name`; `ValueError` if unknown."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; known activations: {known}") from None
