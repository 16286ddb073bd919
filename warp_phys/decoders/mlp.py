"""The default root network: a small MLP `[tau, x_prev] -> y` over flat weights."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import get_activation
from ._base import AbstractDecoder, register_decoder


def _uniform_layer(key, fan_in: int, fan_out: int) -> dict[str, Array]:
    # Equinox's (and the reference's) default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    wkey, bkey = jax.random.split(key)
    lim = 1.0 / jnp.sqrt(fan_in)
    return {
        "weight": jax.random.uniform(wkey, (fan_out, fan_in), minval=-lim, maxval=lim),
        "bias": jax.random.uniform(bkey, (fan_out,), minval=-lim, maxval=lim),
    }


def mlp_init(key: PRNGKeyArray, sizes: list[int]) -> tuple[dict[str, Array], ...]:
    """Parameters of an MLP with layer sizes `sizes` (input first), as a tuple of
    `{"weight": (out, in), "bias": (out,)}` dicts."""
    keys = jax.random.split(key, len(sizes) - 1)
    layers = zip(keys, sizes[:-1], sizes[1:], strict=True)
    return tuple(_uniform_layer(k, i, o) for k, i, o in layers)


def mlp_apply(params, x: Float[Array, " in"], activation) -> Float[Array, " out"]:
    """Apply the MLP `params` (from `mlp_init`) to `x`; no activation after the last layer."""
    *hidden, last = params
    for layer in hidden:
        x = activation(layer["weight"] @ x + layer["bias"])
    return last["weight"] @ x + last["bias"]


def apply_final_activation(y: Array, final_activation: str | float | None) -> Array:
    """`None`: identity; a float `c`: clip to `[-c, c]`; a string: a named activation."""
    if final_activation is None:
        return y
    if isinstance(final_activation, int | float):
        return jnp.clip(y, -final_activation, final_activation)
    return get_activation(final_activation)(y)


@register_decoder("mlp")
class MLPDecoder(AbstractDecoder):
    """Root MLP with `depth` hidden layers of `width` units (spec section 1.2).

    Input: `[tau]`, or `[tau, x_prev]` when `input_prev=True` (the paper's
    `input_prev_data`). Output: the mean of shape `(data_size,)`, or `(mean, std)` with
    `std = max(softplus(raw), std_lower_bound)` when `probabilistic=True`.
    """

    takes_size: ClassVar[bool] = True
    data_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    input_prev: bool = eqx.field(static=True)
    final_activation: str | float | None = eqx.field(static=True)
    std_head: bool = eqx.field(static=True)
    std_lower_bound: float = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        width: int = 32,
        depth: int = 2,
        activation: str = "swish",
        input_prev: bool = True,
        final_activation: str | float | None = None,
        probabilistic: bool = False,
        std_lower_bound: float = 1e-4,
    ):
        if data_size < 1 or width < 1 or depth < 0:
            raise ValueError(
                f"mlp decoder needs data_size >= 1, width >= 1, depth >= 0; "
                f"got {data_size}, {width}, {depth}"
            )
        get_activation(activation)  # fail early on an unknown name
        self.data_size = data_size
        self.width = width
        self.depth = depth
        self.activation = activation
        self.input_prev = input_prev
        self.final_activation = final_activation
        self.std_head = probabilistic
        self.std_lower_bound = std_lower_bound

    @property
    def probabilistic(self) -> bool:
        return self.std_head

    @property
    def layer_sizes(self) -> list[int]:
        in_size = 1 + (self.data_size if self.input_prev else 0)
        out_size = self.data_size * (2 if self.std_head else 1)
        return [in_size] + [self.width] * self.depth + [out_size]

    def init_params(self, key):
        return mlp_init(key, self.layer_sizes)

    def __call__(self, params, tau, x_prev):
        tau = jnp.reshape(tau, (1,))
        inputs = jnp.concatenate([tau, x_prev]) if self.input_prev else tau
        out = mlp_apply(params, inputs, get_activation(self.activation))
        mean = apply_final_activation(out[: self.data_size], self.final_activation)
        if not self.std_head:
            return mean
        std = jnp.maximum(jax.nn.softplus(out[self.data_size :]), self.std_lower_bound)
        return mean, std
