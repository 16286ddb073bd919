"""`generate`: sample, integrate (chunked, compiled once per shape), post-process, normalise."""

import dataclasses
import hashlib
import math
from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from ._base import SPLITS, AbstractSystem
from ._dataset import FORMAT_VERSION, Dataset, config_hash
from ._registry import resolve_system

DEFAULT_CHUNK_SIZE = 4096
_MIN_CHUNK = 64  # small data sets are padded to a power of two >= this: few compiled shapes
_TRAIN_STATS: dict[str, tuple[float, float]] = {}


def split_key(seed: int, split: str) -> PRNGKeyArray:
    """The key of a split: `fold_in(PRNGKey(seed), index of split)`; distinct per split."""
    return jr.fold_in(jr.PRNGKey(seed), SPLITS.index(split))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray | jax.Array):
        return np.asarray(value).tolist()
    if callable(value):
        code = getattr(value, "__code__", None)
        digest = ""
        if code is not None:
            blob = code.co_code + repr(code.co_consts).encode() + repr(code.co_names).encode()
            digest = hashlib.sha256(blob).hexdigest()[:16]
        name = getattr(value, "__qualname__", type(value).__qualname__)
        return f"{getattr(value, '__module__', '?')}.{name}#{digest}"
    return repr(value)


def system_config(system: AbstractSystem) -> dict[str, Any]:
    """The JSON-able description of `system`: its class and every field."""
    fields = {f.name: _jsonable(getattr(system, f.name)) for f in dataclasses.fields(system)}
    cls = type(system)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", **fields}


def dataset_config(system: AbstractSystem, n: int, split: str, seed: int) -> dict[str, Any]:
    """The exact config of `generate(system, n, split=split, seed=seed)` (hashed for caching)."""
    return {
        "system": system_config(system), "split": split, "seed": seed,
        "n_trajectories": n, "format_version": FORMAT_VERSION,
    }


def _sample(system: AbstractSystem, keys: PRNGKeyArray, split: str):
    """`(params {name: (n,)}, y0 (n, D))`, one draw per key. Run eagerly on purpose: the
    random-bit kernels then compile once per shape and are shared by all systems."""

    def one(key):
        kp, ky = jr.split(key)
        params = system.sample_params(kp, split)
        return params, system.sample_y0(ky, params)

    return jax.vmap(one)(keys)


def _check_vector_field(system: AbstractSystem, t0: Array, y0: Array, params: dict) -> None:
    """Evaluates the vector field once at the first trajectory's start; clear errors."""
    p0 = {k: v[0] for k, v in params.items()}
    shape = jax.eval_shape(system.vector_field, t0, y0[0], p0).shape
    if shape != (system.state_size,):
        raise ValueError(
            f"vector field of system {system.name!r} returned shape {shape}, "
            f"expected ({system.state_size},)"
        )
    value = np.asarray(system.vector_field(t0, y0[0], p0))
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"vector field of system {system.name!r} returned non-finite values {value} at "
            f"t={float(t0)}, y={np.asarray(y0[0])}, params={ {k: float(v) for k, v in p0.items()} }"
        )


def _generate_raw(system, n, split, seed, chunk_size, progress):
    """Samples and integrates in chunks of one fixed size (a power of two >= 64 for small
    `n`, padded), so that only a few shapes ever compile and memory stays bounded."""
    size = min(chunk_size, max(_MIN_CHUNK, 1 << math.ceil(math.log2(n))))
    key, ts = split_key(seed, split), system.solve_grid()
    parts = []
    with tqdm(total=n, unit="traj", desc=system.name, disable=not progress) as bar:
        for start in range(0, n, size):
            keys = jax.vmap(jr.fold_in, (None, 0))(key, jnp.arange(start, start + size))
            sample_keys, post_keys = jax.vmap(jr.split, out_axes=1)(keys)
            params, y0 = _sample(system, sample_keys, split)
            if start == 0:
                _check_vector_field(system, ts[0], y0, params)
            ys = system.integrate(ts, y0, params)
            parts.append(jax.device_get((ys, y0, params, post_keys)))
            bar.update(min(size, n - start))
    ys, y0, post_keys = (np.concatenate([part[i] for part in parts])[:n] for i in (0, 1, 3))
    params = {k: np.concatenate([part[2][k] for part in parts])[:n] for k in parts[0][2]}
    bad = ~np.all(np.isfinite(ys), axis=(1, 2))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"integration of system {system.name!r} failed (NaN/inf or max_steps) for "
            f"{int(bad.sum())} of {n} trajectories; first: y0={y0[i]}, "
            f"params={ {k: float(v[i]) for k, v in params.items()} }"
        )
    y, extras = system.postprocess(jnp.asarray(post_keys), ts, jnp.asarray(ys))
    if system.irregular:
        y, extras = _subsample(system, jnp.asarray(post_keys), ts, y)
        ts = system.time_grid()  # the nominal grid; each trajectory's times are in extras
    return (
        np.asarray(ts), np.asarray(y, np.float32),
        {k: np.asarray(params[k]) for k in system.param_names},
        np.asarray(y0, np.float32), {k: np.asarray(v) for k, v in extras.items()},
    )


def _subsample(system, keys, fine_ts, y):
    """Every trajectory at its own `n_steps` times of the fine grid `fine_ts` (index 0
    and `n_steps - 1` distinct later indices, sorted, drawn from `fold_in(key, 1)`):
    `(y (N, n_steps, D), {"t": (N, n_steps)})`."""

    def indices(key):
        candidates = fine_ts.shape[0] - 1  # every fine index after 0
        later = jr.choice(jr.fold_in(key, 1), candidates, (system.n_steps - 1,), replace=False)
        return jnp.concatenate([jnp.zeros(1, later.dtype), jnp.sort(later) + 1])

    index = jax.vmap(indices)(keys)  # (N, n_steps)
    y = jnp.take_along_axis(jnp.asarray(y), index[..., None], axis=1)
    return y, {"t": np.asarray(fine_ts[index], np.float32)}


def _train_stats(system, seed, chunk_size, progress) -> tuple[float, float]:
    """Global min / max of the raw (post-processed) default-size train split, memoised."""
    n = system.split_sizes["train"]
    key = config_hash(dataset_config(system, n, "train", seed))
    if key not in _TRAIN_STATS:
        _, y, *_ = _generate_raw(system, n, "train", seed, chunk_size, progress)
        _TRAIN_STATS[key] = (float(y.min()), float(y.max()))
    return _TRAIN_STATS[key]


def generate(
    system: str | AbstractSystem,
    n_trajectories: int | None = None,
    *,
    split: str = "train",
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool | None = None,
    **overrides: Any,
) -> Dataset:
    """Generates a data set of `system`.

    Trajectory `i` of a split is drawn from the key `fold_in(fold_in(PRNGKey(seed), split
    index), i)`, so splits never share draws and a data set of `n` trajectories is the
    first `n` of any larger one with the same seed (the same draws; the solved values
    can differ in the last float32 bits when the chunk shape differs).

    **Arguments:**

    - `system`: a registry name (see `list_systems`) or an `AbstractSystem`.
    - `n_trajectories`: number `N` of trajectories (default: the system's for `split`).
    - `split`: `"train"`, `"val"`, `"test"` (training ranges) or `"ood"` (`ood_ranges`).
    - `seed`: integer seed.
    - `chunk_size`: trajectories integrated per compiled call (bounds memory).
    - `progress`: show a tqdm bar (default: when more than one chunk).
    - `overrides`: system fields or parameter ranges, see `AbstractSystem.replace`.

    **Returns:** a `Dataset` with float32 `t` `(T,)`, `y` `(N, T, D)`, `params` `{name: (N,)}`,
    `y0` `(N, D)`. With `normalise=True`, `y` (and `extras["inputs"]`) are min-max mapped
    to `[-1, 1]` with the train statistics of the same seed.
    """
    system = resolve_system(system, overrides)
    system.check_split(split)
    if system.irregular and type(system).postprocess is not AbstractSystem.postprocess:
        raise ValueError(
            f"system {system.name!r} cannot be sampled irregularly: it post-processes its "
            "trajectories on the regular grid (e.g. a task built from time indices)"
        )
    n = n_trajectories
    if n is None:
        if split not in system.split_sizes:
            raise ValueError(f"system {system.name!r} has no default size for split {split!r}")
        n = system.split_sizes[split]
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise ValueError(f"n_trajectories must be a positive int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    n, seed = int(n), int(seed)
    if progress is None:
        progress = n > chunk_size
    t, y, params, y0, extras = _generate_raw(system, n, split, seed, chunk_size, progress)
    norm = None
    if system.normalise:
        if split == "train" and n == system.split_sizes["train"]:  # it is the train split
            key = config_hash(dataset_config(system, n, "train", seed))
            _TRAIN_STATS.setdefault(key, (float(y.min()), float(y.max())))
        norm = _train_stats(system, seed, chunk_size, progress)
        low, high = norm
        scale = 2.0 / (high - low) if high > low else 0.0
        y = ((y - low) * scale - 1).astype(np.float32)
        if "inputs" in extras:
            extras["inputs"] = ((extras["inputs"] - low) * scale - 1).astype(np.float32)
    return Dataset(
        t=t, y=y, params=params, y0=y0, name=system.name, split=split,
        config=dataset_config(system, n, split, seed), extras=extras, normalisation=norm,
    )
