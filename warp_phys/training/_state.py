"""The state `train` carries from step to step, and its checkpoint `last.eqx`: written
at every validation and at the end, read back by a resumed run, which must have the
same options (the fingerprint) as the first one, but for the resumable ones (the step
sizes, the length and budget of the run, patience, devices)."""

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from ..decoders._lexer import short
from .checkpoint import load_model, load_train_state, read_header, save_model
from .options import Options, stored_options


@dataclasses.dataclass
class TrainState:
    """The model and optimiser state after `step` steps, and the model selection so far:
    the best model, its validation score and step, and the validations since then
    without improvement (`bad`); the training time so far (`seconds`, over resumes:
    the time budget and a time-sized schedule read it), the steps skipped as
    non-finite (`skipped`), how many of the last steps were (`non_finite`) and how often
    the run went back to its best model after `max_non_finite` of them (`rescues`; each
    halves the learning rate from then on)."""

    model: eqx.Module
    opt_state: object
    best_model: eqx.Module
    step: int = 0
    best_val: float = np.inf
    best_step: int | None = None
    bad: int = 0
    seconds: float = 0.0
    skipped: int = 0
    non_finite: int = 0
    rescues: int = 0


def fingerprint(options: tuple[Options, ...], loop: dict, key, inputs, targets, times) -> dict:
    """Everything a resumed run must share with the first one, as JSON-able data: the
    flat options of every group but the resumable ones, the `loop` items, the key and a
    digest of the data."""
    extra = b"" if times is None else times.tobytes()
    digest = hashlib.sha256(inputs.tobytes() + targets.tobytes() + extra).hexdigest()[:16]
    raw = {k: v for group in options for k, v in group.fingerprint().items()}
    raw.update(loop, key=np.asarray(jax.random.key_data(key)).ravel().tolist())
    raw["data"] = {"shape": list(inputs.shape), "sha256": digest}
    return json.loads(json.dumps(raw))


def save_last(folder: Path | None, state: TrainState, stamp: dict, stopped: str | None) -> None:
    """Write `folder/last.eqx`: the model, the optimiser state and, as metadata, the
    step, the model selection, why training stopped (None: it may go on) and the
    fingerprint `stamp`. Nothing without a folder."""
    if folder is None:
        return
    metadata = {
        "step": state.step,
        "best_val": None if not np.isfinite(state.best_val) else state.best_val,
        "best_step": state.best_step,
        "bad_validations": state.bad,
        "stopped": stopped,
        "seconds": state.seconds,
        "skipped_steps": state.skipped,
        "non_finite_in_a_row": state.non_finite,
        "rescues": state.rescues,
        "train_options": stamp,
    }
    save_model(folder / "last.eqx", state.model, metadata=metadata, train_state=state.opt_state)


# metadata of last.eqx: (types, what it must be)
_RESUME_FIELDS = {
    "step": ((int,), "a non-negative integer"),
    "best_val": ((int, float, type(None)), "a number or null"),
    "best_step": ((int, type(None)), "a non-negative integer or null"),
    "bad_validations": ((int,), "a non-negative integer"),
    "stopped": ((str, type(None)), "a string or null"),
    "train_options": ((dict,), "a JSON object"),
}
# fields added later, and their values in checkpoints written before
_LATER_FIELDS = {
    "seconds": ((int, float), "a non-negative number", 0.0),
    "skipped_steps": ((int,), "a non-negative integer", 0),
    "non_finite_in_a_row": ((int,), "a non-negative integer", 0),
    "rescues": ((int,), "a non-negative integer", 0),
}


def resume_metadata(path: Path, steps: int | None, max_seconds: float | None = None) -> dict:
    """The metadata of the checkpoint `path` a run resumes from, each field checked (a
    `ValueError` naming a missing or malformed one); a `ValueError` too when the run
    already reached `steps` or spent `max_seconds`, as there is nothing left to train."""
    meta = dict(read_header(path)[0]["metadata"])
    for name, (*_, default) in _LATER_FIELDS.items():
        meta.setdefault(name, default)
    fields = {**_RESUME_FIELDS, **{k: v[:2] for k, v in _LATER_FIELDS.items()}}
    for name, (kinds, what) in fields.items():
        value = meta.get(name)
        ok = isinstance(value, kinds) and not isinstance(value, bool)
        if ok and name == "seconds":
            ok = math.isfinite(value) and value >= 0
        if not ok or (isinstance(value, int) and name != "best_val" and value < 0):
            got = "it is missing" if name not in meta else f"got {short(value, 40)}"
            raise ValueError(f"{path}: checkpoint metadata field {name!r} must be {what}; {got}")
    if steps is not None and meta["step"] >= steps:
        raise ValueError(
            f"the run in {path.parent} already finished at step {meta['step']} "
            f"(steps {steps}); raise steps (--steps) to continue it"
        )
    if max_seconds is not None and meta["seconds"] >= max_seconds:
        raise ValueError(
            f"the run in {path.parent} already trained {meta['seconds']:.1f} s (max_seconds "
            f"{max_seconds:g}); raise max_seconds (--max-seconds) to continue it"
        )
    return meta


def resume_state(
    folder: Path | None,
    model,
    opt_state,
    stamp: dict,
    has_val: bool,
    steps: int | None,
    max_seconds: float | None,
) -> TrainState:
    """The state stored in `folder/last.eqx` (and the best model in `best.eqx`), in the
    structure of `model` and `opt_state`; a `ValueError` naming the options that differ
    from the first run's, or when the run already reached `steps`."""
    if folder is None:
        raise ValueError("resume=True needs the checkpoint_dir of the run to continue")
    meta = resume_metadata(folder / "last.eqx", steps, max_seconds)
    # options that are no longer fingerprinted (made resumable since) do not count;
    # those added since take the value the first run had
    old = stored_options(meta["train_options"])
    changed = sorted(k for k in stamp if old.get(k) != stamp[k])
    if changed:
        raise ValueError(
            f"cannot resume {folder}: options differ from the first run: {', '.join(changed)}"
        )
    model = load_model(folder / "last.eqx", like=model)
    _, opt_state = load_train_state(folder / "last.eqx", opt_state)
    best_model = model
    if has_val and (folder / "best.eqx").is_file():
        best_model = load_model(folder / "best.eqx", like=model)
    return TrainState(
        model,
        opt_state,
        best_model,
        step=meta["step"],
        best_val=np.inf if meta["best_val"] is None else meta["best_val"],
        best_step=meta["best_step"],
        bad=meta["bad_validations"],
        seconds=float(meta["seconds"]),
        skipped=meta["skipped_steps"],
        non_finite=meta["non_finite_in_a_row"],
        rescues=meta["rescues"],
    )


def stop_non_finite(folder: Path | None, state: TrainState, stamp: dict, loss: float):
    """Write the last good state (the one before the `state.non_finite` non-finite steps
    in a row, which a resumed run takes again) and raise `FloatingPointError`."""
    bad = state.non_finite
    state.step, state.skipped, state.non_finite = state.step - bad, state.skipped - bad, 0
    save_last(folder, state, stamp, "non-finite")
    where = f"; the last good state is in {folder / 'last.eqx'}" if folder else ""
    steps = f"step {state.step + 1}" if bad == 1 else f"steps {state.step + 1}-{state.step + bad}"
    raise FloatingPointError(
        f"training loss, gradient or parameters became non-finite (NaN, inf or beyond "
        f"float32 range; loss {loss}) at {steps}; stopped with the model from step "
        f"{state.step}{where} ({bad} non-finite step(s) in a row, each skipped, stop a run: "
        f"max_non_finite). Lower the learning rate, check the data scale, or bound the "
        "decoder's output (e.g. decoder_options={'final_activation': 5.0}) so free-running "
        "rollouts stay finite"
    )


# after max_non_finite non-finite steps in a row: back to the best model, lr x this
RESCUE_LR_FACTOR = 0.5
MAX_RESCUES = 3


def rescue(state: TrainState, fresh_opt_state, history: dict, log) -> bool:
    """After `max_non_finite` skipped steps in a row the model sits where most minibatches
    overflow: go back to the best validated model with a fresh optimiser state
    (`fresh_opt_state(model)`) and the learning rate times `RESCUE_LR_FACTOR` from then
    on, at most `MAX_RESCUES` times; the step is kept in `history["rescues"]` and in the
    metrics `log`. **Returns:** whether it did (False: no validated model yet, or no
    rescue left)."""
    if state.best_step is None or state.rescues >= MAX_RESCUES:
        return False
    state.model, state.non_finite = state.best_model, 0
    state.opt_state = fresh_opt_state(state.model)
    state.rescues += 1
    history["rescues"].append(state.step)
    log.write(step=state.step, rescue=state.rescues, back_to_step=state.best_step)
    return True
