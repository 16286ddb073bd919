"""The training loop, shared by WARP and the baselines: an optax chain, one jitted step,
minibatches from a seeded shuffler, validation, best-checkpoint keeping, early stopping,
a progress bar, NaN/inf detection and exact resumption.

`train` reads as setup (`_setup.prepare`: the arrays, the options resolved, the
compiled step; `_state.resume_state`), the loop (`_loop`, `_take_step`, `_validate`) and the
checkpoints (`_state.save_last`, `best.eqx` in `_validate`).
"""

import contextlib
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray
from tqdm.auto import tqdm

from ._devices import replicate, to_default_device
from ._lock import run_lock
from ._setup import Setup, prepare
from ._state import TrainState, resume_state, save_last
from .checkpoint import save_model
from .metrics_log import MetricsLog
from .options import ObjectiveOptions, OptimizerOptions, ValidationOptions
from .protocol import protocol_mse


def train(
    model,
    data,
    *,
    steps: int = 500,
    batch_size: int = 32,
    optimizer: OptimizerOptions | None = None,
    objective: ObjectiveOptions | None = None,
    validation: ValidationOptions | None = None,
    val_data=None,
    times=None,
    val_times=None,
    max_seconds: float | None = None,
    devices: int | str = 1,
    checkpoint_dir=None,
    resume: bool = False,
    log_every: int = 10,
    key: PRNGKeyArray,
    progress: bool = True,
):
    """Train a sequence model (WARP, GRU, LSTM, Transformer) on trajectories.

    **Arguments:**

    - `model`: an `AbstractSequenceModel`.
    - `data`: training trajectories `(N, T, data_size)`, an `(inputs, targets)` pair,
      or a `systems.Dataset` (see `as_pairs`; one sampled on an irregular grid trains a
      time-aware model at its time stamps, see `grid_times`); `val_data` the same.
    - `steps`, `batch_size`: optimiser steps and sequences per step, drawn without
      replacement from a permutation per epoch seeded by `key`.
    - `optimizer`: an `OptimizerOptions` (see `make_optimizer`).
    - `objective`: an `ObjectiveOptions` (see `sequence_loss`); the loss is the MSE, or
      the Gaussian NLL for probabilistic models.
    - `validation`: a `ValidationOptions`: `val_data` is scored every `every` steps (and
      when the time budget ends) under `predict`'s `protocol` after `context` steps
      (default T // 4; protocol `"auto"`: `"full"` when the training inputs differ from
      the targets); the best model is kept; `patience`: stop after this many
      validations without improvement. Select on a validation split, never on test.
    - `times`, `val_times`: time stamps `(N, T)` of irregularly sampled data given as
      arrays (default: a `Dataset`'s own, or a regular grid).
    - `max_seconds`: stop on a wall-clock budget (this call's time).
    - `devices`: data-parallel training over this many local devices (`"auto"`: all);
      `batch_size` must be a multiple of it; equal to one device up to float rounding
      (see `_devices`). The model comes back on the first local device.
    - `checkpoint_dir`: write `best.eqx`, `last.eqx` (with the optimiser state; at every
      validation, at the end, and the last good state on NaN/inf) and `metrics.jsonl`.
    - `resume`: continue from `checkpoint_dir/last.eqx`, identical to an uninterrupted
      run (unless the first stopped on its time budget, which adds a validation). Only
      `steps`, `max_seconds`, `patience`, `devices`, `progress`, `log_every` and the
      learning rates `lr`, `transition_lr` may change (the optimiser state is kept; a
      new rate applies from the next step). A run that already reached `steps` is a
      `ValueError`. A `checkpoint_dir` is locked while `train` runs (see `run_lock`).
    - `key`: PRNG key of the shuffler, teacher-forcing coins and feedback noise.

    **Returns:** `(model, history)`: the best validated model (the last one without
    `val_data`) and a dict of lists `step`, `loss`, `seconds`, `val_step`, `val_mse`,
    plus `stopped` (`"steps"`, `"early_stopping"` or `"time"`). Raises
    `FloatingPointError` when the loss, the gradient or the updated parameters become
    NaN/inf (`last.eqx` then holds the state before that step).
    """
    setup, chain = prepare(
        model,
        data,
        val_data,
        times=times,
        val_times=val_times,
        steps=steps,
        batch_size=batch_size,
        optimizer=optimizer or OptimizerOptions(),
        objective=objective or ObjectiveOptions(),
        validation=validation or ValidationOptions(),
        devices=devices,
        max_seconds=max_seconds,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        key=key,
    )
    opt_state = chain.init(eqx.filter(model, eqx.is_inexact_array))
    with contextlib.nullcontext() if setup.folder is None else run_lock(setup.folder):
        if resume:
            has_val = setup.val is not None
            state = resume_state(
                setup.folder, model, opt_state, setup.fingerprint, has_val, setup.steps
            )
        else:
            state = TrainState(model, opt_state, best_model=model)
        if setup.mesh is not None:
            state.model, state.opt_state = replicate((state.model, state.opt_state), setup.mesh)
        log = MetricsLog(setup.folder, resume_from=state.step if resume else None)
        history = _loop(setup, state, log, key, progress)
    result = state.best_model if state.best_step is not None else state.model
    return (result if setup.mesh is None else to_default_device(result)), history


def _loop(setup: Setup, state: TrainState, log: MetricsLog, key, progress: bool) -> dict:
    """Steps `state.step + 1 .. setup.steps`, validating and checkpointing on the way;
    `state` ends at the last step (its best model kept). **Returns:** the history."""
    shuffle_key, step_key = jax.random.split(key)
    rows_of = _shuffler(shuffle_key, len(setup.inputs), setup.batch_size)
    history = {"step": [], "loss": [], "seconds": [], "val_step": [], "val_mse": []}
    done, stopped, postfix = state.step, "steps", {}
    start = time.perf_counter()
    bar = tqdm(total=setup.steps, initial=done, disable=not progress, desc="training", unit="step")
    with bar:
        for step in range(done + 1, setup.steps + 1):
            loss = _take_step(setup, state, rows_of(step), jax.random.fold_in(step_key, step))
            elapsed = time.perf_counter() - start
            speed = (step - done) * setup.batch_size / max(elapsed, 1e-9)
            for name, value in (("step", step), ("loss", loss), ("seconds", elapsed)):
                history[name].append(value)
            if step % setup.log_every == 0 or step == setup.steps:
                rates = dict(seconds=round(elapsed, 3), seq_per_s=round(speed, 1))
                log.write(step=step, loss=loss, **rates)
            out_of_time = setup.max_seconds is not None and elapsed >= setup.max_seconds
            validate = step % setup.validation.every == 0 or out_of_time
            if setup.val is not None and validate:
                postfix["val"] = f"{_validate(setup, state, history, log):.4g}"
                patience = setup.validation.patience
                if patience is not None and state.bad >= patience:
                    stopped = "early_stopping"
            if out_of_time and stopped == "steps":
                stopped = "time"
            if validate or step == setup.steps or stopped != "steps":
                reason = None if stopped == "steps" else stopped  # None: the run may go on
                save_last(setup.folder, state, setup.fingerprint, reason)
            bar.set_postfix(dict(postfix, loss=f"{loss:.4g}", seq_s=f"{speed:.0f}"))
            bar.update(1)
            if stopped != "steps":
                break
    if setup.folder is not None and state.best_step is None and state.step > done:
        save_model(setup.folder / "best.eqx", state.model, metadata={"step": state.step})
    history["stopped"] = stopped
    return history


def _shuffler(key, n: int, batch_size: int):
    """`step -> rows`: minibatches drawn without replacement from a permutation of the
    `n` trajectories per epoch, seeded by `key` (so a resumed run draws the same)."""
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    permutation = functools.lru_cache(maxsize=2)(
        lambda epoch: np.random.default_rng([*seed, epoch]).permutation(n)
    )

    def rows_of(step: int) -> np.ndarray:
        epoch, index = divmod(step - 1, n // batch_size)
        return permutation(epoch)[index * batch_size : (index + 1) * batch_size]

    return rows_of


def _take_step(setup: Setup, state: TrainState, rows: np.ndarray, key) -> float:
    """One optimiser step on the trajectories `rows`; `state` moves on to it. A
    non-finite loss, gradient or updated parameters write the last good state (the one
    before this step) and raise."""
    inputs, targets, times = (
        None if a is None else setup.place(a[rows])
        for a in (setup.inputs, setup.targets, setup.times)
    )
    model, opt_state, loss, finite = setup.train_step(
        state.model, state.opt_state, inputs, targets, key, times
    )
    if not bool(finite):
        _stop_non_finite(setup, state, float(loss))
    state.model, state.opt_state, state.step = model, opt_state, state.step + 1
    return float(loss)


def _validate(setup: Setup, state: TrainState, history: dict, log: MetricsLog) -> float:
    """Score `state.model` on the validation data, keep it (and write `best.eqx`) when
    it is the best so far; returns the score (inf for a non-finite one)."""
    options = setup.validation
    value = float(
        protocol_mse(
            state.model,
            *setup.val,
            protocol=options.protocol,
            context=options.context,
            convention=setup.objective.convention,
            ar_algorithm=setup.objective.ar_algorithm,
            ts=None if setup.val_times is None else jnp.asarray(setup.val_times),
        )
    )
    value = value if np.isfinite(value) else np.inf
    history["val_step"].append(state.step)
    history["val_mse"].append(value)
    if value < state.best_val:
        state.best_model, state.best_val, state.best_step = state.model, value, state.step
        state.bad = 0
        if setup.folder is not None:
            metadata = {"step": state.step, "val": value}
            save_model(setup.folder / "best.eqx", state.model, metadata=metadata)
    else:
        state.bad += 1
    log.write(step=state.step, val_mse=value, best_val=state.best_val, best_step=state.best_step)
    return value


def _stop_non_finite(setup: Setup, state: TrainState, loss: float):
    """Write the last good state and raise `FloatingPointError`."""
    save_last(setup.folder, state, setup.fingerprint, "non-finite")
    where = f"; the last good state is in {setup.folder / 'last.eqx'}" if setup.folder else ""
    raise FloatingPointError(
        f"training loss, gradient or parameters became non-finite (NaN, inf or beyond "
        f"float32 range; loss {loss}) at step "
        f"{state.step + 1}; stopped with the model from step {state.step}{where}. Lower the "
        "learning rate, check the data scale, or bound the decoder's output (e.g. "
        "decoder_options={'final_activation': 5.0}) so free-running rollouts stay finite"
    )
