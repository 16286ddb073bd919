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
    return check_finite(y, name)


def check_finite(y: np.ndarray, name: str = "data") -> np.ndarray:
    """`y` `(N, T, d)` unchanged, or a `ValueError` naming the first NaN/inf's index."""
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

    @classmethod
    def identity(cls, data_size: int) -> "Normalizer":
        """The normaliser that changes nothing (for runs in raw units)."""
        return cls(jnp.zeros(data_size, jnp.float32), jnp.ones(data_size, jnp.float32))

    def apply(self, y):
        """`(y - mean) / std`, broadcast over the last axis."""
        return (y - self.mean) / self.std

    def invert(self, y):
        """`y * std + mean`: back to raw units."""
        return y * self.std + self.mean

    def to_dict(self) -> dict:
        """JSON-able `{"mean": [...], "std": [...]}`."""
        return {"mean": np.asarray(self.mean).tolist(), "std": np.asarray(self.std).tolist()}

    @classmethod
    def from_dict(cls, stats: dict) -> "Normalizer":
        """Inverse of `to_dict`."""
        try:
            mean = jnp.asarray(stats["mean"], jnp.float32)
            std = jnp.asarray(stats["std"], jnp.float32)
        except (KeyError, TypeError) as err:
            raise ValueError(f"normaliser statistics need 'mean' and 'std' lists: {err}") from None
        if mean.ndim != 1 or mean.shape != std.shape or not bool(jnp.all(std > 0)):
            raise ValueError("normaliser statistics must be 1-D, of equal length, std > 0")
        return cls(mean, std)


def as_pairs(data, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """`(inputs, targets)` as validated float32 arrays of the same shape `(N, T, d)`.

    `data` is an array (inputs = targets), a pair `(inputs, targets)`, or a
    `systems.Dataset` (inputs = `dataset.inputs`, which differs from `dataset.y` for
    tasks such as the LV repeat-copy; targets = `dataset.y`).
    """
    if isinstance(data, tuple) and len(data) == 2:
        inputs, targets = data
    elif hasattr(data, "y"):
        inputs, targets = getattr(data, "inputs", data.y), data.y
    else:
        inputs = targets = data
    same = inputs is targets
    targets = as_trajectories(targets, name if same else f"{name} targets")
    inputs = targets if same else as_trajectories(inputs, f"{name} inputs")
    if inputs.shape != targets.shape:
        raise ValueError(
            f"{name}: inputs {inputs.shape} and targets {targets.shape} must have the same shape"
        )
    return inputs, targets
