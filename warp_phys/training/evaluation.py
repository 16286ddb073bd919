"""Evaluating and reconstructing with a trained run, in raw units."""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._rollout import reconstruct
from .data import as_pairs, check_finite
from .losses import mse
from .protocol import predict, prediction_metrics
from .run import Run, load_dataset

_predict = eqx.filter_jit(predict)
_reconstruct = eqx.filter_jit(reconstruct)


def _chunked(fn, inputs: np.ndarray, size: int):
    """`fn` over row chunks of `inputs`, padding the last chunk to `size` rows so that
    one compilation serves all chunks; returns the concatenated outputs and `fn`'s
    static second output."""
    outs, static = [], None
    for i in range(0, len(inputs), size):
        chunk = inputs[i : i + size]
        n = len(chunk)
        if n < size and len(inputs) > size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - n, axis=0)])
        out, static = fn(jnp.asarray(chunk))
        outs.append(jax.tree.map(lambda a, n=n: a[:n], out))
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs), static


def evaluate_run(
    run: Run,
    *,
    split: str = "test",
    n: int | None = None,
    context: int | None = None,
    data=None,
    chunk: int = 256,
) -> dict:
    """The paper's metrics of a run on a split (spec section 4), in raw units.

    **Arguments:**

    - `run`: a loaded `Run`.
    - `split`: `"test"`, `"ood"` (the system's out-of-distribution ranges) or `"val"`.
    - `n`: trajectories (default: the config's test count).
    - `context`: L (default: the config's); the protocol is the run's (`"forecast"`:
      free rollout after L steps, scored on the rest; `"full"`: teacher forcing,
      scored on every step).
    - `data`: evaluate these trajectories instead (an array or `(inputs, targets)`).

    **Returns:** a JSON-able dict: `mse` (raw units, no 1/2), `mse_normalized`,
    `nll` (probabilistic models), `mse_repeat_last` (the naive "repeat the last
    observed value" forecast, for scale), and the protocol details.
    """
    cfg = run.config
    context = cfg.context if context is None else context
    inputs, targets = as_pairs(data if data is not None else load_dataset(cfg, split, n), split)
    if inputs.shape[2] != run.model.data_size:
        raise ValueError(
            f"{split} data has {inputs.shape[2]} channels, the model expects {run.model.data_size}"
        )
    protocol = run.eval_protocol
    prediction, start = _chunked(
        lambda x: _predict(
            run.model,
            run.normalizer.apply(x),
            protocol=protocol,
            context=context,
            convention=cfg.convention,
            mode=cfg.mode,
        ),
        inputs,
        chunk,
    )
    result = {
        "split": split,
        "n": int(inputs.shape[0]),
        "protocol": protocol,
        "context": context if protocol == "forecast" else None,
        "convention": cfg.convention,
        "scored_steps": [int(start), int(inputs.shape[1] - 1)],
    }
    result.update(prediction_metrics(prediction, targets, start, run.normalizer))
    if protocol == "forecast":
        last = np.broadcast_to(inputs[:, start - 1 : start], targets[:, start:].shape)
        result["mse_repeat_last"] = float(mse(last, targets[:, start:]))
    return result


def reconstruct_run(run: Run, trajectories, *, context: int, horizon: int | None = None) -> dict:
    """Forecast from the first `context` steps of raw-unit `trajectories`.

    **Arguments:**

    - `trajectories`: `(N, T, d)` or `(T, d)` in raw units, T >= `context`.
    - `context`: L, the observed steps.
    - `horizon`: steps to forecast (default: the rest of the given trajectories, or up
      to the training length when only the context is given).

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
    if not isinstance(context, int) or not 1 <= context <= y.shape[1]:
        raise ValueError(f"context must be in [1, {y.shape[1]}] (the given steps), got {context}")
    y = check_finite(y, "trajectories")
    available = y.shape[1] - context
    if horizon is None:
        seq_len = run.model.config.get("seq_len", run.model.config.get("max_len"))
        horizon = available if available > 0 else max(int(seq_len or 0) - context, 1)
    out = _reconstruct(
        run.model,
        run.normalizer.apply(jnp.asarray(y[:, :context])),
        int(horizon),
        mode=run.config.mode,
        convention=run.config.convention,
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


def read_trajectories(path) -> np.ndarray:
    """Trajectories from a file: `.npz` (array `y`, or its only array; `(N, T, d)` or
    `(T, d)`) or `.csv` (one row per time step, one column per channel, an optional
    header line). Returns float32 `(N, T, d)`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no input file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                names = [k for k in f.files if k != "metadata"]
                key = "y" if "y" in names else (names[0] if len(names) == 1 else None)
                if key is None:
                    raise ValueError(f"{path}: expected an array named 'y' (found {names})")
                y = f[key]
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read: {err}") from None
    elif suffix == ".csv":
        try:
            y = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError:
            try:
                y = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)
            except ValueError as err:
                raise ValueError(f"{path}: not a numeric CSV: {err}") from None
    else:
        raise ValueError(f"{path}: input files must be .npz or .csv")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y[None]
    if y.ndim != 3:
        raise ValueError(f"{path}: data must be (T, d) or (N, T, d), got shape {y.shape}")
    return y
