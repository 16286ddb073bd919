"""Run folders: train a configured model on a system or on your data, and load it back.

A run folder holds `config.json` (the resolved `RunConfig`, flat), `normalizer.json`
(the training split's statistics, so predictions can be mapped back to raw units),
`best.eqx`, `last.eqx` (with the optimiser state, for `--resume`), `metrics.jsonl`,
`summary.json` and, for a run on a data file or arrays, `data.json` (the channel names
and where the data came from). Every command (`evaluate`, `reconstruct`, `plot`, the
demo) reads and writes this one layout. While a run trains, `.lock` holds its PID.
`load_run` checks every file it reads (see `_run_files`); the README's "What a run
folder guarantees" says what that covers.
"""

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

import systems
from systems import atomic_write_json

from .._interface import AbstractSequenceModel
from ..baselines import count_parameters
from ._devices import resolve_devices
from ._lock import run_lock
from ._run_files import check_model_config, read_json, write_start
from ._setup import run_length
from ._state import resume_metadata
from .checkpoint import load_model
from .config import RESUMABLE, RunConfig, automatic_options, stored_options
from .data import IN_MEMORY, Normalizer, as_pairs, data_splits, grid_times, mean_step
from .loop import train
from .models import MODEL_KINDS, build_model, drive_features_for


@dataclasses.dataclass
class Run:
    """A trained run: its folder, config, model (in normalised units), normaliser and,
    for a run on user data, the channel names (`data.json`)."""

    folder: Path
    config: RunConfig
    model: AbstractSequenceModel
    normalizer: Normalizer
    channels: list[str] | None = None

    @property
    def eval_protocol(self) -> str:
        """`"forecast"` or `"full"` (`train_run` resolves `"auto"`)."""
        return "forecast" if self.config.eval_protocol == "auto" else self.config.eval_protocol


def load_dataset(config: RunConfig, split: str, n: int | None = None) -> systems.Dataset:
    """The `systems.Dataset` of the configured system for `split` (`n` trajectories,
    default the config's count for that split). For a run on a data file, `train` and
    `val` are its training and validation parts (the first `n` of them if `n` is given);
    such runs have no `test` or `ood` split."""
    if config.data is not None:
        if config.data == IN_MEMORY:
            raise ValueError("this run was trained on arrays in memory; pass the data explicitly")
        if split not in ("train", "val"):
            raise ValueError(
                f"a run trained on {config.data} has no {split!r} split (only train and val); "
                "give new trajectories with `--input FILE` (reconstruct, evaluate, params)"
            )
        chosen = dict(zip(("train", "val"), data_splits(config), strict=True))[split]
        return chosen if n is None else systems.subset(chosen, np.arange(min(n, len(chosen))))
    n = n or split_size(config, split)
    seed = config.seed if config.data_seed is None else config.data_seed
    return systems.generate(config.system_name, n, split=split, seed=seed)


def split_size(config: RunConfig, split: str) -> int:
    """The configured number of trajectories of a system's `split` (`n_test` for `ood`)."""
    return {"train": config.n_train, "val": config.n_val}.get(split, config.n_test)


def run_dataset(
    run: Run, split: str = "test", count: int | None = None, data=None
) -> tuple[systems.Dataset, int]:
    """Trajectories to draw or score a run on, and how many the split has.

    **Arguments:**

    - `run`: a loaded `Run`.
    - `split`: `"test"`, `"val"`, `"train"` or `"ood"`.
    - `count`: how many leading trajectories of a generated split to make (data sets
      are prefix-consistent, so only those are solved); default all.
    - `data`: a data file (`systems.load`) to use instead of the run's data.

    **Returns:** `(dataset, size)`: a `systems.Dataset` in raw units, and the number of
    trajectories of the split (valid indices `0 .. size - 1`). Raises `ValueError` when
    the data do not have the model's channel count.
    """
    if data is not None:
        dataset = systems.load(data)
        size = len(dataset)
    elif run.config.data is not None:
        dataset = load_dataset(run.config, split)
        size = len(dataset)
    else:
        size = split_size(run.config, split)
        dataset = load_dataset(run.config, split, n=max(1, min(count or size, size)))
    if dataset.y.shape[2] != run.model.data_size:
        raise ValueError(
            f"the data have {dataset.y.shape[2]} channels but the model predicts "
            f"{run.model.data_size}"
        )
    return dataset, int(size)


def train_run(
    config: RunConfig,
    out,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    data=None,
    val_data=None,
) -> tuple[Run, dict]:
    """Generate (or read) the configured data, train the configured model and write the
    run folder.

    **Arguments:**

    - `config`: a `RunConfig` (a `system`, or a `data` file with optional `val_data`).
    - `out`: the run folder.
    - `data`, `val_data`: train on these instead, `(N, T, D)` arrays or `systems.Dataset`s
      in raw units; the validation part is carved out as for a file when `val_data` is
      not given, so the result equals a run on the same arrays written to a file.
    - `resume`: continue the run in `out` from its `last.eqx` (same config except
      `steps`, `max_seconds`, `patience`, `devices`, `lr`, `transition_lr`;
      `config.json` then records the new values).
    - `overwrite`: replace an existing run in `out`.

    The folder is locked for the call (`run_lock`: a second process gets a one-line
    `BlockingIOError`); `--out` naming a file is a `NotADirectoryError`.

    **Returns:** `(run, history)` with the best model; see `train` for `history`.
    """
    out = Path(out)
    config = _resolve_source(config, data is not None)
    with run_lock(out):
        if (out / "config.json").exists() and not (resume or overwrite):
            raise ValueError(
                f"{out} already holds a run; pass resume to continue it or overwrite to replace it"
            )
        if resume:
            config = _check_resume(out, config)
        config, train_set, val_set = _prepare_data(config, data, val_data)
        inputs, targets = as_pairs(train_set, "training data")
        resolve_devices(config.devices, min(config.batch_size, len(inputs)))  # before any file
        T, d = targets.shape[1:]
        normalizer = Normalizer.fit(targets) if config.normalize else Normalizer.identity(d)
        model_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed))
        raw_times = train_set.extras.get("t")
        time_step = None if raw_times is None else mean_step(raw_times)
        model = build_model(config, d, T, key=model_key, normalizer=normalizer, time_step=time_step)
        write_start(out, config, normalizer, train_set, val_set)
        val_inputs, val_targets = as_pairs(val_set, "validation data")
        start = time.perf_counter()
        model, history = train(
            model,
            (np.asarray(normalizer.apply(inputs)), np.asarray(normalizer.apply(targets))),
            steps=config.steps,
            batch_size=config.batch_size,
            optimizer=config.optimizer_options,
            objective=config.objective_options,
            validation=config.validation_options,
            val_data=(normalizer.apply(val_inputs), normalizer.apply(val_targets)),
            times=grid_times(train_set, model, "training data"),
            val_times=grid_times(val_set, model, "validation data"),
            max_seconds=config.max_seconds,
            max_non_finite=config.max_non_finite,
            steps_per_call=config.steps_per_call,
            devices=config.devices,
            checkpoint_dir=out,
            resume=resume,
            key=train_key,
            progress=progress,
        )
        seconds = round(time.perf_counter() - start, 2)
        atomic_write_json(out / "summary.json", _summary(model, history, seconds, targets.shape))
    return Run(out, config, model, normalizer, train_set.config.get("channels")), history


def _summary(model, history: dict, seconds: float, shape) -> dict:
    """`summary.json`: the model, how far and why training stopped, the time taken."""
    return {
        "model_class": type(model).__name__,
        "model_config": model.config,
        "parameters": count_parameters(model),
        "steps_done": history["step"][-1] if history["step"] else None,
        "stopped": history["stopped"],
        "skipped_steps": history["skipped"],
        "rescues": history["rescues"],
        "best_val_mse_normalized": min(history["val_mse"], default=None),
        "train_seconds": seconds,
        "data_shape": list(shape),
    }


def _check_resume(out: Path, config: RunConfig) -> RunConfig:
    """Before any file is written: `out` holds a run that `config` may continue (same options
    but the resumable ones) with steps left; `config` with its automatic options resolved."""
    if not (out / "last.eqx").is_file():
        raise FileNotFoundError(f"no run to resume in {out} (no last.eqx)")
    config = _check_resumable(load_run(out, "last").config, config, out)
    length = run_length(config.steps, config.max_seconds)
    resume_metadata(out / "last.eqx", length, config.max_seconds)
    return config


def _resolve_source(config: RunConfig, in_memory: bool) -> RunConfig:
    """The data source as stored in the run: `msd` by default, absolute file paths (so
    the run folder works from any directory), or `IN_MEMORY`."""
    if in_memory:
        return config.replace(system=None, data=IN_MEMORY, val_data=None)
    if config.data is None:
        return config.replace(system=config.system_name)
    paths = {k: getattr(config, k) for k in ("data", "val_data")}
    return config.replace(**{k: v and str(Path(v).resolve()) for k, v in paths.items()})


def _prepare_data(config: RunConfig, data, val_data):
    """The training and validation `Dataset`s, and the config as the run stores it (the
    `"auto"` protocol: full for input/target tasks; the context: a quarter of the steps;
    the data seed and `automatic_options` explicit). Both splits outlast the context."""
    if config.data is None:
        train_set, val_set = load_dataset(config, "train"), load_dataset(config, "val")
    else:
        train_set, val_set = data_splits(config, data, val_data)
    protocol = config.eval_protocol
    if protocol == "auto":
        protocol = "full" if "inputs" in train_set.extras else "forecast"
    config = config.replace(
        eval_protocol=protocol,
        context=config.context or max(1, val_set.y.shape[1] // 4),
        data_seed=config.seed if config.data_seed is None else config.data_seed,
        drive_features=drive_features_for(config),
    )
    config = config.replace(**automatic_options(config))
    source, context = config.data or config.system, config.context
    for name, dataset in (("training", train_set), ("validation", val_set)):
        steps = dataset.y.shape[1]
        if not 1 <= context < steps:
            raise ValueError(
                f"too few steps for the context: the {name} data ({source}) have {steps} "
                f"steps, context {context} needs at least {context + 1}"
            )
    return config, train_set, val_set


def _check_resumable(stored: RunConfig, config: RunConfig, folder) -> RunConfig:
    """A resumed run may change only `RESUMABLE` options; `config`, its None ones from `stored`."""
    old, new = stored.to_dict(), config.to_dict()
    auto = ("data_seed", "context", "drive_features", "forcing_prob", "train_context")
    words = dict.fromkeys(("eval_protocol", "time_reduction", "free_run"), "auto")
    later = dict.fromkeys(auto) | words  # None / "auto": resolved as in the stored run
    changed = [k for k in old if k not in RESUMABLE and old[k] != new[k] != later.get(k, old[k])]
    if changed:
        raise ValueError(
            f"cannot resume {folder}: options differ from the first run: {', '.join(changed)} "
            f"(only {', '.join(RESUMABLE)} may change)"
        )
    return config.replace(**{k: old[k] for k in auto if new[k] is None})


def load_run(folder, checkpoint: str = "best") -> Run:
    """A run folder written by `train_run` (or `warp-phys train`, or the demo), with its
    `best` (or `last`) model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no run folder at {folder}")
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    for name in ("config.json", "normalizer.json", f"{checkpoint}.eqx"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a complete run folder: {name} is missing")
    stored = read_json(folder, "config.json")
    if not isinstance(stored, dict):
        raise ValueError(f"{folder}: config.json must hold a JSON object of options")
    config = RunConfig.from_dict(stored_options(stored), source=str(folder / "config.json"))
    normalizer = Normalizer.from_dict(
        read_json(folder, "normalizer.json"), source=str(folder / "normalizer.json")
    )
    path = folder / f"{checkpoint}.eqx"
    model = load_model(path)
    if type(model) is not MODEL_KINDS[config.model]:
        raise ValueError(
            f"{folder}: {checkpoint}.eqx holds a {type(model).__name__} but config.json "
            f"describes a {config.model} model"
        )
    check_model_config(path, model, config, normalizer)
    data = read_json(folder, "data.json") if (folder / "data.json").is_file() else {}
    channels = data.get("channels") if isinstance(data, dict) else None
    return Run(folder, config, model, normalizer, channels)
