"""Your own trajectories from files: `.npz`, `.npy`, `.csv` (or a folder of `.csv`).

Formats (all give a `Dataset` with `y` float32 `(N, T, D)`, validated by `from_arrays`):

- `.npz`: array `y` `(N, T, D)` or `(T, D)` (or the archive's only array), optional
  `t` `(T,)` or `(N, T)`, `channels` `(D,)` (names) and `params/<name>` `(N,)` (each
  trajectory's true parameters, shown next to what a physical prior identifies). A
  data set written by `save` (it has a `metadata` member) is read back as such.
- `.npy`: one array `(N, T, D)`, `(T, D)` or `(T,)`; no times.
- `.csv`: a table with a header line (see `_csv`): columns `trajectory` (optional),
  `time` (or `t`, `step`; optional) and the channels.
- a folder: every `*.csv` in it (sorted by name), one trajectory per file, named by
  the file's stem.

Every problem is a `FileNotFoundError` (no such path) or a one-line `ValueError`: an
unreadable file, a folder or device where a file should be, a link loop, content that
does not match the extension, an array whose header declares more data than the file
holds, or data that `from_arrays` refuses.
"""

import dataclasses
import os
import stat
from pathlib import Path

import numpy as np

from ._arrays import from_arrays as from_arrays
from ._arrays import trajectory_times as trajectory_times
from ._csv import read_csv
from ._csv import save_csv as save_csv
from ._dataset import Dataset, saved_dataset
from ._npfiles import read_npy, read_npz

FORMATS = (".npz", ".npy", ".csv")
_KINDS = {".npz": "a zip (.npz) archive", ".npy": "a .npy array", ".csv": "text (a CSV?)"}


def load(path: str | os.PathLike) -> Dataset:
    """Reads trajectories from `.npz`, `.npy`, `.csv` or a folder of `.csv` (see the
    module docstring), or a data set written by `save`.

    Raises `FileNotFoundError` for a missing path and a one-line `ValueError` naming
    the problem for a file that cannot be read, is empty, not what its extension says,
    ragged, non-finite (trajectory, time step, channel) or with times that do not
    increase.
    """
    path = Path(path)
    info = _status(path)
    try:
        if stat.S_ISDIR(info.st_mode):
            return _read_folder(path)
        return _read_file(path, info)
    except MemoryError:
        raise ValueError(f"{path} is too large to load into memory") from None
    except FileNotFoundError:
        raise
    except OSError as e:  # no permission, a folder where a file should be, a link loop
        raise ValueError(f"cannot read {e.filename or path}: {e.strerror or e}") from None


def _status(path: Path) -> os.stat_result:
    """`path`'s status (following links); `FileNotFoundError` if there is none."""
    try:
        return path.stat()
    except FileNotFoundError:
        link = " (a link to a missing file)" if path.is_symlink() else ""
        raise FileNotFoundError(f"no data file at {path}{link}") from None
    except OSError as e:  # a link loop, a name too long, no permission on the folder
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None


def _read_file(path: Path, info: os.stat_result) -> Dataset:
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file (a device, pipe or socket?)")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown format {suffix!r}; use one of {', '.join(FORMATS)}")
    if info.st_size == 0:
        raise ValueError(f"{path} is empty")
    with open(path, "rb") as f:
        kind = _sniff(f.read(4096))
    if kind != suffix:
        raise ValueError(
            f"{path} is not a valid systems data set or {suffix} file: its content is "
            f"{_KINDS.get(kind, kind)}"
        )
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".npy":
        return from_arrays(read_npy(path), name=path.stem, source=str(path), fmt="npy")
    return read_csv(path)


def _sniff(head: bytes) -> str:
    """What the first bytes say a file is: `.npz`, `.npy`, `.csv` or a description."""
    if head.startswith(b"PK"):
        return ".npz"
    if head.startswith(b"\x93NUMPY"):
        return ".npy"
    if b"\0" in head:
        return "binary data of an unknown format"
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the block
            return "binary data of an unknown format"
    return ".csv"


def _read_npz(path: Path) -> Dataset:
    arrays = read_npz(path)
    if "metadata" in arrays:
        return saved_dataset(path, arrays)
    names = sorted(arrays)
    if not names:
        raise ValueError(f"{path} is empty: the archive holds no arrays")
    key = "y" if "y" in arrays else (names[0] if len(names) == 1 else None)
    if key is None:
        raise ValueError(f"{path}: expected an array named 'y' (found {', '.join(names)})")
    channels = arrays.get("channels")
    if channels is not None and channels.ndim != 1:
        raise ValueError(f"{path}: 'channels' must be a list of names, got shape {channels.shape}")
    dataset = from_arrays(
        arrays[key],
        arrays.get("t"),
        channels=None if channels is None else channels.tolist(),
        time_column="time" if "t" in arrays else None,
        name=path.stem,
        source=str(path),
        fmt="npz",
    )
    return _with_params(dataset, arrays, path)


def _with_params(dataset: Dataset, arrays: dict, path: Path) -> Dataset:
    """`dataset` with the true parameters `params/<name>` of the archive: one real
    number (or row of numbers) per trajectory."""
    params = {k.removeprefix("params/"): v for k, v in arrays.items() if k.startswith("params/")}
    for name, value in params.items():
        if value.dtype.kind not in "iuf" or value.ndim == 0 or value.shape[0] != len(dataset):
            raise ValueError(
                f"{path}: params/{name} must hold real numbers, one row per trajectory "
                f"({len(dataset)}), got {value.dtype} {value.shape}"
            )
    return dataclasses.replace(dataset, params={k: v.astype(float) for k, v in params.items()})


def _read_folder(path: Path) -> Dataset:
    files = sorted(path.glob("*.csv"))
    if not files:
        raise ValueError(f"{path}: no .csv files in this folder")
    parts = []
    for f in files:
        info = _status(f)
        if stat.S_ISDIR(info.st_mode):
            raise ValueError(f"{f} is a folder, not a CSV file; move it out of {path}")
        parts.append(_read_file(f, info))
    first = parts[0].config
    for f, part in zip(files, parts, strict=True):
        if part.config["channels"] != first["channels"]:
            raise ValueError(
                f"{f}: columns {part.config['channels']} differ from {files[0].name}'s "
                f"{first['channels']}"
            )
        if part.y.shape[1] != parts[0].y.shape[1]:
            raise ValueError(
                f"{path}: ragged trajectories: {f.name} has {part.y.shape[1]} steps, "
                f"{files[0].name} has {parts[0].y.shape[1]}; every file needs the same number"
            )
    ids = [
        f.stem if len(p) == 1 else f"{f.stem}/{i}"
        for f, p in zip(files, parts, strict=True)
        for i in p.config["ids"]
    ]
    return from_arrays(
        np.concatenate([p.y for p in parts]),
        np.concatenate([trajectory_times(p) for p in parts]),
        channels=first["channels"],
        ids=ids,
        time_column=first["time_column"],
        name=path.name,
        source=str(path),
        fmt="csv-folder",
    )
