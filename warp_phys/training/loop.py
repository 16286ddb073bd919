"""The training loop, shared by WARP and the baselines: an optax chain, a jitted function
of K steps, minibatches from a seeded shuffler, a learning-rate schedule sized in steps
or in wall-clock time, validation, best-checkpoint keeping, early stopping, a progress
bar, skipping of non-finite steps (and rescues from a run of them) and exact resumption.

`train` reads as setup (`_setup.prepare`: the arrays, the options resolved, the
compiled steps; `_state.resume_state`), the loop (`_loop`, `_take_steps`, `_validate`)
and the checkpoints (`_state.save_last`, `best.eqx` in `_validate`).
"""

import contextlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray
from tqdm.auto import tqdm

from ._devices import replicate, to_default_device
from ._lock import run_lock
from ._setup import MAX_NON_FINITE, STEPS_PER_CALL, Setup, prepare, shuffler
from ._state import RESCUE_LR_FACTOR, TrainState, rescue, resume_state, save_last, stop_non_finite
from .checkpoint import save_model
from .metrics_log import MetricsLog
from .optim import schedule_factor
from .options import ObjectiveOptions, OptimizerOptions, ValidationOptions
from .protocol import protocol_mse


def train(
    model,
    data,
    *,
    steps: int | None = None,
    batch_size: int = 32,
    optimizer: OptimizerOptions | None = None,
    objective: ObjectiveOptions | None = None,
    validation: ValidationOptions | None = None,
    val_data=None,
    times=None,
    val_times=None,
    max_seconds: float | None = None,
    max_non_finite: int = MAX_NON_FINITE,
    steps_per_call: int = STEPS_PER_CALL,
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
      replacement from a permutation per epoch seeded by `key`. `steps=None`: as many
      as `max_seconds` allows, or `DEFAULT_STEPS` (5000) without a time budget.
    - `optimizer`: an `OptimizerOptions` (see `make_optimizer`). The cosine schedule
      runs over `steps`, or over the `max_seconds` budget (the training time so far
      over it, read before each call of `steps_per_call` steps) when `steps` is None,
      so that it ends at its low rate where the run ends.
    - `objective`: an `ObjectiveOptions` (see `sequence_loss`); the loss is the MSE, or
      the Gaussian NLL for probabilistic models.
    - `validation`: a `ValidationOptions`: `val_data` is scored every `every` steps (and
      when the time budget ends) under `predict`'s `protocol` after `context` steps
      (default T // 4; protocol `"auto"`: `"full"` when the training inputs differ from
      the targets); the best model is kept; `patience`: stop after this many
      validations without improvement. Select on a validation split, never on test.
    - `times`, `val_times`: time stamps `(N, T)` of irregularly sampled data given as
      arrays (default: a `Dataset`'s own, or a regular grid).
    - `max_seconds`: stop on a wall-clock budget: the training time of the run, over
      resumes (compilation included).
    - `max_non_finite`: a step whose loss, gradient or updated parameters are NaN/inf
      is skipped (model and optimiser state stay as they were; `history["skipped"]`
      and the `skipped` count of `metrics.jsonl` record it); after this many in a row the
      run goes back to its best validated model with a fresh optimiser state and half the
      learning rate from then on (a rescue, `MAX_RESCUES` at most; `history["rescues"]`),
      or, without a validated model or a rescue left, stops with `FloatingPointError`.
    - `steps_per_call`: steps fused in one jitted call (a `lax.scan`: fewer host round
      trips). Logging is per step; validation, checkpoints, the time check and the
      time-sized schedule's progress happen between calls, which end at every
      validation step and at `steps`, so a step-bounded run is the same for every value
      (up to float rounding) and resumes exactly.
    - `devices`: data-parallel training over this many local devices (`"auto"`: all);
      `batch_size` must be a multiple of it; equal to one device up to float rounding
      (see `_devices`). The model comes back on the first local device.
    - `checkpoint_dir`: write `best.eqx`, `last.eqx` (with the optimiser state; at every
      validation, at the end, and the last good state on NaN/inf) and `metrics.jsonl`.
    - `resume`: continue from `checkpoint_dir/last.eqx`, identical to an uninterrupted
      run (unless the first stopped on its time budget, which adds a validation). Only
      `steps`, `max_seconds`, `patience`, `devices`, `progress`, `log_every`,
      `max_non_finite`, `steps_per_call` and the learning rates `lr`, `transition_lr`
      may change (the optimiser state is kept; a new rate applies from the next step,
      and so does a new length, to which the cosine schedule is re-sized).
      A run that already reached `steps` or spent `max_seconds` is a `ValueError`. A
      `checkpoint_dir` is locked while `train` runs (see `run_lock`).
    - `key`: PRNG key of the shuffler, teacher-forcing coins and feedback noise.

    **Returns:** `(model, history)`: the best validated model (the last one without
    `val_data`) and a dict of lists `step`, `loss`, `seconds` (the run's training time
    at the end of the call that took the step), `val_step`, `val_mse`, `skipped` (the
    steps skipped as non-finite), `rescues` (the steps after which a rescue went back to
    the best model), plus `stopped` (`"steps"`, `"early_stopping"` or
    `"time"`). Raises `FloatingPointError` after `max_non_finite` non-finite steps in
    a row that no rescue takes (`last.eqx` then holds the state before them, as step
    number the last one before them).
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
        max_non_finite=max_non_finite,
        steps_per_call=steps_per_call,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        key=key,
    )
    opt_state = chain.init(eqx.filter(model, eqx.is_inexact_array))
    with contextlib.nullcontext() if setup.folder is None else run_lock(setup.folder):
        if resume:
            has_val = setup.val is not None
            state = resume_state(
                setup.folder,
                model,
                opt_state,
                setup.fingerprint,
                has_val,
                setup.steps,
                setup.max_seconds,
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
    """Steps `state.step + 1 ..` up to `setup.steps` or the time budget, validating and
    checkpointing on the way; `state` ends at the last step (its best model kept).
    **Returns:** the history."""
    shuffle_key, step_key = jax.random.split(key)
    rows_of = shuffler(shuffle_key, len(setup.inputs), setup.batch_size)
    names = ("step", "loss", "seconds", "val_step", "val_mse", "skipped", "rescues")
    history = {name: [] for name in names}
    done, stopped, postfix = state.step, "steps", {}
    call_start = time.perf_counter()
    run_start = call_start - state.seconds  # the run's clock, over resumes
    bar = tqdm(total=setup.steps, initial=done, disable=not progress, desc="training", unit="step")
    with bar:
        while stopped == "steps" and (setup.steps is None or state.step < setup.steps):
            first, count = state.step + 1, _call_length(setup, state.step)
            rows = np.stack([rows_of(n) for n in range(first, first + count)])
            losses, applied, factors = _take_steps(setup, state, rows, first, step_key)
            now = time.perf_counter()
            state.seconds = now - run_start
            speed = (first + count - 1 - done) * setup.batch_size / max(now - call_start, 1e-9)
            taken = zip(range(first, first + count), losses, applied, factors, strict=True)
            for step, loss, ok, factor in taken:
                rates = dict(lr=float(setup.optimizer.lr * factor), seq_per_s=round(speed, 1))
                _record(setup, state, history, log, step, float(loss), bool(ok), rates)
            out_of_time = setup.max_seconds is not None and state.seconds >= setup.max_seconds
            validate = state.step % setup.validation.every == 0 or out_of_time
            if setup.val is not None and validate:
                postfix["val"] = f"{_validate(setup, state, history, log):.4g}"
                patience = setup.validation.patience
                if patience is not None and state.bad >= patience:
                    stopped = "early_stopping"
            if out_of_time and stopped == "steps":
                stopped = "time"
            if validate or state.step == setup.steps or stopped != "steps":
                reason = None if stopped == "steps" else stopped  # None: the run may go on
                save_last(setup.folder, state, setup.fingerprint, reason)
            bar.set_postfix(dict(postfix, loss=f"{history['loss'][-1]:.4g}", seq_s=f"{speed:.0f}"))
            bar.update(count)
    if setup.folder is not None and state.best_step is None and state.step > done:
        save_model(setup.folder / "best.eqx", state.model, metadata={"step": state.step})
    history["stopped"] = stopped
    return history


def _call_length(setup: Setup, step: int) -> int:
    """The steps of the next call after `step`: up to `steps_per_call`, ending at the
    next multiple of it (so a resumed run makes the same calls), at the next validation
    and at `steps`."""
    per_call = setup.steps_per_call
    count = per_call - step % per_call
    if setup.val is not None:
        count = min(count, setup.validation.every - step % setup.validation.every)
    return count if setup.steps is None else min(count, setup.steps - step)


def _take_steps(setup: Setup, state: TrainState, rows: np.ndarray, first: int, key):
    """Steps `first ..` on the minibatches `rows` `(K, batch)` in one call; `state`'s
    model and optimiser state move on to them (non-finite steps skipped; none after
    `max_non_finite` in a row). **Returns:** the losses and whether each step was
    applied and the learning-rate factors, `(K,)` NumPy arrays."""
    inputs, targets, times = (
        None if a is None else setup.place(a[rows])
        for a in (setup.inputs, setup.targets, setup.times)
    )
    numbers = np.arange(first, first + len(rows))
    progress = np.array([setup.progress(n, state.seconds) for n in numbers])
    factors = schedule_factor(setup.optimizer, progress) * RESCUE_LR_FACTOR**state.rescues
    model, opt_state, losses, applied = setup.train_steps(
        state.model,
        state.opt_state,
        inputs,
        targets,
        times,
        key,
        jnp.asarray(numbers, jnp.int32),
        factors,
        jnp.asarray(state.non_finite, jnp.int32),
        jnp.asarray(setup.max_non_finite, jnp.int32),
    )
    state.model, state.opt_state = model, opt_state
    return np.asarray(losses), np.asarray(applied), np.asarray(factors)


def _record(setup, state: TrainState, history, log, step: int, loss: float, ok: bool, rates):
    """Account for one step taken (`ok`) or skipped: the history, the log row (with
    `rates`: the step's learning rate, the speed), and the stop after `max_non_finite`
    skipped steps in a row."""
    state.step = step
    state.non_finite = 0 if ok else state.non_finite + 1
    state.skipped += not ok
    if not ok:
        history["skipped"].append(step)
    for name, value in (("step", step), ("loss", loss), ("seconds", state.seconds)):
        history[name].append(value)
    if step % setup.log_every == 0 or step == setup.steps or not ok:
        seconds = round(state.seconds, 3)
        log.write(step=step, loss=loss, skipped=state.skipped, seconds=seconds, **rates)
    rescued = lambda: rescue(state, setup.fresh_opt_state, history, log)
    if state.non_finite >= setup.max_non_finite and not rescued():
        stop_non_finite(setup.folder, state, setup.fingerprint, loss)


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
