"""Run folders: train a configured model on a system, and load it back.

A run folder holds `config.json` (the resolved `RunConfig`), `normalizer.json` (the
training split's statistics, so predictions can be mapped back to raw units),
`best.eqx`, `last.eqx` (with the optimiser state, for `--resume`), `metrics.jsonl`
and `summary.json`.
"""

import dataclasses
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from systems import atomic_write_json

from .._interface import AbstractSequenceModel
from .._model import WARP
from ..baselines import BASELINES, count_parameters, hidden_size_for
from ._devices import resolve_devices
from .checkpoint import load_model
from .config import RunConfig
from .data import IN_MEMORY, Normalizer, as_pairs, data_splits, grid_times, mean_step
from .loop import train


@dataclasses.dataclass
class Run:
    """A trained run: its folder, config, model (in normalised units) and normaliser."""

    folder: Path
    config: RunConfig
    model: AbstractSequenceModel
    normalizer: Normalizer
    channels: list[str] | None = None  # channel names of user data (`data.json`)

    @property
    def eval_protocol(self) -> str:
        """`"forecast"` or `"full"` (`train_run` resolves `"auto"`)."""
        return "forecast" if self.config.eval_protocol == "auto" else self.config.eval_protocol


def load_dataset(config: RunConfig, split: str, n: int | None = None):
    """The `systems.Dataset` of the configured system for `split` (`n` trajectories,
    default the config's count for that split). For a run on a data file, `train` and
    `val` are its training and validation parts (the first `n` of them if `n` is given);
    such runs have no `test` or `ood` split."""
    import systems

    if config.data is not None:
        if config.data == IN_MEMORY:
            raise ValueError("this run was trained on arrays in memory; pass the data explicitly")
        if split not in ("train", "val"):
            raise ValueError(
                f"a run trained on {config.data} has no {split!r} split (only train and val); "
                "use `warp-phys reconstruct --input FILE` for new trajectories"
            )
        chosen = dict(zip(("train", "val"), data_splits(config), strict=True))[split]
        return chosen if n is None else systems.subset(chosen, np.arange(min(n, len(chosen))))
    counts = {"train": config.n_train, "val": config.n_val, "test": config.n_test}
    n = n or counts.get(split, config.n_test)
    seed = config.seed if config.data_seed is None else config.data_seed
    return systems.generate(config.system_name, n, split=split, seed=seed)


def _warp(
    config: RunConfig, data_size: int, seq_len: int, key, normalizer=None, time_step=None
) -> WARP:
    options = dict(config.decoder_options)
    if config.decoder == "mlp" and config.normalize:
        options.setdefault("final_activation", 5.0)  # keeps early free rollouts finite
    if config.loss == "nll":
        options.setdefault("probabilistic", True)
        options.setdefault("std_lower_bound", config.std_lower_bound)
    # a physical decoder computes in raw units: WARP gives it the normalisation
    stats = normalizer.to_dict() if config.normalize and normalizer is not None else {}
    return WARP(
        data_size,
        decoder=config.decoder,
        root_width=config.root_width,
        root_depth=config.root_depth,
        decoder_options=options,
        hyper_width=config.hyper_width,
        hyper_depth=config.hyper_depth,
        transition=config.transition,
        transition_rank=config.transition_rank,
        seq_len=seq_len,
        time_step=time_step if config.transition == "continuous" else None,
        data_scale=stats.get("std"),
        data_shift=stats.get("mean"),
        key=key,
    )


def build_model(
    config: RunConfig,
    data_size: int,
    seq_len: int,
    *,
    key,
    normalizer: Normalizer | None = None,
    time_step: float | None = None,
) -> AbstractSequenceModel:
    """The model a config describes, for `data_size` channels and sequences of
    `seq_len` steps (WARP's tau grid; the Transformer's cache size). A physical decoder
    (`damped_oscillator`) gets the step `dt = 1 / (seq_len - 1)` and, with `normalizer`,
    the data's scale and shift, so it computes in raw units. `time_step`: the mean
    sampling interval of irregularly sampled data (a `continuous` WARP counts steps
    in it)."""
    if config.model == "warp":
        return _warp(config, data_size, seq_len, key, normalizer, time_step)
    options = dict(probabilistic=config.loss == "nll", std_lower_bound=config.std_lower_bound)
    if config.model == "transformer":
        options.update(
            layers=config.layers, heads=config.heads, positions=config.positions, max_len=seq_len
        )
    size_arg = "d_model" if config.model == "transformer" else "hidden_size"
    size = config.d_model if config.model == "transformer" else config.hidden_size
    target = config.params
    if config.match_warp:
        target = count_parameters(
            eqx.filter_eval_shape(lambda: _warp(config, data_size, seq_len, key, normalizer))
        )
    if target is not None:
        size = hidden_size_for(config.model, params=target, data_size=data_size, **options)
    return BASELINES[config.model](data_size, **{size_arg: size}, **options, key=key)


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
      `steps`, `max_seconds`, `patience`, `devices`).
    - `overwrite`: replace an existing run in `out`.

    **Returns:** `(run, history)` with the best model; see `train` for `history`.
    """
    out = Path(out)
    if (out / "config.json").exists() and not (resume or overwrite):
        raise ValueError(
            f"{out} already holds a run; pass resume to continue it or overwrite to replace it"
        )
    config = _resolve_source(config, data is not None)
    if resume:
        if not (out / "last.eqx").is_file():
            raise FileNotFoundError(f"no run to resume in {out} (no last.eqx)")
        _check_resumable(load_run(out, "last").config, config, out)
    if config.data is None:
        train_set, val_set = load_dataset(config, "train"), load_dataset(config, "val")
    else:
        train_set, val_set = data_splits(config, data, val_data)
    inputs, targets = as_pairs(train_set, "training data")
    T, d = targets.shape[1:]
    source = config.data or config.system
    for name, steps in (("training", T), ("validation", val_set.y.shape[1])):
        if not 1 <= config.context < steps:
            raise ValueError(
                f"too few steps for the context: the {name} data ({source}) have {steps} "
                f"steps, context {config.context} needs at least {config.context + 1}"
            )
    resolve_devices(config.devices, min(config.batch_size, len(inputs)))  # before any file
    # the resolved config: "auto" protocol (full for input/target tasks) and data seed
    protocol = config.eval_protocol
    if protocol == "auto":
        protocol = "full" if "inputs" in train_set.extras else "forecast"
    config = config.replace(
        eval_protocol=protocol,
        data_seed=config.seed if config.data_seed is None else config.data_seed,
    )
    normalizer = Normalizer.fit(targets) if config.normalize else Normalizer.identity(d)
    model_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed))
    raw_times = train_set.extras.get("t")
    time_step = None if raw_times is None else mean_step(raw_times)
    model = build_model(config, d, T, key=model_key, normalizer=normalizer, time_step=time_step)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config.to_dict())
    atomic_write_json(out / "normalizer.json", normalizer.to_dict())
    if config.data is not None:
        atomic_write_json(out / "data.json", _data_record(config, train_set, val_set))
    val_inputs, val_targets = as_pairs(val_set, "validation data")
    run = Run(out, config, model, normalizer, train_set.config.get("channels"))
    start = time.perf_counter()
    model, history = train(
        model,
        (np.asarray(normalizer.apply(inputs)), np.asarray(normalizer.apply(targets))),
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.lr,
        optimizer=config.optimizer,
        transition_lr=config.transition_lr,
        weight_decay=config.weight_decay,
        clip=config.clip,
        clip_value=config.clip_value,
        schedule=config.schedule,
        objective=config.objective,
        forcing_prob=config.forcing_prob,
        convention=config.convention,
        stochastic=config.stochastic,
        mode=config.mode,
        ar_algorithm=config.ar_algorithm,
        val_data=(normalizer.apply(val_inputs), normalizer.apply(val_targets)),
        times=grid_times(train_set, model, "training data"),
        val_times=grid_times(val_set, model, "validation data"),
        val_context=config.context,
        val_protocol=run.eval_protocol,
        val_every=config.val_every,
        patience=config.patience,
        max_seconds=config.max_seconds,
        devices=config.devices,
        checkpoint_dir=out,
        resume=resume,
        key=train_key,
        progress=progress,
    )
    run.model = model
    summary = {
        "model_class": type(model).__name__,
        "model_config": model.config,
        "parameters": count_parameters(model),
        "steps_done": history["step"][-1] if history["step"] else None,
        "stopped": history["stopped"],
        "best_val_mse_normalized": min(history["val_mse"], default=None),
        "train_seconds": round(time.perf_counter() - start, 2),
        "data_shape": list(targets.shape),
    }
    atomic_write_json(out / "summary.json", summary)
    return run, history


def _resolve_source(config: RunConfig, in_memory: bool) -> RunConfig:
    """The data source as stored in the run: `msd` by default, absolute file paths (so
    the run folder works from any directory), or `IN_MEMORY`."""
    if in_memory:
        return config.replace(system=None, data=IN_MEMORY, val_data=None)
    if config.data is None:
        return config.replace(system=config.system_name)
    paths = {k: getattr(config, k) for k in ("data", "val_data")}
    return config.replace(**{k: v and str(Path(v).resolve()) for k, v in paths.items()})


def _data_record(config: RunConfig, train, val) -> dict:
    """`data.json`: where the run's data came from, channel names and split sizes."""
    meta = train.config
    return {
        "source": config.data, "val_source": config.val_data, "format": meta.get("format"),
        "channels": meta.get("channels"), "time_column": meta.get("time_column"),
        "n_train": len(train), "n_val": len(val), "steps": int(train.y.shape[1]),
        "val_ids": val.config.get("ids") if config.val_data is None else None,
    }  # fmt: skip


RESUMABLE = ("steps", "max_seconds", "patience", "devices")
MODEL_CLASSES = {"warp": "WARP", "gru": "GRU", "lstm": "LSTM", "transformer": "Transformer"}


def _check_resumable(stored: RunConfig, config: RunConfig, folder) -> None:
    """A resumed run may change only `RESUMABLE` options."""
    old, new = stored.to_dict(), config.to_dict()
    changed = [k for k in old if k not in RESUMABLE and old[k] != new[k]]
    changed = [k for k in changed if not (k == "eval_protocol" and new[k] == "auto")]
    changed = [k for k in changed if not (k == "data_seed" and new[k] is None)]
    if changed:
        raise ValueError(
            f"cannot resume {folder}: options differ from the first run: {', '.join(changed)} "
            f"(only {', '.join(RESUMABLE)} may change)"
        )


def load_run(folder, checkpoint: str = "best") -> Run:
    """A run folder written by `train_run`, with its `best` (or `last`) model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no run folder at {folder}")
    for name in ("config.json", "normalizer.json", f"{checkpoint}.eqx"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a complete run folder: {name} is missing")
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    try:
        config = RunConfig.from_dict(
            json.loads((folder / "config.json").read_text()), source=str(folder / "config.json")
        )
        stats = json.loads((folder / "normalizer.json").read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{folder}: corrupt run file: {err}") from None
    model = load_model(folder / f"{checkpoint}.eqx")
    if type(model).__name__ != MODEL_CLASSES[config.model]:
        raise ValueError(
            f"{folder}: {checkpoint}.eqx holds a {type(model).__name__} but config.json "
            f"describes a {config.model} model"
        )
    channels = None
    if (folder / "data.json").is_file():
        try:
            channels = json.loads((folder / "data.json").read_text()).get("channels")
        except json.JSONDecodeError as err:
            raise ValueError(f"{folder}: corrupt run file data.json: {err}") from None
    return Run(folder, config, model, Normalizer.from_dict(stats), channels)
