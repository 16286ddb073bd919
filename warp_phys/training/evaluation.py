"""Evaluating and reconstructing with a trained run, in raw units."""

import io
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from systems import atomic_write_bytes

from .._forecast import reconstruct
from .data import as_pairs, check_finite, grid_times, match_channels
from .losses import mse
from .protocol import predict, prediction_metrics
from .run import Run, load_dataset

_predict = eqx.filter_jit(predict)
_reconstruct = eqx.filter_jit(reconstruct)


def _chunked(fn, inputs: np.ndarray, size: int, times: np.ndarray | None = None):
    """`fn(inputs_chunk, times_chunk)` over row chunks of `inputs` (and `times`, or None),
    padding the last chunk to `size` rows so that one compilation serves all chunks;
    returns the concatenated outputs and `fn`'s static second output."""
    outs, static = [], None
    for i in range(0, len(inputs), size):
        chunks = [None if a is None else a[i : i + size] for a in (inputs, times)]
        n = len(chunks[0])
        if n < size and len(inputs) > size:
            chunks = [
                None if c is None else np.concatenate([c, np.repeat(c[-1:], size - n, axis=0)])
                for c in chunks
            ]
        out, static = fn(*(None if c is None else jnp.asarray(c) for c in chunks))
        outs.append(jax.tree.map(lambda a, n=n: a[:n], out))
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs), static


def warn_past_training_length(model, steps: int, what: str = "the forecast") -> None:
    """A `UserWarning` when `steps` (context plus forecast) run past the sequence length
    a WARP model was trained on: tau then leaves the range it has seen."""
    seq_len = (getattr(model, "config", None) or {}).get("seq_len")
    if seq_len is not None and steps > seq_len:
        warnings.warn(
            f"{what} runs to step {steps}, past the training length seq_len={seq_len}: "
            "the model has never seen times that late, expect it to degrade",
            stacklevel=3,
        )


def evaluate_run(
    run: Run,
    *,
    split: str = "test",
    n: int | None = None,
    context: int | None = None,
    data=None,
    chunk: int = 256,
    refine: int | None = None,
) -> dict:
    """The paper's metrics of a run on a split (spec section 4), in raw units.

    **Arguments:**

    - `run`: a loaded `Run`.
    - `split`: `"test"`, `"ood"` (the system's out-of-distribution ranges) or `"val"`.
    - `n`: trajectories (default: the config's test count).
    - `context`: L (default: the config's), fewer than the trajectories' steps; the
      protocol is the run's (`"forecast"`: free rollout after L steps, scored on the
      rest; `"full"`: teacher forcing, scored on every step). Trajectories longer than
      the training length warn.
    - `data`: evaluate these trajectories instead (an array, `(inputs, targets)` or a
      `systems.Dataset`; one with its own time stamps is scored at them by a
      time-aware model).
    - `refine`: K >= 1 fits a physical prior to each context first (`reconstruct`).

    **Returns:** a JSON-able dict: `mse` (raw units, no 1/2), `mse_normalized`, `nll`
    (probabilistic models), `mse_repeat_last` (repeat the last observed value, for
    scale) and the protocol details (`refine`: K, when given).
    """
    cfg = run.config
    context = cfg.context if context is None else context
    dataset = data if data is not None else load_dataset(cfg, split, n)
    inputs, targets = as_pairs(dataset, split)
    times = grid_times(dataset, run.model, f"the {split} data")
    if inputs.shape[2] != run.model.data_size:
        raise ValueError(
            f"{split} data has {inputs.shape[2]} channels, the model expects {run.model.data_size}"
        )
    protocol = run.eval_protocol
    if protocol == "forecast" and not 1 <= context < inputs.shape[1]:
        raise ValueError(
            f"context {context} leaves no step to score: the {split} trajectories have "
            f"{inputs.shape[1]} steps"
        )
    warn_past_training_length(run.model, inputs.shape[1], f"the {split} data")
    if refine and protocol != "forecast":
        raise ValueError(f"refine needs the 'forecast' protocol; this run's is {protocol!r}")
    prediction, start = _chunked(
        lambda x, ts: _predict(
            run.model,
            run.normalizer.apply(x),
            protocol=protocol,
            context=context,
            convention=cfg.convention,
            mode=cfg.mode,
            ar_algorithm=cfg.ar_algorithm,
            ts=ts,
            refine=refine,
        ),
        inputs,
        chunk,
        times,
    )
    result = {
        "split": split,
        "n": int(inputs.shape[0]),
        "protocol": protocol,
        "context": context if protocol == "forecast" else None,
        "convention": cfg.convention,
        "scored_steps": [int(start), int(inputs.shape[1] - 1)],
    }
    if refine:
        result["refine"] = refine
    result.update(prediction_metrics(prediction, targets, start, run.normalizer))
    if protocol == "forecast":
        last = np.broadcast_to(inputs[:, start - 1 : start], targets[:, start:].shape)
        result["mse_repeat_last"] = float(mse(last, targets[:, start:]))
    return result


def reconstruct_run(
    run: Run,
    trajectories,
    *,
    context: int,
    horizon: int | None = None,
    times=None,
    refine: int | None = None,
) -> dict:
    """Forecast from the first `context` steps of raw-unit `trajectories`.

    **Arguments:**

    - `trajectories`: `(N, T, d)` or `(T, d)` in raw units, T >= `context`.
    - `context`: L, the observed steps.
    - `horizon`: steps to forecast (default: the rest of the given trajectories, or up
      to the training length when only the context is given; a `ValueError` when the
      context already reaches it). A forecast past the training length warns.
    - `times`: for a time-aware model (`transition="continuous"`), the time stamps
      `(N, T)` of irregularly sampled trajectories; the forecast is made at these times,
      continued past their end with the last interval.
    - `refine`: K >= 1 refines a physical prior's parameters on each context before the
      forecast (`reconstruct(..., refine=K)`).

    **Returns:** a dict of arrays: `prediction` `(N, horizon, d)` (raw units), `std`
    (probabilistic models), `context` `(N, L, d)`, `steps` (the predicted step indices),
    and, where the given trajectories extend past the context, `target` and `mse`.
    """
    y = np.asarray(trajectories, dtype=np.float32)
    if y.ndim == 2:
        y = y[None]
    if y.ndim != 3 or y.shape[2] != run.model.data_size:
        raise ValueError(
            f"trajectories must have shape (N, T, {run.model.data_size}) or "
            f"(T, {run.model.data_size}), got {np.shape(trajectories)}"
        )
    if not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive number of steps, got {context!r}")
    if context > y.shape[1]:
        raise ValueError(
            f"too few steps for the context: the trajectories have {y.shape[1]} steps, "
            f"fewer than the context {context}"
        )
    y = check_finite(y, "trajectories")
    available = y.shape[1] - context
    if horizon is None:
        seq_len = run.model.config.get("seq_len", run.model.config.get("max_len"))
        horizon = available if available > 0 else int(seq_len or 0) - context
        if horizon < 1:
            raise ValueError(
                f"nothing to forecast: the context {context} covers all {y.shape[1]} steps "
                f"of the trajectories and reaches the training length ({seq_len}); give a "
                "horizon (--horizon)"
            )
    warn_past_training_length(run.model, context + int(horizon))
    ts = grid_times(y, run.model, "trajectories", times)
    if ts is not None:
        ts = _extended_times(ts, context + int(horizon))
    out = _reconstruct(
        run.model,
        run.normalizer.apply(jnp.asarray(y[:, :context])),
        int(horizon),
        mode=run.config.mode,
        convention=run.config.convention,
        ar_algorithm=run.config.ar_algorithm,
        ts=ts,
        refine=refine,
    )
    mean, std = out if isinstance(out, tuple) else (out, None)
    result = {
        "prediction": np.asarray(run.normalizer.invert(mean)),
        "context": y[:, :context],
        "steps": np.arange(context, context + horizon),
    }
    if std is not None:
        result["std"] = np.asarray(std * run.normalizer.std)
    scored = min(available, horizon)
    if scored > 0:
        result["target"] = y[:, context : context + scored]
        result["mse"] = float(mse(result["prediction"][:, :scored], result["target"]))
    return result


def read_input(run: Run, path):
    """Trajectories of a file (`systems.load`: `.npz`, `.npy`, `.csv`, a folder of `.csv`)
    checked against the run: `(dataset, y)` with `y` `(N, T, d)` in the run's channel
    order (names matched where both the file and the run have them)."""
    import systems

    dataset = systems.load(path)
    return dataset, match_channels(dataset, run.channels, run.model.data_size, str(path))


def _extended_times(t: np.ndarray, length: int) -> np.ndarray:
    """Times `(N, T)` cut or continued to `length` steps with each trajectory's last
    interval (the step itself for a single time stamp)."""
    T = t.shape[1]
    dt = t[:, -1:] - t[:, -2:-1] if T > 1 else np.ones((len(t), 1), t.dtype)
    steps = np.arange(length)
    return np.where(steps < T, t[:, np.minimum(steps, T - 1)], t[:, -1:] + (steps - (T - 1)) * dt)


def _predicted_times(dataset, steps: np.ndarray) -> np.ndarray:
    """`(N, H)` times of the predicted steps: the input's, continued past its end with
    its last time step."""
    import systems

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
    import systems

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
