"""The hypernetwork phi giving the initial weights theta_0 = phi(x_0)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._activations import get_activation


class Hypernetwork(eqx.Module):
    """`theta_0 = W h(x_0) + b`: a small MLP `h` followed by a linear head.

    Keeping the head linear matters for speed: `A^t theta_0 = (A^t W) h(x_0) + A^t b`,
    so the parallel recurrence precomputes `A^t [W | b]` once per batch instead of
    `A^t theta_0` once per sample. With `depth = 0`, `h(x_0) = x_0`.

    The bias `b` starts at the root decoder's default initialisation, so at step 0
    theta_0 is a sensible root network; `W` starts small (scaled by `head_scale`).
    """

    hidden: tuple[eqx.nn.Linear, ...]
    weight: Float[Array, "D_theta features"]
    bias: Float[Array, " D_theta"]
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        theta_init: Float[Array, " D_theta"],
        *,
        width: int = 32,
        depth: int = 1,
        activation: str = "swish",
        head_scale: float = 0.1,
        key: PRNGKeyArray,
    ):
        get_activation(activation)
        if depth < 0 or width < 1:
            raise ValueError(f"hypernetwork needs depth >= 0 and width >= 1, got {depth}, {width}")
        keys = jax.random.split(key, depth + 1)
        sizes = [data_size] + [width] * depth
        self.hidden = tuple(
            eqx.nn.Linear(i, o, key=k)
            for k, i, o in zip(keys[:-1], sizes[:-1], sizes[1:], strict=True)
        )
        lim = head_scale / jnp.sqrt(sizes[-1])
        self.weight = jax.random.uniform(
            keys[-1], (theta_init.shape[0], sizes[-1]), minval=-lim, maxval=lim
        )
        self.bias = jnp.asarray(theta_init)
        self.activation = activation

    @property
    def feature_size(self) -> int:
        """r: the size of h(x_0), i.e. the number of columns of W."""
        return self.weight.shape[1]

    def features(self, x0: Float[Array, " data"]) -> Float[Array, " features"]:
        """h(x_0), of shape `(feature_size,)`."""
        act = get_activation(self.activation)
        h = x0
        for layer in self.hidden:
            h = act(layer(h))
        return h

    def __call__(self, x0: Float[Array, " data"]) -> Float[Array, " D_theta"]:
        """theta_0 = W h(x_0) + b, of shape `(D_theta,)`."""
        return self.weight @ self.features(x0) + self.bias
