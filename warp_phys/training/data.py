"""Turning user data into validated `(N, T, data_size)` float32 arrays."""

import dataclasses
import warnings

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


def _float32_stats(mean, std, source: str, *, constant_ok: bool):
    """`(mean, std)` `(data,)` as float32 device arrays; a `ValueError` naming the first
    channel whose mean is not finite or whose std is not finite and > 0 in float32
    (with `constant_ok`, a std of 0 becomes 1: a constant channel is left as it is)."""
    try:
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: mean and std must be lists of numbers: {err}") from None
    if mean.ndim != 1 or mean.shape != std.shape:
        raise ValueError(
            f"{source}: mean and std must be 1-D and of equal length, got shapes "
            f"{mean.shape} and {std.shape}"
        )
    with np.errstate(over="ignore"):  # beyond float32: inf, refused below
        mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    if constant_ok:
        std32 = np.where(std32 == 0, np.float32(1), std32)
    for name, raw, values in (("mean", mean, mean32), ("std", std, std32)):
        bad = ~np.isfinite(values) | ((values <= 0) if name == "std" else False)
        if bad.any():
            channel = int(np.argmax(bad))
            need = "finite and > 0" if name == "std" else "finite"
            raise ValueError(
                f"{source}: the {name} of channel {channel} is {raw[channel]:g}; it must be "
                f"{need} in float32"
            )
    return jnp.asarray(mean32), jnp.asarray(std32)


class Normalizer(eqx.Module):
    """Per-channel standardisation `(x - mean) / std`, fitted on training data only."""

    mean: Float[Array, " data"]
    std: Float[Array, " data"]

    @classmethod
    def fit(cls, y: Float[Array, "N T data"]) -> "Normalizer":
        """The mean and std of each channel of `y` over trajectories and time, computed
        in float64 (a float32 sum of squares overflows for values near 1e19); a constant
        channel gets std 1. A `ValueError` names a channel whose statistics are not
        finite in float32."""
        y = np.asarray(y, np.float64)
        with np.errstate(over="ignore"):  # beyond float64: inf, refused as a statistic
            mean, std = y.mean(axis=(0, 1)), y.std(axis=(0, 1))
        return cls(*_float32_stats(mean, std, "normaliser fit", constant_ok=True))

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
    def from_dict(cls, stats: dict, source: str = "normaliser statistics") -> "Normalizer":
        """Inverse of `to_dict`: a `ValueError` (naming `source` and the channel) unless
        every mean is finite and every std finite and > 0."""
        if not isinstance(stats, dict) or not {"mean", "std"} <= set(stats):
            raise ValueError(f"{source}: needs 'mean' and 'std' lists")
        return cls(*_float32_stats(stats["mean"], stats["std"], source, constant_ok=False))


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


def grid_times(data, model, name: str = "data", times=None) -> np.ndarray | None:
    """The per-trajectory time stamps `(N, T)` float32 a time-aware model runs on, or
    None on a regular grid.

    `times` when given, else those of a `systems.Dataset` whose trajectories have their
    own times (`extras["t"]`, e.g. `msd_irregular` or your own files). They go to a
    time-aware model (`WARP(transition="continuous")`); any other model ignores them with
    a warning, as it assumes equal steps. Times must be finite and strictly increasing."""
    if times is None:
        times = (getattr(data, "extras", None) or {}).get("t")
    if times is None:
        return None
    if not getattr(model, "time_aware", False):
        warnings.warn(
            f"{name} is sampled on an irregular time grid but this {type(model).__name__} "
            "is not time-aware and assumes equal steps: its time stamps are ignored "
            "(use WARP(transition='continuous') / --transition continuous)",
            stacklevel=3,
        )
        return None
    t = np.asarray(times, np.float32)
    shape = np.shape(getattr(data, "y", data[0] if isinstance(data, tuple) else data))
    if t.shape != shape[:2]:
        raise ValueError(f"{name}: times {t.shape} do not match trajectories {shape}")
    if not np.all(np.isfinite(t)) or not np.all(np.diff(t, axis=1) > 0):
        raise ValueError(f"{name}: time stamps must be finite and strictly increasing")
    return t


def mean_step(times: np.ndarray) -> float:
    """The mean sampling interval of trajectories with times `(N, T)` (the
    `time_step` a time-aware WARP counts steps in)."""
    times = np.asarray(times, np.float64)
    return float(np.mean((times[:, -1] - times[:, 0]) / (times.shape[1] - 1)))


IN_MEMORY = "<in memory>"  # `RunConfig.data` of a run trained on arrays given in Python


def _unnamed(channels) -> bool:
    return channels is None or list(channels) == [f"x{i}" for i in range(len(channels))]


def match_channels(dataset, channels: list[str] | None, data_size: int, what: str):
    """`dataset.y` `(N, T, data_size)` with its channels in the order of `channels` (the
    run's names). Unnamed channels (`x0, x1, ...`) are matched by position only.

    Raises `ValueError` when the channel count or the names do not match."""
    y = dataset.y
    own = dataset.config.get("channels") if isinstance(dataset.config, dict) else None
    if y.shape[-1] != data_size:
        raise ValueError(
            f"{what} has {y.shape[-1]} channel(s) ({', '.join(own or [])}), the run expects "
            f"{data_size}{'' if _unnamed(channels) else ' (' + ', '.join(channels) + ')'}; "
            f"trajectories must have shape (N, T, {data_size})"
        )
    if _unnamed(own) or _unnamed(channels) or list(own) == list(channels):
        return y
    if sorted(own) != sorted(channels):
        raise ValueError(
            f"{what} has channels {', '.join(own)}, the run was trained on {', '.join(channels)}"
        )
    return y[..., [own.index(c) for c in channels]]


def data_splits(config, data=None, val_data=None):
    """The training and validation `systems.Dataset`s of a run on user data.

    **Arguments:** `config` a `RunConfig` with `data` (a file; `val_data` optional) or,
    when `data` is given here, arrays `(N, T, D)` / `Dataset`s in memory. Without a
    validation set, `config.val_fraction` of the trajectories are carved out with a
    permutation seeded by `config.data_seed` (default `config.seed`).

    **Returns:** `(train, val)`.
    """
    import systems

    def as_dataset(value, name):
        if isinstance(value, systems.Dataset):
            return value
        return systems.from_arrays(value, name=name, source=f"{name} (in memory)")

    if data is not None:
        train = as_dataset(data, "data")
        val = None if val_data is None else as_dataset(val_data, "val_data")
    else:
        train = systems.load(config.data)
        val = None if config.val_data is None else systems.load(config.val_data)
    if val is None:
        seed = config.seed if config.data_seed is None else config.data_seed
        return systems.carve_validation(train, config.val_fraction, seed)
    names = train.config.get("channels")
    val_y = match_channels(val, names, train.y.shape[-1], "the validation data")
    return train, dataclasses.replace(val, y=val_y, config={**val.config, "channels": names})
