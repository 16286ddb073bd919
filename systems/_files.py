"""Your own trajectories from files: `.npz`, `.npy`, `.csv` (or a folder of `.csv`).

Formats (all give a `Dataset` with `y` float32 `(N, T, D)`):

- `.npz`: array `y` `(N, T, D)` or `(T, D)` (or the archive's only array), optional
  `t` `(T,)` or `(N, T)` and `channels` `(D,)` (names). A data set written by `save`
  (it has a `metadata` member) is read back as such.
- `.npy`: one array `(N, T, D)`, `(T, D)` or `(T,)`; no times.
- `.csv`: a header line names the columns. A long table has a `trajectory` column
  (any labels); a `time` (or `t`, `step`) column is optional; every other column is
  a channel. Rows of one trajectory appear in time order. Without a `trajectory`
  column the file is one trajectory; without a header every column is a channel.
- a folder: every `*.csv` in it (sorted by name), one trajectory per file, named by
  the file's stem.

Every trajectory must have the same number of steps, finite values and strictly
increasing times. Times stay float64 (time stamps survive); without times, `t` is
the step index. File-derived data sets carry `config = {"source", "format",
"channels", "ids", "time_column"}` and, when trajectories have different time grids,
`extras["t"]` `(N, T)`.
"""

import csv
import io
import os
import zipfile
from pathlib import Path

import numpy as np
from jaxtyping import Float

from ._dataset import Dataset
from ._dataset import load as load_dataset_file
from ._io import atomic_write_bytes

TIME_COLUMNS = ("time", "t", "step")
TRAJECTORY_COLUMN = "trajectory"
FORMATS = (".npz", ".npy", ".csv")
_KINDS = {".npz": "a zip (.npz) archive", ".npy": "a .npy array", ".csv": "text (a CSV?)"}


def from_arrays(
    y, t=None, *, channels=None, ids=None, time_column: str | None = None,
    name: str = "arrays", source: str = "memory", fmt: str = "arrays",
) -> Dataset:  # fmt: skip
    """A validated `Dataset` of user trajectories.

    **Arguments:** `y` `(N, T, D)`, `(T, D)` or `(T,)`; `t` `(T,)` or `(N, T)` (default:
    the step index); `channels` `D` names (default `x0, x1, ...`); `ids` `N` labels
    (default `0, 1, ...`); `time_column` the name of the time column (`None`: no times).

    Raises `ValueError` for an empty, ragged or non-numeric array, NaN/inf (naming the
    trajectory, time step and channel) or times that are not strictly increasing.
    """
    y = np.asarray(y)
    if y.dtype == object or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{source}: trajectories must be numeric, got dtype {y.dtype}")
    y = y.reshape(1, -1, 1) if y.ndim == 1 else (y[None] if y.ndim == 2 else y)
    if y.ndim != 3:
        raise ValueError(f"{source}: trajectories must be (N, T, D) or (T, D), got {y.shape}")
    if y.size == 0:
        raise ValueError(f"{source} is empty: no trajectories, steps or channels {y.shape}")
    n, steps, d = y.shape
    ids = [str(i) for i in (range(n) if ids is None else ids)]
    channels = [f"x{i}" for i in range(d)] if channels is None else [str(c) for c in channels]
    if len(channels) != d or len(ids) != n:
        raise ValueError(
            f"{source}: {len(channels)} channel names and {len(ids)} ids for {d} channels "
            f"and {n} trajectories"
        )
    if t is None:
        t, time_column = np.arange(steps, dtype=np.float64), None
    t = np.asarray(t, dtype=np.float64)
    if t.shape not in ((steps,), (n, steps)):
        raise ValueError(f"{source}: times must be ({steps},) or ({n}, {steps}), got {t.shape}")
    times = np.broadcast_to(t, (n, steps))
    _check_values(y, times, ids, channels, source)
    _check_times(times, ids, source)
    config = {"source": source, "format": fmt, "channels": channels, "ids": ids,
              "time_column": time_column}  # fmt: skip
    same = bool(np.all(times == times[:1]))
    y = y.astype(np.float32)
    return Dataset(
        t=times[0].copy(), y=y, params={}, y0=y[:, 0].copy(), name=name, split="file",
        config=config, extras={} if same else {"t": np.array(times)},
    )  # fmt: skip


def _check_values(y, times, ids, channels, source) -> None:
    bad = np.argwhere(~np.isfinite(y))
    if bad.size:
        i, s, c = bad[0]
        raise ValueError(
            f"{source}: {len(bad)} non-finite value(s); the first, {y[i, s, c]}, is in "
            f"trajectory {ids[i]!r} (index {i}) at time step {s} (time {times[i, s]:g}), "
            f"channel {channels[c]!r}"
        )


def _check_times(times, ids, source) -> None:
    for i, row in enumerate(times):
        if not np.all(np.isfinite(row)):
            s = int(np.argmax(~np.isfinite(row)))
            raise ValueError(f"{source}: time of trajectory {ids[i]!r} at step {s} is {row[s]}")
        back = np.flatnonzero(np.diff(row) <= 0)
        if back.size:
            s = int(back[0]) + 1
            raise ValueError(
                f"{source}: times of trajectory {ids[i]!r} are not strictly increasing at "
                f"step {s} ({row[s]:g} after {row[s - 1]:g})"
            )


def trajectory_times(dataset: Dataset) -> Float[np.ndarray, "N T"]:
    """The times of every trajectory, `(N, T)` (`extras["t"]` or `t` broadcast)."""
    t = dataset.extras.get("t", dataset.t)
    return np.broadcast_to(t, dataset.y.shape[:2])


def load(path: str | os.PathLike) -> Dataset:
    """Reads trajectories from `.npz`, `.npy`, `.csv` or a folder of `.csv` (see the
    module docstring), or a data set written by `save`.

    Raises `FileNotFoundError` for a missing path and a `ValueError` naming the problem
    for a file that is empty, not what its extension says, ragged, non-finite
    (trajectory, time step, channel) or with times that do not increase.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file at {path}")
    if path.is_dir():
        return _read_folder(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown format {suffix!r}; use one of {', '.join(FORMATS)}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    with open(path, "rb") as f:
        kind = _sniff(f.read(4096))
    if kind != suffix:
        raise ValueError(
            f"{path} is not a valid systems data set or {suffix} file: its content is "
            f"{_KINDS.get(kind, kind)}"
        )
    return {".npz": _read_npz, ".npy": _read_npy, ".csv": _read_csv}[suffix](path)


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
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, AttributeError, TypeError) as e:
        raise ValueError(
            f"{path} is not a valid systems data set or .npz archive (truncated, corrupt, or "
            f"another format with an .npz name?): {type(e).__name__}: {e}"
        ) from None
    if "metadata" in arrays:
        return load_dataset_file(path)
    names = sorted(arrays)
    if not names:
        raise ValueError(f"{path} is empty: the archive holds no arrays")
    key = "y" if "y" in arrays else (names[0] if len(names) == 1 else None)
    if key is None:
        raise ValueError(f"{path}: expected an array named 'y' (found {', '.join(names)})")
    channels = arrays.get("channels")
    return from_arrays(
        arrays[key], arrays.get("t"), channels=None if channels is None else channels.tolist(),
        time_column="time" if "t" in arrays else None, name=path.stem, source=str(path), fmt="npz",
    )  # fmt: skip


def _read_npy(path: Path) -> Dataset:
    try:
        y = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path} is not a .npy array file: {e}") from None
    if not isinstance(y, np.ndarray):
        y.close()
        raise ValueError(f"{path} is an .npz archive, not a .npy array; rename it to .npz")
    return from_arrays(y, name=path.stem, source=str(path), fmt="npy")


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a UTF-8 text CSV file: {e}") from None
    rows = []
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if any(cells) and not cells[0].startswith("#"):
            rows.append((line, cells))
    if not rows:
        raise ValueError(f"{path} is empty (no rows)")
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> Dataset:
    rows = _csv_rows(path)
    header = rows[0][1]
    if all(_is_number(c) for c in header):
        names = [f"x{i}" for i in range(len(header))]
    else:
        names, rows = header, rows[1:]
        if not rows:
            raise ValueError(f"{path} has a header but no data rows")
        if "" in names or len(set(n.lower() for n in names)) < len(names):
            raise ValueError(f"{path}: column names must be unique and non-empty: {names}")
    lower = [n.lower() for n in names]
    traj = lower.index(TRAJECTORY_COLUMN) if TRAJECTORY_COLUMN in lower else None
    time = next((lower.index(c) for c in TIME_COLUMNS if c in lower), None)
    value_cols = [i for i in range(len(names)) if i not in (traj, time)]
    if not value_cols:
        raise ValueError(f"{path}: no channel columns (only {', '.join(names)})")
    values = np.empty((len(rows), len(names)), np.float64)
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(names):
            raise ValueError(
                f"{path}, line {line}: {len(cells)} fields, the header has {len(names)}"
            )
        for c in range(len(names)):
            if c == traj:
                continue
            try:
                values[r, c] = float(cells[c])
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}, column {names[c]!r}: {cells[c]!r} is not a number"
                ) from None
    groups: dict[str, list[int]] = {}
    for r, (_, cells) in enumerate(rows):
        groups.setdefault(cells[traj] if traj is not None else "0", []).append(r)
    ids, groups = list(groups), list(groups.values())
    lengths = {i: len(g) for i, g in zip(ids, groups, strict=True)}
    if len(set(lengths.values())) > 1:
        shortest, longest = min(lengths, key=lengths.get), max(lengths, key=lengths.get)
        raise ValueError(
            f"{path}: ragged trajectories: {shortest!r} has {lengths[shortest]} steps, "
            f"{longest!r} has {lengths[longest]}; every trajectory needs the same number of "
            "steps (cut or resample them)"
        )
    block = values[np.array(groups)]  # (N, T, columns)
    return from_arrays(
        block[..., value_cols], None if time is None else block[..., time],
        channels=[names[i] for i in value_cols], ids=ids,
        time_column=None if time is None else names[time], name=path.stem, source=str(path),
        fmt="csv" if traj is None else "csv-long",
    )  # fmt: skip


def _read_folder(path: Path) -> Dataset:
    files = sorted(path.glob("*.csv"))
    if not files:
        raise ValueError(f"{path}: no .csv files in this folder")
    parts = [_read_csv(f) for f in files]
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
    ids = [f.stem if len(p) == 1 else f"{f.stem}/{i}" for f, p in zip(files, parts, strict=True)
           for i in p.config["ids"]]  # fmt: skip
    return from_arrays(
        np.concatenate([p.y for p in parts]),
        np.concatenate([trajectory_times(p) for p in parts]), channels=first["channels"],
        ids=ids, time_column=first["time_column"], name=path.name, source=str(path),
        fmt="csv-folder",
    )  # fmt: skip


def save_csv(
    path: str | os.PathLike, y, *, channels, times=None, ids=None, time_column="time",
    long: bool | None = None,
) -> Path:  # fmt: skip
    """Writes `y` `(N, T, D)` as a CSV atomically: columns `trajectory` (if `long`,
    default `N > 1`), `time_column` (if `times` `(N, T)` is given) and `channels`.
    Values are written with 9 significant digits (float32 round trip), times with 17."""
    y = np.asarray(y)
    long = y.shape[0] > 1 if long is None else long
    ids = [str(i) for i in range(y.shape[0])] if ids is None else ids
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ([TRAJECTORY_COLUMN] if long else []) + ([time_column] if times is not None else [])
    writer.writerow(header + list(channels))
    for i, traj in enumerate(y):
        for s, row in enumerate(traj):
            lead = ([ids[i]] if long else []) + ([repr(float(times[i][s]))] if times is not None
                                                 else [])  # fmt: skip
            writer.writerow(lead + [f"{float(v):.9g}" for v in row])
    return atomic_write_bytes(path, buffer.getvalue().encode())
