"""The configuration of a training run: `RunConfig`, made of option groups and read and
written as one flat mapping of options (config files, `config.json`, command-line
flags, which are generated from the groups' fields)."""

import dataclasses
import json
import math
import tomllib
from pathlib import Path
from typing import Literal

from ..decoders import explicit_options
from ._setup import DEFAULT_STEPS, MAX_NON_FINITE, STEPS_PER_CALL
from .models import ModelOptions, free_run_for, trained_on_forecast
from .options import (
    ObjectiveOptions,
    OptimizerOptions,
    Options,
    ValidationOptions,
    at_least,
    flat_name,
    in_range,
    option,
    stored_options,
)


@dataclasses.dataclass(frozen=True)
class DataOptions(Options):
    """Where a run's data come from (a registered system or a file), how they are split,
    and whether they are standardised."""

    system: str | None = option(
        None, "registered system (see `warp-phys list`; default: msd unless --data)"
    )
    data: str | None = option(
        None,
        "train on this trajectory file instead of a system (.npz, .npy, .csv or a folder "
        "of .csv; see README 'Your own data')",
    )
    val_data: str | None = option(
        None, "validation file for --data (default: carved out of --data)"
    )
    val_fraction: float = option(
        0.2, "share of --data trajectories held out for validation (seeded by data_seed)"
    )
    n_train: int = option(
        20480,
        "training trajectories of --system (fresh ones are cheap: MSD makes 20480 in ~4 s; "
        "the probe of accuracy per CPU-minute in NOTES.md trained on 20480)",
    )
    n_val: int = option(256, "validation trajectories of --system (model selection)")
    n_test: int = option(512, "test trajectories of --system (evaluate's default)")
    data_seed: int | None = option(None, "seed of the data sets (default: --seed)")
    normalize: bool = option(
        True, "standardise channels with training-split statistics (metrics stay in raw units)"
    )

    def check(self) -> None:
        if self.data is not None and self.system is not None:
            raise ValueError(
                f"give either a system ({self.system!r}) or a data file ({self.data!r}), not both"
            )
        if self.val_data is not None and self.data is None:
            raise ValueError("option val_data needs a training file (option data)")
        in_range("val_fraction", self.val_fraction, 0, 1, "()")


@dataclasses.dataclass(frozen=True)
class LoopOptions(Options):
    """The length and placement of a run's training loop, and its seed."""

    steps: int | None = option(
        None,
        "optimiser steps (default: as many as --max-seconds allows, the learning-rate "
        f"schedule sized to that time; {DEFAULT_STEPS} without --max-seconds)",
        resumable=True,
    )
    batch_size: int = option(
        32, "sequences per step (the probe: batch 64 gains nothing per CPU-second)"
    )
    max_seconds: float | None = option(
        None, "wall-clock training budget of the run, over resumes", resumable=True
    )
    max_non_finite: int = option(
        MAX_NON_FINITE,
        "a step whose loss, gradient or update is NaN/inf is skipped; this many in a row "
        "stop the run (the last good state in last.eqx)",
        resumable=True,
    )
    steps_per_call: int = option(
        STEPS_PER_CALL,
        "training steps fused in one jitted call (a lax.scan); validation, checkpoints "
        "between calls",
        resumable=True,
    )
    devices: int | Literal["auto"] = option(
        1,
        "data-parallel training over N local devices (auto: all of them); the batch size "
        "must be a multiple of N; may change on --resume",
        resumable=True,
    )
    seed: int = option(0, "seed of the model, shuffler and teacher forcing")

    def check(self) -> None:
        at_least("steps", self.steps, 1, none=True)
        at_least("max_non_finite", self.max_non_finite, 1)
        at_least("steps_per_call", self.steps_per_call, 1)
        at_least("batch_size", self.batch_size, 1)
        in_range("max_seconds", self.max_seconds, 0, math.inf, "[)")
        if self.devices != "auto" and self.devices < 1:
            raise ValueError(f"option devices must be >= 1 or 'auto', got {self.devices}")


# RunConfig's groups and their defaults: those of the probe of accuracy per CPU-minute
# on MSD (NOTES.md; README "Training"): Adam 3e-3 with global-norm clipping at 1 and a
# cosine schedule over the run (its steps, or its time budget), batch 32, root 8x2,
# 20480 fresh training trajectories, teacher forcing 0.25 (or the forecast: see
# `trained_on_forecast`), 100 observed steps (with the "auto" protocol) for validation
# every VAL_EVERY steps; the loss a mean of each step's
# log MSE ("auto" time reduction; README "Training defaults": 2.7-4x lower validation
# forecasts on MSD and MSD-Zero in 15,000 steps, 1.5x for a GRU).
VAL_EVERY = 100
GROUPS: dict[str, Options] = {
    "data_options": DataOptions(),
    "model_options": ModelOptions(),
    "objective_options": ObjectiveOptions(time_reduction="auto"),
    "optimizer_options": OptimizerOptions(lr=3e-3, schedule="cosine", warmup=0.01),
    "validation_options": ValidationOptions(context=100, protocol="auto", every=VAL_EVERY),
    "loop_options": LoopOptions(),
}
# flat option name -> (group, field)
FLAT = {
    flat_name(f): (group, f) for group, value in GROUPS.items() for f in dataclasses.fields(value)
}

# the options a resumed run may change
RESUMABLE = tuple(name for name, (_, f) in FLAT.items() if f.metadata["resumable"])


@dataclasses.dataclass(frozen=True, init=False)
class RunConfig:
    """Every option of `warp-phys train`, in groups; see `warp-phys train --help`.

    Built from flat options, `RunConfig(system="msd", lr=3e-3, context=100)`, or from
    whole groups, `RunConfig(optimizer_options=OptimizerOptions(lr=3e-3))`; each flat
    option reads as an attribute (`config.lr`). `to_dict` / `from_dict` give the flat
    mapping of `config.json`."""

    data_options: DataOptions
    model_options: ModelOptions
    objective_options: ObjectiveOptions
    optimizer_options: OptimizerOptions
    validation_options: ValidationOptions
    loop_options: LoopOptions

    def __init__(self, **options):
        unknown = sorted(set(options) - set(FLAT) - set(GROUPS))
        if unknown:
            raise TypeError(f"RunConfig got unknown option(s) {', '.join(unknown)}")
        for group, default in GROUPS.items():
            base = options.get(group, default)
            if type(base) is not type(default):
                raise TypeError(f"{group} must be a {type(default).__name__}, got {base!r}")
            changes = {
                f.name: options[flat]
                for flat, (owner, f) in FLAT.items()
                if owner == group and flat in options
            }
            object.__setattr__(self, group, dataclasses.replace(base, **changes))

    def __getattr__(self, name: str):
        if name not in FLAT:
            raise AttributeError(f"RunConfig has no option {name!r}")
        group, f = FLAT[name]
        return getattr(getattr(self, group), f.name)

    @property
    def system_name(self) -> str:
        """The system to generate: `system`, or `msd` when neither a system nor a file
        is given."""
        return self.system or "msd"

    @classmethod
    def option_names(cls) -> list[str]:
        """Every flat option name, in group order."""
        return list(FLAT)

    def to_dict(self) -> dict:
        """The flat mapping of every option."""
        return {k: v for group in GROUPS for k, v in getattr(self, group).flat().items()}

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "config") -> "RunConfig":
        """Build from a flat dict; unknown keys are an error naming the known ones."""
        unknown = sorted(set(values) - set(FLAT))
        if unknown:
            raise ValueError(
                f"{source}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(FLAT))}"
            )
        return cls(**values)

    def replace(self, **changes) -> "RunConfig":
        """A copy with some flat options changed."""
        return self.from_dict({**self.to_dict(), **changes})


def stored_config(config: "RunConfig | dict") -> dict:
    """Every option as `config.json` holds it (JSON types), a stored mapping completed as
    `load_run` reads it (`stored_options`, then the defaults): two runs with equal
    `stored_config`s were configured alike, whichever options existed when each ran."""
    if isinstance(config, dict):
        config = RunConfig.from_dict(stored_options(config))
    config = config.replace(**automatic_options(config))
    return json.loads(json.dumps(config.to_dict()))


def automatic_options(config: RunConfig) -> dict:
    """The `"auto"`/None options that depend on the model, resolved as a run stores
    them: `free_run` (`free_run_for`), `time_reduction` (`"log_mean"` for an MSE model,
    `"mean"` for an NLL one), `forcing_prob` and `train_context` (see
    `ObjectiveOptions.resolved` and `trained_on_forecast`; the latter stays None while
    `context` is), and the decoder options whose default changed (`explicit_options`)."""
    objective = config.objective_options.resolved(
        config.loss == "nll", trained_on_forecast(config), config.context
    )
    return dict(
        decoder_options=explicit_options(config.decoder, config.decoder_options),
        free_run=free_run_for(config),
        time_reduction=objective.time_reduction,
        forcing_prob=objective.forcing_prob,
        train_context=objective.context,
    )


def read_config_file(path) -> dict:
    """A flat dict of options from a `.toml`, `.yaml`/`.yml` or `.json` file. Sections
    (TOML tables / YAML mappings such as data, model, protocol, optimisation) are
    flattened; a mapping option (`decoder_options`) stays a table."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file at {path}")
    raw = _parse(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of options")
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict) and not _takes_mapping(key):
            flat.update(value)
        else:
            flat[key] = value
    return {k.replace("-", "_"): v for k, v in flat.items()}


def _takes_mapping(name: str) -> bool:
    """Whether option `name` holds a mapping (a table of it is no section)."""
    if name not in FLAT:
        return False
    group, f = FLAT[name]
    return isinstance(getattr(GROUPS[group], f.name), dict)


def _parse(path: Path):
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(path.read_text())
        if suffix == ".json":
            return json.loads(path.read_text())
        if suffix not in (".yaml", ".yml"):
            raise ValueError(f"{path}: config files must be .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot parse: {err}") from None
    try:
        import yaml  # optional: only YAML configs need PyYAML
    except ImportError:
        raise ValueError(
            f"{path}: reading YAML needs PyYAML (pip install pyyaml); "
            "or write the config as TOML or JSON"
        ) from None
    return yaml.safe_load(path.read_text())
