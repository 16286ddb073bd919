"""`Dataset` and its file format: `.npz` with the exact config as JSON, written atomically."""

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float

from ._io import atomic_write_bytes
from ._npfiles import read_npz

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set of trajectories of one system and split.

    - `t`: times, float32 `(T,)`.
    - `y`: data, float32 `(N, T, D)`: the trajectories after post-processing and
      normalisation (what a model is trained to output).
    - `params`: `{name: float32 (N,)}` the physical parameters of each trajectory.
    - `y0`: float32 `(N, D)`, the physical initial conditions of the solve.
    - `name`, `split`: system name and split (`train`, `val`, `test`, `ood`; `file` for
      trajectories read by `systems.load` from your own files, named by the file).
    - `config`: the exact JSON-able generation config (system fields, split, seed, N).
    - `extras`: other per-trajectory arrays with leading dimension `N` (e.g. the LV
      repeat-copy `inputs` `(N, T, D)` and cut points `cut` `(N,)`).
    - `normalisation`: `(min, max)` of the raw train data mapped to `[-1, 1]`, or `None`.
    """

    t: Float[np.ndarray, " T"]
    y: Float[np.ndarray, "N T D"]
    params: dict[str, Float[np.ndarray, " N"]]
    y0: Float[np.ndarray, "N D"]
    name: str
    split: str
    config: dict[str, Any]
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    normalisation: tuple[float, float] | None = None

    def __len__(self) -> int:
        return self.y.shape[0]

    def __repr__(self) -> str:
        """Counts and shapes, never the arrays or the list of trajectory ids."""
        n, steps, d = self.y.shape
        named = {"params": sorted(self.params), "extras": sorted(self.extras)}
        listed = "".join(f", {k}=[{', '.join(v)}]" for k, v in named.items() if v)
        return (
            f"Dataset({self.name!r}, split={self.split!r}, {n} trajectories x {steps} steps "
            f"x {d} channels{listed})"
        )

    @property
    def inputs(self) -> Float[np.ndarray, "N T D"]:
        """The model input, `(N, T, D)`: `extras["inputs"]` if present, else `y`."""
        return self.extras.get("inputs", self.y)

    @property
    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of `config`."""
        return config_hash(self.config)

    def denormalise(self, y: Float[np.ndarray, "*shape"]) -> Float[np.ndarray, "*shape"]:
        """Maps normalised values back to the raw scale (identity if not normalised)."""
        if self.normalisation is None:
            return y
        low, high = self.normalisation
        return (np.asarray(y) + 1) / 2 * (high - low) + low


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 hex digest of `config` as canonical (sorted-key) JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def save(dataset: Dataset, path: str | os.PathLike) -> Path:
    """Writes `dataset` to `path` (`.npz`) atomically (temporary file, then `os.replace`).

    The arrays are stored under `t`, `y`, `y0`, `params/<name>`, `extras/<name>`; the
    name, split, config, its hash and the normalisation as JSON under `metadata`.

    **Returns:** the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "split": dataset.split,
        "config": dataset.config,
        "config_hash": dataset.config_hash,
        "normalisation": dataset.normalisation,
    }
    arrays = {"t": dataset.t, "y": dataset.y, "y0": dataset.y0}
    arrays["metadata"] = np.array(json.dumps(meta))
    arrays.update({f"params/{k}": v for k, v in dataset.params.items()})
    arrays.update({f"extras/{k}": v for k, v in dataset.extras.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load(path: str | os.PathLike) -> Dataset:
    """Reads a data set written by `save`.

    Raises `FileNotFoundError` if `path` does not exist and `ValueError` if the file is
    truncated, corrupt, not a data set file, its config does not match its hash, or its
    arrays do not fit together (`y` finite float32 `(N, T, D)`, `t` `(T,)`, `y0`
    `(N, D)`, `params` `(N,)`, `extras` `(N, ...)`).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data set file at {path}")
    return saved_dataset(path, read_npz(path))


def saved_dataset(path: Path, arrays: dict[str, np.ndarray]) -> Dataset:
    """The data set that `save` wrote to `path`, from the archive's `arrays`."""
    arrays = dict(arrays)
    try:
        meta = json.loads(str(arrays.pop("metadata")))
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("no metadata of a supported format_version")
        t, y, y0 = arrays.pop("t"), arrays.pop("y"), arrays.pop("y0")
        config = meta["config"]
        if config_hash(config) != meta["config_hash"]:
            raise ValueError("the stored config does not match its hash")
        params = {
            k.removeprefix("params/"): v for k, v in arrays.items() if k.startswith("params/")
        }
        extras = {
            k.removeprefix("extras/"): v for k, v in arrays.items() if k.startswith("extras/")
        }
        _check_saved(t, y, y0, params, extras)
        norm = meta["normalisation"]
        dataset = Dataset(
            t=t,
            y=y,
            params=params,
            y0=y0,
            name=str(meta["name"]),
            split=str(meta["split"]),
            config=config,
            extras=extras,
            normalisation=None if norm is None else _pair(norm),
        )
    except (KeyError, ValueError, TypeError) as e:
        message = " ".join(f"{type(e).__name__}: {e}".split())
        raise ValueError(
            f"{path} is not a valid systems data set (truncated or corrupt?): {message}"
        ) from None
    return dataset


def _check_saved(t, y, y0, params, extras) -> None:
    """Raises a `ValueError` unless the arrays of a saved data set fit together."""
    if y.dtype != np.float32 or y.ndim != 3 or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite float32 (N, T, D), got {y.dtype} {y.shape}")
    n, steps, d = y.shape
    if t.dtype.kind != "f" or t.shape != (steps,) or not np.all(np.isfinite(t)):
        raise ValueError(f"t must be finite floats ({steps},), got {t.dtype} {t.shape}")
    if y0.dtype.kind not in "iuf" or y0.shape != (n, d):
        raise ValueError(f"y0 must be real ({n}, {d}), got {y0.dtype} {y0.shape}")
    for k, v in {**params, **extras}.items():
        if v.ndim == 0 or v.shape[0] != n:
            raise ValueError(f"{k!r} must have {n} rows (one per trajectory), got {v.shape}")


def _pair(norm) -> tuple[float, float]:
    low, high = (float(x) for x in norm)
    return low, high


def carve_validation(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split off `round(fraction * N)` (at least 1) trajectories for validation, chosen
    by a permutation seeded with `seed`; both parts keep the file order.

    **Returns:** `(train, val)`.
    """
    n = len(dataset)
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise ValueError(
            f"{dataset.config.get('source', dataset.name)}: {n} trajectory cannot be split into "
            "training and validation; give a validation file"
        )
    n_val = min(max(1, round(fraction * n)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return subset(dataset, np.sort(order[n_val:])), subset(dataset, np.sort(order[:n_val]))


def subset(dataset: Dataset, index) -> Dataset:
    """The trajectories `index` (an integer array) of a file-derived `dataset`."""
    index = np.asarray(index)
    config = dict(dataset.config)
    if "ids" in config:
        config["ids"] = [config["ids"][i] for i in index]
    return Dataset(
        t=dataset.t,
        y=dataset.y[index],
        params={k: v[index] for k, v in dataset.params.items()},
        y0=dataset.y0[index],
        name=dataset.name,
        split=dataset.split,
        config=config,
        extras={k: v[index] for k, v in dataset.extras.items()},
        normalisation=dataset.normalisation,
    )
