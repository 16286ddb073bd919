"""`from_arrays`: user trajectories in memory, validated into a `Dataset`.

Every trajectory must have the same number of steps, real values that are finite as
float32 and strictly increasing times. Times stay float64 (time stamps survive);
without times, `t` is the step index. The data set carries `config = {"source",
"format", "channels", "ids", "time_column"}` and, when trajectories have different time
grids, `extras["t"]` `(N, T)`.
"""

import numpy as np
from jaxtyping import Float

from ._dataset import Dataset

FLOAT32_MAX = float(np.finfo(np.float32).max)


def from_arrays(
    y,
    t=None,
    *,
    channels=None,
    ids=None,
    time_column: str | None = None,
    name: str = "arrays",
    source: str = "memory",
    fmt: str = "arrays",
) -> Dataset:
    """A validated `Dataset` of user trajectories.

    **Arguments:** `y` `(N, T, D)`, `(T, D)` or `(T,)`; `t` `(T,)` or `(N, T)` (default:
    the step index); `channels` `D` names (default `x0, x1, ...`); `ids` `N` labels
    (default `0, 1, ...`); `time_column` the name of the time column (`None`: no times).

    Raises `ValueError` for an empty, ragged, complex or non-numeric array, NaN/inf or a
    value beyond float32's range (naming the trajectory, time step and channel) or times
    that are not strictly increasing.
    """
    y = _real(y, "trajectories", source)
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
    with np.errstate(over="ignore", invalid="ignore"):  # inf or nan here is refused below
        t = _real(t, "times", source).astype(np.float64)
    if t.shape not in ((steps,), (n, steps)):
        raise ValueError(f"{source}: times must be ({steps},) or ({n}, {steps}), got {t.shape}")
    times = np.broadcast_to(t, (n, steps))
    y = _float32(y, times, ids, channels, source)
    _check_times(times, ids, source)
    config = dict(source=source, format=fmt, channels=channels, ids=ids, time_column=time_column)
    same = bool(np.all(times == times[:1]))
    return Dataset(
        t=times[0].copy(),
        y=y,
        params={},
        y0=y[:, 0].copy(),
        name=name,
        split="file",
        config=config,
        extras={} if same else {"t": np.array(times)},
    )


def _real(array, what: str, source: str) -> np.ndarray:
    """`array` as a numpy array of real numbers (integers or floats)."""
    try:
        array = np.asarray(array)
    except ValueError as e:  # a ragged nested list
        raise ValueError(f"{source}: {what} are not a rectangular array: {e}") from None
    if array.dtype.kind == "c":
        raise ValueError(
            f"{source}: {what} are complex ({array.dtype}); only real numbers are read "
            "(store the real and imaginary parts as separate channels)"
        )
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{source}: {what} must be numeric, got dtype {array.dtype}")
    return array


def _float32(y, times, ids, channels, source) -> Float[np.ndarray, "N T D"]:
    """`y` as float32; a `ValueError` at the first value that is not finite, or that
    float32 cannot hold (it would become inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        y32 = y.astype(np.float32)
    checks = (
        (y, "non-finite value(s)", ""),
        (y32, f"value(s) beyond float32's range (+-{FLOAT32_MAX:.4g})", "; rescale the channel"),
    )
    for values, problem, hint in checks:
        bad = np.argwhere(~np.isfinite(values))
        if bad.size:
            i, s, c = bad[0]
            raise ValueError(
                f"{source}: {len(bad)} {problem}; the first, {y[i, s, c]}, is in "
                f"trajectory {ids[i]!r} (index {i}) at time step {s} (time {times[i, s]:g}), "
                f"channel {channels[c]!r}{hint}"
            )
    return y32


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
