"""The model of a run: the registry of model kinds, the model options of `RunConfig`,
and `build_model`, which turns a config into a freshly initialised model.

`MODEL_KINDS` is the one list of model kinds: `RunConfig` checks `model` against it,
`load_run` checks a checkpoint's class with it and `warp-phys list` prints it.
"""

import dataclasses
import math
from typing import Literal

import equinox as eqx
import numpy as np

import systems

from .._interface import AbstractSequenceModel
from .._model import WARP
from .._transitions import check_transition
from ..baselines import BASELINES, count_parameters, hidden_size_for
from ..decoders import builds_physical_prior, decoder_keywords
from .data import Normalizer
from .options import Options, in_range, option

MODEL_KINDS: dict[str, type[AbstractSequenceModel]] = {"warp": WARP, **BASELINES}
# The feature drive's width of a WARP run, chosen on validation: with a physical root it
# reads omega_0 to 0.8-1.7 % instead of 2.6-2.8 % and zeta to 8-16 % instead of 18-23 %
# (README "Readouts"); with the mlp root, the time benchmark's 45-s sweep reaches 0.018 /
# 0.052 instead of 0.33 / 0.34 on MSD / MSD-Zero (README "Time to accuracy").
DEFAULT_DRIVE_FEATURES = 64


@dataclasses.dataclass(frozen=True)
class ModelOptions(Options):
    """The model a run trains: WARP (root decoder, hypernetwork, transition) or a
    baseline (GRU, LSTM, Transformer), and its output (mean, or mean and std)."""

    model: str = option("warp", "model kind", choices=MODEL_KINDS)
    decoder: str = option(
        "mlp",
        "WARP root decoder: a registered name, 'sympy:FORMULA' or an import path "
        "'package.module:attribute' of your own prior",
    )
    root_width: int = option(8, "WARP root width (decoders with a width)")
    root_depth: int = option(2, "WARP root depth (decoders with a depth)")
    decoder_options: dict | None = option(
        None,
        'further decoder options as JSON, e.g. \'{"activation": "tanh"}\' (the mlp '
        "decoder is clipped to +-5 normalised units unless final_activation is given)",
    )
    hyper_width: int = option(32, "WARP hypernetwork width")
    hyper_depth: int = option(1, "WARP hypernetwork depth (0: linear theta_0)")
    transition: Literal["dense", "diagonal", "lowrank", "block", "continuous"] = option(
        "dense",
        "WARP transition A: dense, diagonal, lowrank (I + U V^T), block, or continuous "
        "(time-aware diagonal exp(h Lambda), for irregularly sampled data)",
    )
    transition_rank: int | None = option(None, "rank r of the lowrank A (default 8)")
    transition_init: Literal["identity", "rotation"] = option(
        "identity", "WARP's A at the start: I, or 2x2 rotations by random angles (dense A)"
    )
    drive_features: int | None = option(
        None,
        "WARP drive: 0 for B (x_t - x_{t-1}); F > 0 for B e(x_{t-1}, x_t) / (T - 1), e an "
        "MLP with F outputs, so theta accumulates statistics of the whole sequence "
        f"(default: {DEFAULT_DRIVE_FEATURES}, 0 for a continuous A; baselines: 0, see match_warp)",
    )
    drive_scale_free: bool = option(
        False,
        "WARP feature drive: e reads each step pair divided by its norm about the physical "
        "zero, so theta's statistics do not depend on the amplitude (linear systems; "
        "measured: forecasts MSD-Zero 1.3x better but reads parameters ~2x worse)",
    )
    free_run: Literal["auto", "advance", "hold"] = option(
        "auto",
        "WARP state where the input is its own prediction: advance (the paper's: it drives "
        "theta like an observation) or hold (theta moves on observations only, so a "
        "physical prior's parameters are fixed after the context); auto: hold for a "
        "physical prior, else advance",
    )
    hidden_size: int = option(64, "GRU/LSTM hidden size")
    d_model: int = option(32, "Transformer width")
    layers: int = option(2, "Transformer blocks")
    heads: int = option(2, "Transformer attention heads")
    positions: Literal["learned", "sinusoidal"] = option("learned", "Transformer positions")
    params: int | None = option(
        None, "baselines: match this parameter count (sets hidden_size/d_model)"
    )
    match_warp: bool = option(
        False, "baselines: match the parameter count of the WARP these options describe"
    )
    loss: Literal["mse", "nll"] = option("mse", "nll: predict mean and std")
    std_lower_bound: float = option(1e-4, "lower bound of the predicted std (nll)")

    def check(self) -> None:
        if self.model == "warp":  # before any data is made
            check_transition(self.transition, None, init=self.transition_init)
        in_range("std_lower_bound", self.std_lower_bound, 0, math.inf, "()")
        if self.drive_features is not None:
            in_range("drive_features", self.drive_features, 0, math.inf, "[)")
        if self.decoder_options is None:
            object.__setattr__(self, "decoder_options", {})


def drive_features_for(config) -> int:
    """`config.drive_features`, or where it is None (auto) `DEFAULT_DRIVE_FEATURES` for a
    WARP run on a regular grid and 0 otherwise: for a continuous-time A (the drive needs
    a regular grid), and for a baseline, whose `match_warp` then matches the WARP of the
    difference drive (the paper's; give `drive_features` to match another)."""
    if config.drive_features is not None:
        return config.drive_features
    regular_warp = config.model == "warp" and config.transition != "continuous"
    return DEFAULT_DRIVE_FEATURES if regular_warp else 0


def free_run_for(config) -> str:
    """`config.free_run`, or where it is `"auto"`: `"hold"` for a WARP whose decoder is a
    physical prior on a regular grid (README "Holding the state": it reads the physics
    from the context and keeps it), `"advance"` otherwise (the mlp root, baselines)."""
    if config.free_run != "auto":
        return config.free_run
    physical = config.model == "warp" and builds_physical_prior(config.decoder)
    return "hold" if physical and config.transition != "continuous" else "advance"


def trained_on_forecast(config) -> bool:
    """Whether the run trains on the forecast it is scored on by default (`forcing_prob`
    0 after a `train_context` of the validation context) rather than with the paper's
    teacher forcing 0.25 from step 1: a held WARP always; on forecast data a GRU and a WARP
    with the mlp root (MSE), both measured better so on validation (README, "Every model
    trained on the forecast"); LSTM (worse so), the Transformer and other roots keep the
    paper's. `forecast_trained` answers the same for a built model. An `"auto"` protocol
    counts as forecast data (`train_run` resolves it from the data first)."""
    if free_run_for(config) == "hold":
        return True
    plain_warp = config.model == "warp" and config.decoder == "mlp"
    forecast_data = config.eval_protocol != "full" and config.loss != "nll"
    return forecast_data and (plain_warp or config.model == "gru")


def centre_physics(config) -> dict[str, float]:
    """`<name>_init` options at the physics of the centre of the system's parameter
    ranges, for a decoder that takes them (the damped oscillator's `omega0_init`,
    `zeta_init`): the prior starts at the population's centre, not at generic values."""
    if config.system is None:
        return {}
    system = systems.get_system(config.system)
    ranges = getattr(system, "param_ranges", None) or {}
    physics = system.physical_parameters({n: sum(r) / 2 for n, r in ranges.items()})
    accepted = decoder_keywords(config.decoder) or set()
    return {
        f"{n}_init": float(v)
        for n, v in physics.items()
        if f"{n}_init" in accepted and np.size(v) == 1
    }


def _warp(config, data_size: int, seq_len: int, key, normalizer=None, time_step=None) -> WARP:
    options = {**centre_physics(config), **config.decoder_options}
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
        transition_init=config.transition_init,
        drive_features=drive_features_for(config),
        drive_scale_free=config.drive_scale_free,
        free_run=free_run_for(config),
        seq_len=seq_len,
        time_step=time_step if config.transition == "continuous" else None,
        data_scale=stats.get("std"),
        data_shift=stats.get("mean"),
        key=key,
    )


def build_model(
    config,
    data_size: int,
    seq_len: int,
    *,
    key,
    normalizer: Normalizer | None = None,
    time_step: float | None = None,
) -> AbstractSequenceModel:
    """The model a `RunConfig` describes, for `data_size` channels and sequences of
    `seq_len` steps (WARP's tau grid; the Transformer's cache size). With `normalizer`,
    a physical decoder (`damped_oscillator`) gets the data's scale and shift, so it
    computes in raw units (`make_decoder` gives it what it declares). `time_step`: the mean
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
    return MODEL_KINDS[config.model](data_size, **{size_arg: size}, **options, key=key)
