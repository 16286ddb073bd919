"""`generate_cached`: reuse a data set file only if its config hash matches."""

import os
import warnings
from pathlib import Path
from typing import Any

from ._base import AbstractSystem
from ._dataset import Dataset, config_hash, load, save
from ._generate import dataset_config, generate
from ._registry import resolve_system

DEFAULT_CACHE_DIR = "data_cache"


def cache_path(
    system: str | AbstractSystem,
    n_trajectories: int | None = None,
    *,
    split: str = "train",
    seed: int = 0,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
) -> Path:
    """The file `generate_cached` uses: `<cache_dir>/<name>-<split>-n<N>-seed<seed>.npz`."""
    name = system if isinstance(system, str) else system.name
    n = "default" if n_trajectories is None else n_trajectories
    return Path(cache_dir) / f"{name}-{split}-n{n}-seed{seed}.npz"


def generate_cached(
    system: str | AbstractSystem,
    n_trajectories: int | None = None,
    *,
    split: str = "train",
    seed: int = 0,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
    progress: bool | None = None,
    **overrides: Any,
) -> Dataset:
    """`generate`, backed by an `.npz` file in `cache_dir` (see `cache_path`).

    The file is used only if the hash of its stored config equals the hash of the
    requested config (system fields including overrides, split, seed, N, format
    version); otherwise — missing, stale, truncated or corrupt — the data set is
    regenerated and the file rewritten atomically.

    **Arguments:** as `generate`, plus `cache_dir` (created if needed).

    **Returns:** the `Dataset`.
    """
    resolved = resolve_system(system, overrides)
    resolved.check_split(split)
    n = n_trajectories if n_trajectories is not None else resolved.split_sizes.get(split)
    path = cache_path(system, n_trajectories, split=split, seed=seed, cache_dir=cache_dir)
    if path.exists() and n is not None:
        wanted = config_hash(dataset_config(resolved, n, split, seed))
        try:
            cached = load(path)
        except ValueError as e:
            warnings.warn(f"regenerating {path}: {e}", stacklevel=2)
        else:
            if cached.config_hash == wanted:
                return cached
    dataset = generate(resolved, n_trajectories, split=split, seed=seed, progress=progress)
    save(dataset, path)
    return dataset
