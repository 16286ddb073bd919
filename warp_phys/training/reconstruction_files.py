"""Writing a reconstruction (`reconstruct_run`'s result) in the layout of its input:
`.npz`, `.npy`, `.csv` or a folder of CSV files."""

import io
from pathlib import Path

import numpy as np

import systems
from systems import atomic_write_bytes

from .evaluation import _extended_times


def _predicted_times(dataset, steps: np.ndarray) -> np.ndarray:
    """`(N, H)` times of the predicted steps: the input's, continued past its end with
    its last time step."""
    t = np.asarray(systems.trajectory_times(dataset), np.float64)
    return _extended_times(t, int(steps[-1]) + 1)[:, steps]


def write_reconstruction(result: dict, out, *, dataset=None, channels=None, input_path=None):
    """Write `reconstruct_run`'s `result` to `out` in the format of its suffix: `.npz`
    (every array of `result`, plus `t` and `channels` with a `dataset`), `.npy` (the
    prediction `(N, H, d)`), `.csv` (the input's layout: `trajectory` column for several
    trajectories, its time column carried over (or `step`), the channels and, for
    probabilistic models, `<channel>_std`), or no suffix for a folder input: one CSV per
    trajectory. Refuses to overwrite `input_path`.

    **Returns:** the path written."""
    out = Path(out)
    if input_path is not None and out.resolve() == Path(input_path).resolve():
        raise ValueError(f"refusing to overwrite the input {input_path}; choose another --out")
    pred = result["prediction"]
    meta = dataset.config if dataset is not None else {}
    names = list(channels or meta.get("channels") or [f"x{i}" for i in range(pred.shape[-1])])
    times = None if dataset is None else _predicted_times(dataset, result["steps"])
    suffix = out.suffix.lower()
    if suffix == ".npz":
        extra = {} if times is None else {"t": times, "channels": np.array(names)}
        buffer = io.BytesIO()
        np.savez(buffer, **result, **extra)
        return atomic_write_bytes(out, buffer.getvalue())
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, pred)
        return atomic_write_bytes(out, buffer.getvalue())
    values, columns = pred, names
    if "std" in result:
        values = np.concatenate([pred, result["std"]], axis=-1)
        columns = names + [f"{c}_std" for c in names]
    time_column = meta.get("time_column") or "step"
    if times is None or meta.get("time_column") is None:
        times = np.broadcast_to(result["steps"], pred.shape[:2])
    ids = meta.get("ids") or [str(i) for i in range(len(pred))]
    common = dict(channels=columns, time_column=time_column)
    if suffix == ".csv":
        long = len(pred) > 1 or meta.get("format") == "csv-long"
        return systems.save_csv(out, values, times=times, ids=ids, long=long, **common)
    if suffix or meta.get("format") != "csv-folder":
        raise ValueError(f"--out must end in .npz, .npy or .csv (or name a folder), got {out}")
    inside = (out.resolve(), *out.resolve().parents)
    if input_path is not None and Path(input_path).resolve() in inside:
        raise ValueError(f"refusing to write into the input folder {input_path}")
    for i, name in enumerate(ids):
        systems.save_csv(
            out / f"{name.replace('/', '_')}.csv",
            values[i : i + 1],
            times=times[i : i + 1],
            long=False,
            **common,
        )
    return out
