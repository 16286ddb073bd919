"""Turning user data into validated `(N, T, data_size)` float32 arrays."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def as_trajectories(data, name: str = "data") -> np.ndarray:
    """Accept an array `(N, T, d)` or an object with a `.y` attribute (a `systems.Dataset`)
    and return a float32 numpy array, refusing NaN/inf with the offending index."""
    y = np.asarray(getattr(data, "y", data), dtype=np.float32)
    if y.ndim != 3:
        raise ValueError(f"{name} must have shape (N, T, data_size), got {y.shape}")
    if y.shape[0] < 1 or y.shape[1] < 2:
        raise ValueError(f"{name} needs at least 1 trajectory of 2 steps, got shape {y.shape}")
    bad = np.argwhere(~np.isfinite(y))
    if bad.size:
        n, t, c = bad[0]
        raise ValueError(
            f"{name} contains {len(bad)} non-finite value(s); first at trajectory {n}, "
            f"time step {t}, channel {c}"
        )
    return y


class Normalizer(eqx.Module):
    """Per-channel standardisation `(x - mean) / std`, fitted on training data only."""

    mean: Float[Array, " data"]
    std: Float[Array, " data"]

    @classmethod
    def fit(cls, y: Float[Array, "N T data"]) -> "Normalizer":
        y = jnp.asarray(y)
        std = jnp.std(y, axis=(0, 1))
        return cls(jnp.mean(y, axis=(0, 1)), jnp.where(std > 0, std, 1.0))

    def apply(self, y):
        return (y - self.mean) / self.std

    def invert(self, y):
        return y * self.std + self.mean
