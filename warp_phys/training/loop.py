"""The training loop, shared by WARP and the baselines: an optax chain, one jitted step,
minibatches from a seeded shuffler, validation, best-checkpoint keeping, early stopping,
a progress bar, NaN/inf detection and exact resumption."""

import functools
import hashlib
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray
from tqdm.auto import tqdm

from .._conventions import CONVENTIONS
from .._forecast import AR_ALGORITHMS
from ._devices import batch_mesh, replicate, resolve_devices, shard_batch, to_default_device
from .checkpoint import load_model, load_train_state, save_model
from .data import as_pairs, grid_times
from .metrics_log import MetricsLog
from .optim import build_optimizer, default_transition_lr, make_optimizer
from .protocol import EVAL_PROTOCOLS, OBJECTIVES, batch_loss, protocol_mse


@functools.lru_cache(maxsize=32)
def _compiled_step(optimizer_items: tuple, loss_items: tuple):
    """The optimiser and the jitted train step for one set of options (cached, so
    repeated or resumed `train` calls reuse the compilation)."""
    optimizer = build_optimizer(**dict(optimizer_items))
    loss_options = dict(loss_items)

    @eqx.filter_jit
    def step(model, opt_state, inputs, targets, key, ts):
        loss, grads = eqx.filter_value_and_grad(batch_loss)(
            model, inputs, targets, key, ts, **loss_options
        )
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params, value=loss)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
        return eqx.apply_updates(model, updates), opt_state, loss, finite

    return optimizer, step


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _fingerprint(options: dict, key, inputs, targets, times=None) -> dict:
    extra = b"" if times is None else times.tobytes()
    digest = hashlib.sha256(inputs.tobytes() + targets.tobytes() + extra).hexdigest()[:16]
    raw = dict(options, key=np.asarray(jax.random.key_data(key)).ravel().tolist())
    raw["data"] = {"shape": list(inputs.shape), "sha256": digest}
    return json.loads(json.dumps(raw))


def train(
    model,
    data,
    *,
    steps: int = 500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    transition_lr: float | None = None,
    weight_decay: float = 1e-4,
    clip: str = "global_norm",
    clip_value: float = 1.0,
    schedule: str = "constant",
    objective: str = "autoregressive",
    forcing_prob: float = 0.25,
    convention: str = "clean",
    stochastic: bool = False,
    mode: str = "auto",
    ar_algorithm: str = "auto",
    val_data=None,
    val_context: int | None = None,
    val_protocol: str = "forecast",
    val_every: int = 50,
    patience: int | None = None,
    max_seconds: float | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    log_every: int = 10,
    times=None,
    val_times=None,
    devices: int | str = 1,
    key: PRNGKeyArray,
    progress: bool = True,
):
    """Train a sequence model (WARP, GRU, LSTM, Transformer) on trajectories.

    **Arguments:**

    - `model`: an `AbstractSequenceModel`.
    - `data`: training trajectories `(N, T, data_size)`, an `(inputs, targets)` pair,
      or a `systems.Dataset` (see `as_pairs`; one sampled on an irregular grid trains a
      time-aware model at its time stamps, see `grid_times`).
    - `times`, `val_times`: the time stamps `(N, T)` of irregularly sampled training and
      validation data given as arrays (default: a `Dataset`'s own, or a regular grid).
    - `steps`, `batch_size`: optimiser steps and sequences per step. Minibatches are
      drawn without replacement from a permutation per epoch seeded by `key`.
    - `learning_rate`, `optimizer`, `transition_lr`, `weight_decay`, `clip`,
      `clip_value`, `schedule`: see `make_optimizer`.
    - `objective`, `forcing_prob`, `convention`, `stochastic`, `mode`, `ar_algorithm`:
      see `sequence_loss`. The loss is the MSE, or the Gaussian NLL for probabilistic models.
    - `val_data`, `val_context`, `val_protocol`, `val_every`: validation every
      `val_every` steps (and when the time budget ends) under `predict`'s protocol
      (context default T // 4); the best model is kept and returned (the last one if no
      validation took place). Select on a validation split, never on test.
    - `patience`: stop after this many validations without improvement.
    - `max_seconds`: stop on a wall-clock budget (this call's time).
    - `checkpoint_dir`: write `best.eqx`, `last.eqx` (with the optimiser state) and
      `metrics.jsonl` there, atomically; `last.eqx` is written at every validation and
      at the end, and holds the last good state if training hits NaN/inf.
    - `resume`: continue from `checkpoint_dir/last.eqx`; the result is identical to an
      uninterrupted run (unless the first run stopped on its time budget, which adds a
      validation off the schedule). All options but `steps`, `max_seconds`, `patience`,
      `progress`, `log_every` and `devices` (and the data) must be those of the first run.
    - `devices`: data-parallel training over this many local devices (`"auto"`: all of
      `jax.local_devices()`). The default 1 is today's single-device path, unchanged.
      With n > 1 the model and optimiser state are replicated and each minibatch is
      split into n equal parts (`batch_size` must be a multiple of n); the result equals
      single-device training on the same global batch up to float rounding. The
      returned model is on the first local device.
    - `key`: PRNG key of the shuffler, teacher-forcing coins and feedback noise.

    **Returns:** `(model, history)`: the best validated model (the last one without
    `val_data`) and a dict of lists `step`, `loss`, `seconds`, `val_step`, `val_mse`,
    plus `stopped` (`"steps"`, `"early_stopping"` or `"time"`).
    Raises `FloatingPointError` when the loss or gradient becomes NaN/inf.
    """
    inputs, targets = as_pairs(data, "training data")
    times = grid_times(data, model, "training data", times)
    if inputs.shape[2] != model.data_size:
        raise ValueError(
            f"training data has {inputs.shape[2]} channels, model expects {model.data_size}"
        )
    if steps < 1 or batch_size < 1 or val_every < 1:
        raise ValueError(
            f"steps, batch_size and val_every must be >= 1, got {steps}, {batch_size}, {val_every}"
        )
    _check("objective", objective, OBJECTIVES)
    _check("convention", convention, CONVENTIONS)
    _check("ar_algorithm", ar_algorithm, AR_ALGORITHMS)
    _check("val_protocol", val_protocol, EVAL_PROTOCOLS)
    if stochastic and not model.probabilistic:
        raise ValueError("stochastic training needs a probabilistic model (Gaussian NLL)")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    N, T = inputs.shape[:2]
    batch_size = min(batch_size, N)
    n_devices = resolve_devices(devices, batch_size)
    val = None
    if val_data is None:
        val_times = None
    else:
        val = tuple(jnp.asarray(a) for a in as_pairs(val_data, "validation data"))
        val_times = grid_times(val_data, model, "validation data", val_times)
        if (val_times is None) != (times is None):
            raise ValueError("training and validation data must both have time stamps or neither")
        if val[0].shape[2] != model.data_size:
            raise ValueError(f"validation data must have {model.data_size} channels")
        val_context = val_context or max(1, val[0].shape[1] // 4)

    opt_options = dict(
        learning_rate=learning_rate,
        transition_lr=default_transition_lr(model, learning_rate, transition_lr),
        optimizer=optimizer,
        weight_decay=weight_decay,
        clip=clip,
        clip_value=clip_value,
        schedule=schedule,
        steps=steps if schedule == "cosine" else None,
        plateau_factor=0.5,
        plateau_patience=20,
        plateau_accumulation=50,
    )
    make_optimizer(model, **opt_options)  # validates the choices with clear errors
    loss_options = dict(
        objective=objective,
        forcing_prob=float(forcing_prob),
        convention=convention,
        stochastic=bool(stochastic),
        mode=mode,
        ar_algorithm=ar_algorithm,
    )
    opt, train_step = _compiled_step(tuple(opt_options.items()), tuple(loss_options.items()))
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    fingerprint = _fingerprint(
        dict(opt_options, **loss_options, batch_size=batch_size, val_every=val_every,
             val_context=val_context, val_protocol=val_protocol, has_val=val is not None),
        key, inputs, targets, times,
    )  # fmt: skip

    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    done, best_val, best_step, bad = 0, np.inf, None, 0
    best_model = model
    if resume:
        if folder is None:
            raise ValueError("resume=True needs the checkpoint_dir of the run to continue")
        model = load_model(folder / "last.eqx", like=model)
        header, opt_state = load_train_state(folder / "last.eqx", opt_state)
        meta = header["metadata"]
        if meta.get("train_options") != fingerprint:
            old = meta.get("train_options") or {}
            keys = set(old) | set(fingerprint)
            changed = sorted(k for k in keys if old.get(k) != fingerprint.get(k))
            raise ValueError(
                f"cannot resume {folder}: options differ from the first run: {', '.join(changed)}"
            )
        done, bad, best_step = meta["step"], meta["bad_validations"], meta["best_step"]
        best_val = np.inf if meta["best_val"] is None else meta["best_val"]
        best_model = model
        if val is not None and (folder / "best.eqx").is_file():
            best_model = load_model(folder / "best.eqx", like=model)
    log = MetricsLog(folder, resume_from=done if resume else None)
    mesh = batch_mesh(n_devices) if n_devices > 1 else None
    place = jnp.asarray if mesh is None else functools.partial(shard_batch, mesh)
    if mesh is not None:
        model, opt_state = replicate((model, opt_state), mesh)

    def state_metadata(step, stopped):
        return {
            "step": step,
            "best_val": None if not np.isfinite(best_val) else best_val,
            "best_step": best_step,
            "bad_validations": bad,
            "stopped": stopped,
            "train_options": fingerprint,
        }

    def save_last(step, stopped=None):
        if folder is not None:
            save_model(
                folder / "last.eqx",
                model,
                metadata=state_metadata(step, stopped),
                train_state=opt_state,
            )

    shuffle_key, step_key = jax.random.split(key)
    seed = np.asarray(jax.random.key_data(shuffle_key)).ravel().tolist()
    per_epoch = N // batch_size
    permutation = functools.lru_cache(maxsize=2)(
        lambda epoch: np.random.default_rng([*seed, epoch]).permutation(N)
    )
    history = {"step": [], "loss": [], "seconds": [], "val_step": [], "val_mse": []}
    stopped, step = "steps", done
    start = time.perf_counter()
    bar = tqdm(total=steps, initial=done, disable=not progress, desc="training", unit="step")
    postfix = {}
    for step in range(done + 1, steps + 1):
        epoch, index = divmod(step - 1, per_epoch)
        rows = permutation(epoch)[index * batch_size : (index + 1) * batch_size]
        new_model, new_opt_state, loss, finite = train_step(
            model,
            opt_state,
            place(inputs[rows]),
            place(targets[rows]),
            jax.random.fold_in(step_key, step),
            None if times is None else place(times[rows]),
        )
        if not bool(finite):
            bar.close()
            save_last(step - 1, stopped="non-finite")
            where = f"; the last good state is in {folder / 'last.eqx'}" if folder else ""
            raise FloatingPointError(
                f"training loss or gradient became non-finite (loss {float(loss)}) at step "
                f"{step}; stopped with the model from step {step - 1}{where}. Lower the "
                "learning rate, check the data scale, or bound the decoder's output (e.g. "
                "decoder_options={'final_activation': 5.0}) so free-running rollouts stay finite"
            )
        model, opt_state, loss = new_model, new_opt_state, float(loss)
        elapsed = time.perf_counter() - start
        speed = (step - done) * batch_size / max(elapsed, 1e-9)
        history["step"].append(step)
        history["loss"].append(loss)
        history["seconds"].append(elapsed)
        if step % log_every == 0 or step == steps:
            log.write(step=step, loss=loss, seconds=round(elapsed, 3), seq_per_s=round(speed, 1))
        out_of_time = max_seconds is not None and elapsed >= max_seconds
        validate = step % val_every == 0 or out_of_time
        if val is not None and validate:
            value = float(
                protocol_mse(
                    model,
                    *val,
                    protocol=val_protocol,
                    context=val_context,
                    convention=convention,
                    ar_algorithm=ar_algorithm,
                    ts=None if val_times is None else jnp.asarray(val_times),
                )
            )
            value = value if np.isfinite(value) else np.inf
            history["val_step"].append(step)
            history["val_mse"].append(value)
            if value < best_val:
                best_model, best_val, best_step, bad = model, value, step, 0
                if folder is not None:
                    save_model(folder / "best.eqx", model, metadata={"step": step, "val": value})
            else:
                bad += 1
            log.write(step=step, val_mse=value, best_val=best_val, best_step=best_step)
            postfix["val"] = f"{value:.4g}"
            if patience is not None and bad >= patience:
                stopped = "early_stopping"
        if out_of_time and stopped == "steps":
            stopped = "time"
        if validate or step == steps or stopped != "steps":
            save_last(step, None if stopped == "steps" else stopped)
        postfix.update(loss=f"{loss:.4g}", seq_s=f"{speed:.0f}")
        bar.set_postfix(postfix)
        bar.update(1)
        if stopped != "steps":
            break
    bar.close()
    if folder is not None and best_step is None and step > done:
        save_model(folder / "best.eqx", model, metadata={"step": step})
    history["stopped"] = stopped
    validated = best_step is not None
    result = best_model if validated else model
    return (result if mesh is None else to_default_device(result)), history
