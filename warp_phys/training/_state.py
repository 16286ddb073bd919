"""The state `train` carries from step to step, and its checkpoint `last.eqx`: written
at every validation and at the end, read back by a resumed run, which must have the
same options (the fingerprint) as the first one."""

import dataclasses
import hashlib
import json
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .checkpoint import load_model, load_train_state, save_model
from .options import Options


@dataclasses.dataclass
class TrainState:
    """The model and optimiser state after `step` steps, and the model selection so far:
    the best model, its validation score and step, and the validations since then
    without improvement (`bad`)."""

    model: eqx.Module
    opt_state: object
    best_model: eqx.Module
    step: int = 0
    best_val: float = np.inf
    best_step: int | None = None
    bad: int = 0


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
        "train_options": stamp,
    }
    save_model(folder / "last.eqx", state.model, metadata=metadata, train_state=state.opt_state)


def resume_state(folder: Path | None, model, opt_state, stamp: dict, has_val: bool) -> TrainState:
    """The state stored in `folder/last.eqx` (and the best model in `best.eqx`), in the
    structure of `model` and `opt_state`; a `ValueError` naming the options that differ
    from the first run's."""
    if folder is None:
        raise ValueError("resume=True needs the checkpoint_dir of the run to continue")
    model = load_model(folder / "last.eqx", like=model)
    header, opt_state = load_train_state(folder / "last.eqx", opt_state)
    meta = header["metadata"]
    if meta.get("train_options") != stamp:
        old = meta.get("train_options") or {}
        changed = sorted(k for k in set(old) | set(stamp) if old.get(k) != stamp.get(k))
        raise ValueError(
            f"cannot resume {folder}: options differ from the first run: {', '.join(changed)}"
        )
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
    )
