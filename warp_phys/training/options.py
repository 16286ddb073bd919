"""Option groups: small frozen dataclasses of related training options.

`train` takes an `OptimizerOptions`, an `ObjectiveOptions` and a `ValidationOptions`;
`RunConfig` is made of these and a few more groups. Each group is plain data, checked
when built (a one-line `ValueError` naming the option) and hashable (the compiled
training step is cached by it). At the edges options are flat: every field has a flat
name (`lr`, `optimizer`, `val_every`, ...) under which it appears in `RunConfig`,
config files, a run's `config.json`, the `warp-phys train` flags and the resume
fingerprint. A new option is one new field, with its help text as field metadata.
"""

import dataclasses
import math
import typing
from typing import Literal

from .._conventions import Convention
from .._forecast import ArAlgorithm
from .._model import Mode
from ..decoders import legacy_options
from ..decoders._lexer import short
from .losses import TimeReduction
from .protocol import Objective


def option(default, help: str, *, flat: str | None = None, resumable: bool = False, choices=None):
    """A field of an option group.

    **Arguments:**

    - `default`: its default value; `help`: the help text of its `--flag`.
    - `flat`: its name in flat form (config files, flags); default the field's name.
    - `resumable`: a resumed run may change it (it is left out of the fingerprint).
    - `choices`: for a `str` field, a mapping whose keys are the allowed values (read
      when a value is checked, so later registrations count).
    """
    metadata = {"help": help, "flat": flat, "resumable": resumable, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def flat_name(f: dataclasses.Field) -> str:
    """The flat name of a group's field (`OptimizerOptions.name` is `optimizer`)."""
    return f.metadata.get("flat") or f.name


def choices_of(kind, f: dataclasses.Field) -> list[str] | None:
    """The allowed words of a field: its `choices` keys or its `Literal` values."""
    if f.metadata.get("choices") is not None:
        return list(f.metadata["choices"])
    return list(typing.get_args(kind)) if typing.get_origin(kind) is Literal else None


def check_value(f: dataclasses.Field, kind, value):
    """`value` checked against the field's annotation `kind` (and its `choices`), with a
    one-line error naming the option; floats are returned as `float`."""
    name, args = flat_name(f), typing.get_args(kind)
    allowed = choices_of(kind, f)
    if allowed is not None:
        if value not in allowed:
            raise ValueError(f"option {name} must be one of {', '.join(allowed)}; got {value!r}")
        return value
    if value is None and type(None) in args:
        return value
    words = [w for a in args if typing.get_origin(a) is Literal for w in typing.get_args(a)]
    if value in words:  # a word beside a type, e.g. devices: int | Literal["auto"]
        return value
    base = next((a for a in args if a is not type(None)), kind) if args else kind
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
        dict: isinstance(value, dict),
    }[base]
    if not ok:
        also = "".join(f" or {w!r}" for w in words)
        raise ValueError(f"option {name} must be of type {base.__name__}{also}, got {value!r}")
    if base is float:
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number):  # NaN compares False with every bound
            raise ValueError(f"option {name} must be a finite number, got {short(value, 40)}")
        return number
    return value


class Options:
    """Base of the option groups (frozen dataclasses): fields checked on construction,
    and the flat view."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_value(f, hints[f.name], getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Constraints beyond each field's type (a group's own rules)."""

    def flat(self) -> dict:
        """`{flat name: value}` of every field."""
        return {flat_name(f): getattr(self, f.name) for f in dataclasses.fields(self)}

    def fingerprint(self) -> dict:
        """`flat()` without the options a resumed run may change."""
        fields = dataclasses.fields(self)
        return {flat_name(f): getattr(self, f.name) for f in fields if not f.metadata["resumable"]}


# Options a run folder written before they existed did not record, with the value such
# a run used (the drive: auto, once always 0; the loss: the plain mean over time; the
# training context: 1, teacher forcing from the first step).
LEGACY_VALUES = {
    "drive_features": 0, "time_reduction": "mean", "free_run": "advance", "train_context": 1,
    "train_context_max": None,
}
# the paper's teacher-forcing probability (`forcing_prob` None, unless trained on the forecast)
DEFAULT_FORCING_PROB = 0.25


def stored_options(values: dict) -> dict:
    """The options a run stored (`config.json`, a checkpoint's fingerprint), with
    `LEGACY_VALUES` for the keys an older run lacks, and the decoder options of defaults
    changed since (`legacy_options`)."""
    if not isinstance(values, dict):
        return values
    values = {**LEGACY_VALUES, **values}
    if "decoder" in values:
        values["decoder_options"] = legacy_options(values["decoder"], values.get("decoder_options"))
    return values


def at_least(name: str, value, minimum: int, none: bool = False) -> None:
    """A one-line error unless `value >= minimum` (or None, where `none`)."""
    if not (value is None and none) and (value is None or value < minimum):
        also = " or None" if none else ""
        raise ValueError(f"option {name} must be >= {minimum}{also}, got {value!r}")


def in_range(name: str, value, low: float, high: float, bounds: str) -> None:
    """A one-line error unless `value` lies between `low` and `high`, each bound
    included where `bounds` (two characters of interval notation, e.g. `"(]"`) has a
    bracket; None passes (an unset option)."""
    if value is None:
        return
    above = low <= value if bounds[0] == "[" else low < value
    below = value <= high if bounds[1] == "]" else value < high
    if not (above and below):
        if high == math.inf:
            where = f"{'>=' if bounds[0] == '[' else '>'} {low:g}"
        else:
            where = f"in {bounds[0]}{low:g}, {high:g}{bounds[1]}"
        raise ValueError(f"option {name} must be {where}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class OptimizerOptions(Options):
    """The optimiser of `train`: an optax chain built by `make_optimizer`."""

    name: Literal["adam", "adamw", "adabelief"] = option("adam", "optimiser", flat="optimizer")
    lr: float = option(
        1e-3, "learning rate (may change on --resume; from the next step)", resumable=True
    )
    transition_lr: float | None = option(
        None,
        "learning rate of WARP's A (default lr / D_theta; a structured A: see README; may "
        "change on --resume)",
        resumable=True,
    )
    weight_decay: float = option(1e-4, "AdamW weight decay")
    clip: Literal["global_norm", "elementwise", "none"] = option("global_norm", "gradient clipping")
    clip_value: float = option(1.0, "clipping threshold")
    schedule: Literal["constant", "cosine", "plateau"] = option(
        "constant",
        "learning-rate schedule: cosine decays to lr / 100 at the end of the run (its "
        "steps, or its --max-seconds when no --steps is given: then sized in wall-clock "
        "time)",
    )
    warmup: float = option(0.0, "cosine schedule: share of the run with a linear warmup")
    plateau_factor: float = option(0.5, "plateau schedule: step factor when the loss stalls")
    plateau_patience: int = option(20, "plateau schedule: stalled checks before reducing")
    plateau_accumulation: int = option(50, "plateau schedule: losses averaged per check")

    def check(self) -> None:
        for name in ("lr", "transition_lr", "clip_value"):
            in_range(name, getattr(self, name), 0, math.inf, "()")
        in_range("weight_decay", self.weight_decay, 0, math.inf, "[)")
        in_range("plateau_factor", self.plateau_factor, 0, 1, "()")
        in_range("warmup", self.warmup, 0, 1, "[)")
        at_least("plateau_patience", self.plateau_patience, 1)
        at_least("plateau_accumulation", self.plateau_accumulation, 1)


@dataclasses.dataclass(frozen=True)
class ObjectiveOptions(Options):
    """How `train` forms and scores its training sequences (see `sequence_loss`)."""

    kind: Objective = option("autoregressive", "training objective", flat="objective")
    forcing_prob: float | None = option(
        None,
        "teacher-forcing probability after the training context (None: 0 for the models "
        "trained on the forecast they are scored on (a WARP that holds its state; on "
        "forecast data a GRU and a WARP with the mlp root), else 0.25, the paper's)",
    )
    context: int | None = option(
        None,
        "training: the first N inputs of every sequence are observed, then each with "
        "forcing_prob (None: the validation context for the models trained on the "
        "forecast, else 1)",
        flat="train_context",
    )
    context_max: int | None = option(
        None,
        "training: with it, each sequence observes a context drawn uniformly from "
        "train_context..train_context_max, for a model forecast after contexts of several "
        "lengths (a held WARP forecasts well only after the context length it trained on)",
        flat="train_context_max",
    )
    convention: Convention = option("clean", "index convention (reference = the reference code's)")
    stochastic: bool = option(False, "feed back sampled predictions (needs nll)")
    mode: Mode = option("auto", "WARP recurrence over observed inputs (auto: by cost)")
    ar_algorithm: ArAlgorithm = option(
        "auto", "WARP autoregressive rollout, training and forecasts (auto: by cost)"
    )
    time_reduction: Literal["auto", TimeReduction] = option(
        "mean",
        "how the loss weighs the steps: mean (every squared error alike, the paper's) or "
        "log_mean (the mean over steps of the log of each step's batch MSE, so the first "
        "steps, before a context pins the physics, do not drown the rest; MSE only); "
        "auto: log_mean, or mean for a probabilistic (NLL) model",
    )

    def resolved(
        self, probabilistic: bool, forecast: bool = False, context: int | None = None
    ) -> "ObjectiveOptions":
        """These options with their automatic values resolved for a model that is
        `probabilistic` (Gaussian NLL) or not, trained on the `forecast` by default (see
        `trained_on_forecast`) or not, validated after `context` steps: the time
        reduction (`"mean"` for NLL, else `"log_mean"`), `forcing_prob` (0 on the
        forecast, else 0.25) and the training context (`context` on the forecast, else 1;
        unresolved while `context` is None)."""
        changes = {}
        if self.time_reduction == "auto":
            changes["time_reduction"] = "mean" if probabilistic else "log_mean"
        if self.forcing_prob is None:
            changes["forcing_prob"] = 0.0 if forecast else DEFAULT_FORCING_PROB
        if self.context is None and (context is not None or not forecast):
            changes["context"] = context if forecast else 1
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        in_range("forcing_prob", self.forcing_prob, 0, 1, "[]")
        at_least("train_context", self.context, 1, none=True)
        at_least("train_context_max", self.context_max, self.context or 1, none=True)


@dataclasses.dataclass(frozen=True)
class ValidationOptions(Options):
    """Model selection in `train`: which forecast is scored on the validation data, how
    often, and when to stop early."""

    context: int | None = option(
        None, "observed steps L for validation and evaluation (None: a quarter of the steps)"
    )
    protocol: Literal["auto", "forecast", "full"] = option(
        "forecast",
        "forecast after the context, or full-sequence teacher forcing (auto: full for "
        "input/target tasks such as lotka_volterra_repeat)",
        flat="eval_protocol",
    )
    every: int = option(50, "validate every N steps", flat="val_every")
    patience: int | None = option(
        None, "early stopping after N validations without improvement", resumable=True
    )

    def check(self) -> None:
        at_least("context", self.context, 1, none=True)
        at_least("val_every", self.every, 1)
        at_least("patience", self.patience, 1, none=True)
