"""Evaluating and reconstructing with a trained run, in raw units."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._forecast import reconstruct
from .._held_rollout import held
from .._refine import resolve_refine
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


def warn_untrained_context(run: Run, context: int) -> None:
    """A `UserWarning` when a held WARP (its state fixed after the context) forecasts after
    a context outside the training contexts: its read-out is good only after the context
    lengths it trained on (README, "The held state on contexts of several lengths")."""
    low, high = run.config.train_context, run.config.train_context_max
    if not held(run.model) or low is None or low <= context <= (high or low):
        return
    trained = f"{low}..{high}" if high else f"{low}"
    warnings.warn(
        f"this held model trained its forecast after {trained} observed steps, not {context}:"
        " its read-out degrades after other context lengths (the refinement does not); "
        "train with --train-context and --train-context-max covering the contexts you use",
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
    refine: int | str | None = None,
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
    - `refine`: K >= 1 fits a physical prior to each context first (`reconstruct`);
      `"auto"`: `DEFAULT_REFINE_STEPS` where that applies (a physical prior, the forecast
      protocol and what `resolve_refine` asks: clean convention, regular grid, a context
      with more numbers than the fit's unknowns), else none.

    **Returns:** a JSON-able dict: `mse` (raw units, no 1/2), `mse_normalized`, `nll`
    (probabilistic models), `mse_repeat_last` (repeat the last observed value, for
    scale) and the protocol details; with refinement also `refine` (K) and `mse_readout`,
    the MSE of the forecast from WARP's read-out alone.
    """
    cfg = run.config
    context = cfg.context if context is None else context
    warn_untrained_context(run, context)
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
    if refine == "auto" and protocol != "forecast":
        refine = 0
    refine = resolve_refine(
        run.model, refine, convention=cfg.convention, regular=times is None, context=context
    )
    if refine and protocol != "forecast":
        raise ValueError(f"refine needs the 'forecast' protocol; this run's is {protocol!r}")
    score = lambda k: _scores(run, inputs, targets, times, context=context, chunk=chunk, refine=k)
    metrics, start = score(refine)
    result = {
        "split": split,
        "n": int(inputs.shape[0]),
        "protocol": protocol,
        "context": context if protocol == "forecast" else None,
        "convention": cfg.convention,
        "scored_steps": [int(start), int(inputs.shape[1] - 1)],
    }
    if refine:
        result.update(refine=refine, mse_readout=score(0)[0]["mse"])
    result.update(metrics)
    if protocol == "forecast":
        last = np.broadcast_to(inputs[:, start - 1 : start], targets[:, start:].shape)
        result["mse_repeat_last"] = float(mse(last, targets[:, start:]))
    return result


def _scores(run: Run, inputs, targets, times, *, context: int, chunk: int, refine: int):
    """`(prediction_metrics, first scored step)` of the run's protocol on raw `inputs`."""
    cfg = run.config
    prediction, start = _chunked(
        lambda x, ts: _predict(
            run.model,
            run.normalizer.apply(x),
            protocol=run.eval_protocol,
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
    return prediction_metrics(prediction, targets, start, run.normalizer), start


def reconstruct_run(
    run: Run,
    trajectories,
    *,
    context: int,
    horizon: int | None = None,
    times=None,
    refine: int | str | None = None,
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
      forecast (`reconstruct(..., refine=K)`); `"auto"`: as in `evaluate_run`.

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
    warn_untrained_context(run, context)
    ts = grid_times(y, run.model, "trajectories", times)
    if ts is not None:
        ts = _extended_times(ts, context + int(horizon))
    convention = run.config.convention
    refine = resolve_refine(
        run.model, refine, convention=convention, regular=ts is None, context=context
    )
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
    if refine:
        result["refine"] = refine
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
