"""Trajectories as CSV text: `read_csv` and `save_csv`.

A header line names the columns. A long table has a `trajectory` column (any labels);
a `time` (or `t`, `step`) column is optional; every other column is a channel. Rows of
one trajectory appear in time order. Without a `trajectory` column the file is one
trajectory; without a header every column is a channel. Lines starting with `#` are
comments; line ends may be `\\n`, `\\r\\n` or `\\r`.

A cell is a number only in plain ASCII decimal or scientific notation (`-1.5`, `2e-3`)
or `nan` / `inf` / `infinity` (refused later as non-finite): `1_000` or Arabic-Indic
digits, which Python's `float` would accept, are not numbers here.
"""

import csv
import io
import os
import re
from pathlib import Path

import numpy as np

from ._arrays import from_arrays
from ._dataset import Dataset
from ._io import atomic_write_bytes

TIME_COLUMNS = ("time", "t", "step")
TRAJECTORY_COLUMN = "trajectory"
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


def _is_number(cell: str) -> bool:
    return _NUMBER.fullmatch(cell) is not None


def _shown(cell: str) -> str:
    """`cell` quoted for a one-line message, shortened if long."""
    return repr(cell if len(cell) <= 40 else cell[:37] + "...")


def _roles(lower: list[str]) -> tuple[int | None, int | None]:
    """The indices of the trajectory and time columns among lower-case names."""
    traj = lower.index(TRAJECTORY_COLUMN) if TRAJECTORY_COLUMN in lower else None
    time = next((lower.index(c) for c in TIME_COLUMNS if c in lower), None)
    return traj, time


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The non-empty, non-comment rows of `path` with their line numbers."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a UTF-8 text CSV file: {e}") from None
    reader = csv.reader(io.StringIO(text, newline=None))  # universal line ends
    rows = []
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if any(cells) and not cells[0].startswith("#"):
                rows.append((reader.line_num, cells))
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: not readable as CSV: {e}") from None
    if not rows:
        raise ValueError(f"{path} is empty (no rows)")
    return rows


def _header(path: Path, rows):
    """The column names and the data rows."""
    header = rows[0][1]
    if all(_is_number(c) for c in header):
        return [f"x{i}" for i in range(len(header))], rows
    if len(rows) == 1:
        raise ValueError(f"{path} has a header but no data rows")
    if "" in header or len(set(n.lower() for n in header)) < len(header):
        raise ValueError(f"{path}: column names must be unique and non-empty: {header}")
    return header, rows[1:]


def _values(path: Path, rows, names, traj) -> np.ndarray:
    """The numbers of every cell but the trajectory labels, `(rows, columns)` float64."""
    values = np.zeros((len(rows), len(names)), np.float64)
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(names):
            raise ValueError(
                f"{path}, line {line}: {len(cells)} fields, the header has {len(names)}"
            )
        for c, cell in enumerate(cells):
            if c == traj:
                continue
            if not _is_number(cell):
                raise ValueError(
                    f"{path}, line {line}, column {names[c]!r}: {_shown(cell)} is not a number"
                )
            values[r, c] = float(cell)
    return values


def read_csv(path: Path) -> Dataset:
    """The trajectories of the CSV file `path` (see the module docstring)."""
    names, rows = _header(path, _csv_rows(path))
    traj, time = _roles([n.lower() for n in names])
    value_cols = [i for i in range(len(names)) if i not in (traj, time)]
    if not value_cols:
        raise ValueError(f"{path}: no channel columns (only {names})")
    values = _values(path, rows, names, traj)
    groups: dict[str, list[int]] = {}
    for r, (_, cells) in enumerate(rows):
        groups.setdefault(cells[traj] if traj is not None else "0", []).append(r)
    lengths = {i: len(g) for i, g in groups.items()}
    if len(set(lengths.values())) > 1:
        shortest, longest = min(lengths, key=lengths.get), max(lengths, key=lengths.get)
        raise ValueError(
            f"{path}: ragged trajectories: {shortest!r} has {lengths[shortest]} steps, "
            f"{longest!r} has {lengths[longest]}; every trajectory needs the same number of "
            "steps (cut or resample them)"
        )
    block = values[np.array(list(groups.values()))]  # (N, T, columns)
    return from_arrays(
        block[..., value_cols],
        None if time is None else block[..., time],
        channels=[names[i] for i in value_cols],
        ids=list(groups),
        time_column=None if time is None else names[time],
        name=path.stem,
        source=str(path),
        fmt="csv" if traj is None else "csv-long",
    )


def save_csv(
    path: str | os.PathLike,
    y,
    *,
    channels,
    times=None,
    ids=None,
    time_column="time",
    long: bool | None = None,
) -> Path:
    """Writes `y` `(N, T, D)` as a CSV atomically: columns `trajectory` (if `long`,
    default `N > 1`), `time_column` (if `times` `(N, T)` is given) and `channels`.
    Values are written with 9 significant digits (float32 round trip), times with 17.

    Raises `ValueError` for names or ids that `read_csv` would not read back as
    themselves (empty, padded, repeated, a channel named like the time or trajectory
    column, an id starting with `#`) and for several trajectories without `long`.
    """
    y = np.asarray(y)
    long = y.shape[0] > 1 if long is None else long
    ids = [str(i) for i in range(y.shape[0])] if ids is None else [str(i) for i in ids]
    header = ([TRAJECTORY_COLUMN] if long else []) + ([time_column] if times is not None else [])
    header += [str(c) for c in channels]
    _check_layout(y.shape, header, ids, long, times is not None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, traj in enumerate(y):
        for s, row in enumerate(traj):
            lead = [ids[i]] if long else []
            if times is not None:
                lead.append(repr(float(times[i][s])))
            writer.writerow(lead + [f"{float(v):.9g}" for v in row])
    return atomic_write_bytes(path, buffer.getvalue().encode())


def _check_layout(shape, header: list[str], ids: list[str], long: bool, timed: bool) -> None:
    """Refuses a table that `read_csv` would not read back as written."""
    n, _, d = shape
    if len(header) - long - timed != d or len(ids) != n or (n > 1 and not long):
        raise ValueError(
            f"{len(header) - long - timed} channel names and {len(ids)} ids for {n} "
            f"trajectories of {d} channels (several trajectories need long=True)"
        )
    lower = [h.lower() for h in header]
    roles = (0 if long else None, int(long) if timed else None)
    if "" in lower or len(set(lower)) < len(lower) or any(h != h.strip() for h in header):
        raise ValueError(f"column names must be unique, non-empty and unpadded: {header}")
    if _roles(lower) != roles or all(_is_number(h) for h in header):
        raise ValueError(
            f"columns {header} would not read back as written (a channel named like the "
            f"trajectory or time column {(TRAJECTORY_COLUMN, *TIME_COLUMNS)}, or only numbers)"
        )
    if long and (len(set(ids)) < n or any(i != i.strip() or i.startswith("#") for i in ids)):
        raise ValueError(f"trajectory ids must be unique, unpadded and not start with '#': {ids}")
