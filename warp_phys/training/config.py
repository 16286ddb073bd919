"""The configuration of a training run: one flat dataclass, read from TOML / YAML / JSON
files and overridden by command-line flags (which are generated from its fields)."""

import dataclasses
import json
import tomllib
import typing
from pathlib import Path
from typing import Literal

GROUPS = ("data", "model", "protocol", "optimisation")


def _field(default, help: str, group: str, **kw):
    return dataclasses.field(default=default, metadata={"help": help, "group": group}, **kw)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every option of `warp-phys train`; see `warp-phys train --help` for each one."""

    # data
    system: str | None = _field(
        None, "registered system (see `warp-phys list`; default: msd unless --data)", "data"
    )
    data: str | None = _field(
        None,
        "train on this trajectory file instead of a system (.npz, .npy, .csv or a folder "
        "of .csv; see README 'Your own data')",
        "data",
    )
    val_data: str | None = _field(
        None, "validation file for --data (default: carved out of --data)", "data"
    )
    val_fraction: float = _field(
        0.2, "share of --data trajectories held out for validation (seeded by data_seed)", "data"
    )
    n_train: int = _field(512, "training trajectories of --system", "data")
    n_val: int = _field(64, "validation trajectories of --system (model selection)", "data")
    n_test: int = _field(128, "test trajectories of --system (evaluate's default)", "data")
    data_seed: int | None = _field(None, "seed of the data sets (default: --seed)", "data")
    normalize: bool = _field(
        True,
        "standardise channels with training-split statistics (metrics stay in raw units)",
        "data",
    )
    # model
    model: Literal["warp", "gru", "lstm", "transformer"] = _field("warp", "model kind", "model")
    decoder: str = _field(
        "mlp", "WARP root decoder: a registered name or 'sympy:FORMULA'", "model"
    )
    root_width: int = _field(16, "WARP root width (decoders with a width)", "model")
    root_depth: int = _field(2, "WARP root depth (decoders with a depth)", "model")
    decoder_options: dict = _field(
        None,
        "further decoder options as JSON, e.g. '{\"activation\": \"tanh\"}' (the mlp "
        "decoder is clipped to +-5 normalised units unless final_activation is given)",
        "model",
    )
    hyper_width: int = _field(16, "WARP hypernetwork width", "model")
    hyper_depth: int = _field(1, "WARP hypernetwork depth (0: linear theta_0)", "model")
    transition: Literal["dense", "diagonal", "lowrank", "block", "continuous"] = _field(
        "dense",
        "WARP transition A: dense, diagonal, lowrank (I + U V^T), block, or continuous "
        "(time-aware diagonal exp(h Lambda), for irregularly sampled data)",
        "model",
    )
    transition_rank: int | None = _field(None, "rank r of the lowrank A (default 8)", "model")
    hidden_size: int = _field(64, "GRU/LSTM hidden size", "model")
    d_model: int = _field(32, "Transformer width", "model")
    layers: int = _field(2, "Transformer blocks", "model")
    heads: int = _field(2, "Transformer attention heads", "model")
    positions: Literal["learned", "sinusoidal"] = _field(
        "learned", "Transformer positions", "model"
    )
    params: int | None = _field(
        None, "baselines: match this parameter count (sets hidden_size/d_model)", "model"
    )
    match_warp: bool = _field(
        False, "baselines: match the parameter count of the WARP these options describe", "model"
    )
    loss: Literal["mse", "nll"] = _field("mse", "nll: predict mean and std", "model")
    std_lower_bound: float = _field(1e-4, "lower bound of the predicted std (nll)", "model")
    # protocol
    objective: Literal["autoregressive", "teacher_forced"] = _field(
        "autoregressive", "training objective", "protocol"
    )
    forcing_prob: float = _field(0.25, "teacher-forcing probability", "protocol")
    convention: Literal["clean", "reference"] = _field(
        "clean", "index convention (reference = the reference code's)", "protocol"
    )
    stochastic: bool = _field(False, "feed back sampled predictions (needs nll)", "protocol")
    context: int = _field(100, "observed steps L for validation and evaluation", "protocol")
    eval_protocol: Literal["auto", "forecast", "full"] = _field(
        "auto",
        "forecast after the context, or full-sequence teacher forcing (auto: full for "
        "input/target tasks such as lotka_volterra_repeat)",
        "protocol",
    )
    # optimisation
    steps: int = _field(1000, "optimiser steps", "optimisation")
    batch_size: int = _field(32, "sequences per step", "optimisation")
    lr: float = _field(1e-3, "learning rate", "optimisation")
    transition_lr: float | None = _field(
        None,
        "learning rate of WARP's A (default lr / D_theta; a structured A: see README)",
        "optimisation",
    )
    optimizer: Literal["adam", "adamw", "adabelief"] = _field("adam", "optimiser", "optimisation")
    weight_decay: float = _field(1e-4, "AdamW weight decay", "optimisation")
    clip: Literal["global_norm", "elementwise", "none"] = _field(
        "global_norm", "gradient clipping", "optimisation"
    )
    clip_value: float = _field(1.0, "clipping threshold", "optimisation")
    schedule: Literal["constant", "cosine", "plateau"] = _field(
        "constant", "learning-rate schedule", "optimisation"
    )
    val_every: int = _field(50, "validate every N steps", "optimisation")
    patience: int | None = _field(
        None, "early stopping after N validations without improvement", "optimisation"
    )
    max_seconds: float | None = _field(None, "wall-clock training budget", "optimisation")
    devices: int | Literal["auto"] = _field(
        1,
        "data-parallel training over N local devices (auto: all of them); the batch size "
        "must be a multiple of N; may change on --resume",
        "optimisation",
    )
    seed: int = _field(0, "seed of the model, shuffler and teacher forcing", "optimisation")
    mode: Literal["auto", "parallel", "sequential"] = _field(
        "auto", "WARP recurrence over observed inputs (auto: by cost)", "optimisation"
    )
    ar_algorithm: Literal["auto", "kernel", "scan"] = _field(
        "auto", "WARP autoregressive rollout, training and forecasts (auto: by cost)",
        "optimisation",
    )

    def __post_init__(self):
        if self.decoder_options is None:
            object.__setattr__(self, "decoder_options", {})
        hints = typing.get_type_hints(RunConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _check_value(f, value)
            if float in typing.get_args(hints[f.name]) + (hints[f.name],) and value is not None:
                object.__setattr__(self, f.name, float(value))
        if self.data is not None and self.system is not None:
            raise ValueError(
                f"give either a system ({self.system!r}) or a data file ({self.data!r}), not both"
            )
        if self.val_data is not None and self.data is None:
            raise ValueError("option val_data needs a training file (option data)")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"option val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.devices != "auto" and self.devices < 1:
            raise ValueError(f"option devices must be >= 1 or 'auto', got {self.devices}")

    @property
    def system_name(self) -> str:
        """The system to generate: `system`, or `msd` when neither a system nor a file
        is given."""
        return self.system or "msd"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "config") -> "RunConfig":
        """Build from a flat dict; unknown keys are an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def replace(self, **changes) -> "RunConfig":
        return self.from_dict({**self.to_dict(), **changes})


def _check_value(f: dataclasses.Field, value) -> None:
    """Type check against the annotation, with a one-line error naming the option."""
    kind = typing.get_type_hints(RunConfig)[f.name]
    args = typing.get_args(kind)
    if value is None and type(None) in args:
        return
    words = [w for a in args if typing.get_origin(a) is Literal for w in typing.get_args(a)]
    if value in words:  # a word beside a type, e.g. devices: int | Literal["auto"]
        return
    if typing.get_origin(kind) is Literal:
        if value not in args:
            raise ValueError(f"option {f.name} must be one of {', '.join(args)}; got {value!r}")
        return
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
        raise ValueError(f"option {f.name} must be of type {base.__name__}{also}, got {value!r}")


def read_config_file(path) -> dict:
    """A flat dict of options from a `.toml`, `.yaml`/`.yml` or `.json` file. Sections
    (TOML tables / YAML mappings named data, model, protocol, optimisation) are
    flattened; `decoder_options` stays a table."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file at {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            raw = tomllib.loads(path.read_text())
        elif suffix == ".json":
            raw = json.loads(path.read_text())
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ValueError(
                    f"{path}: reading YAML needs PyYAML (pip install pyyaml); "
                    "or write the config as TOML or JSON"
                ) from None
            raw = yaml.safe_load(path.read_text())
        else:
            raise ValueError(f"{path}: config files must be .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot parse: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of options")
    flat = {}
    for key, value in raw.items():
        if key in GROUPS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return {k.replace("-", "_"): v for k, v in flat.items()}
