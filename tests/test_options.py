"""Option groups: one field is one option everywhere (flag, config key, fingerprint,
compile cache), invalid values are one-line errors naming the option, and `RunConfig`
reads and writes flat options."""

import argparse
import dataclasses
import json

import jax
import numpy as np
import pytest

import warp_phys as wp
from warp_phys import cli
from warp_phys._train_flags import add_option_flags, config_from_args
from warp_phys.training import config as config_module
from warp_phys.training._setup import compiled_step
from warp_phys.training._state import fingerprint
from warp_phys.training.config import RESUMABLE, read_config_file
from warp_phys.training.models import MODEL_KINDS
from warp_phys.training.options import option

TRAIN_GROUPS = (wp.OptimizerOptions(), wp.ObjectiveOptions(), wp.ValidationOptions())


@dataclasses.dataclass(frozen=True)
class WithMomentum(wp.OptimizerOptions):
    """An optimiser group with one option more, as a contributor would add it."""

    momentum: float = option(0.9, "heavy-ball momentum (a new option)")


def _stamp(*groups) -> dict:
    y = np.zeros((2, 5, 1), np.float32)
    return fingerprint(groups, {"batch_size": 2}, jax.random.PRNGKey(0), y, y, None)


def test_every_field_is_a_flag_a_config_key_and_in_the_fingerprint(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    names = wp.RunConfig.option_names()
    assert len(names) == len(set(names)) == len(wp.RunConfig().to_dict())
    for name in names:
        assert "--" + name.replace("_", "-") in out, name
    stamp = _stamp(*TRAIN_GROUPS)
    for group in TRAIN_GROUPS:
        for name in group.flat():
            assert (name in stamp) == (name not in RESUMABLE), name
    assert set(RESUMABLE) == {
        "steps", "max_seconds", "patience", "devices", "lr", "transition_lr", "max_non_finite",
        "steps_per_call",
    }


def test_a_new_field_is_a_flag_and_in_the_fingerprint(monkeypatch):
    assert _stamp(WithMomentum(momentum=0.5))["momentum"] == 0.5
    assert _stamp(WithMomentum(momentum=0.5)) != _stamp(WithMomentum())
    monkeypatch.setitem(config_module.GROUPS, "optimizer_options", WithMomentum())
    parser = argparse.ArgumentParser()
    add_option_flags(parser)
    assert parser.parse_args(["--momentum", "0.7"]).momentum == 0.7
    assert "heavy-ball momentum (a new option) (default: 0.9)" in parser.format_help()
    with pytest.raises(ValueError, match="option momentum must be of type float"):
        WithMomentum(momentum="high")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: wp.OptimizerOptions(name="sgd"), "option optimizer must be one of adam, "),
        (lambda: wp.OptimizerOptions(lr=0), "option lr must be > 0, got 0.0"),
        (lambda: wp.OptimizerOptions(plateau_patience=0), "option plateau_patience must be"),
        (lambda: wp.ObjectiveOptions(kind="free"), "option objective must be one of autoreg"),
        (lambda: wp.ObjectiveOptions(forcing_prob="x"), "option forcing_prob must be of type"),
        (lambda: wp.ObjectiveOptions(stochastic=1), "option stochastic must be of type bool"),
        (lambda: wp.ValidationOptions(every=0), "option val_every must be >= 1, got 0"),
        (lambda: wp.ValidationOptions(patience=0), "option patience must be >= 1 or None"),
        (lambda: wp.ValidationOptions(protocol="x"), "option eval_protocol must be one of"),
        (lambda: wp.RunConfig(model="rnn"), "option model must be one of warp, gru, lstm"),
        (lambda: wp.RunConfig(steps=0), "option steps must be >= 1 or None, got 0"),
    ],
)
def test_invalid_values_are_one_line_errors_naming_the_option(build, message):
    with pytest.raises(ValueError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_invalid_flag_values_are_one_line_cli_errors(tmp_path, capsys):
    assert cli.main(["train", "--lr", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "warp-phys: error: option lr must be > 0, got 0.0"
    assert not (tmp_path / "x").exists()


def test_flat_round_trip(tmp_path):
    options = dict(lr=3e-3, optimizer="adamw", forcing_prob=1.0, val_every=7)
    config = wp.RunConfig(system="sine", eval_protocol="full", decoder_options={"a": 1}, **options)
    flat = config.to_dict()
    assert list(flat) == wp.RunConfig.option_names()
    assert wp.RunConfig.from_dict(json.loads(json.dumps(flat))) == config
    assert (config.lr, config.optimizer, config.val_every) == (3e-3, "adamw", 7)
    assert config.optimizer_options == wp.OptimizerOptions(
        name="adamw", lr=3e-3, schedule="cosine", warmup=0.01
    )  # RunConfig's defaults: those of the CPU-minute probe
    assert config.validation_options.protocol == "full" and config.decoder_options == {"a": 1}
    changed = config.replace(lr=1e-2, patience=3)
    assert changed.optimizer_options.lr == 1e-2 and changed.validation_options.patience == 3
    assert changed.replace(lr=3e-3, patience=None) == config
    grouped = wp.RunConfig(optimizer_options=wp.OptimizerOptions(name="adamw", lr=3e-3))
    expected = dict(optimizer="adamw", lr=3e-3, schedule="constant", warmup=0.0)
    assert grouped.to_dict() == dict(wp.RunConfig().to_dict(), **expected)
    # sections (the old names or the group names) and flat files read the same
    sectioned = '[optimisation]\nlr = 3e-3\n[validation_options]\nval_every = 7\n'
    (tmp_path / "a.toml").write_text(sectioned + '[model]\ndecoder_options = { a = 1 }\n')
    flat_file = {"lr": 3e-3, "val_every": 7, "decoder_options": {"a": 1}}
    (tmp_path / "b.json").write_text(json.dumps(flat_file))
    assert read_config_file(tmp_path / "a.toml") == read_config_file(tmp_path / "b.json")
    with pytest.raises(ValueError, match="unknown option.s. stepz"):
        wp.RunConfig.from_dict({"stepz": 3})
    with pytest.raises(AttributeError, match="no option 'stepz'"):
        _ = config.stepz


def test_flags_and_defaults_reach_the_groups():
    flags = ["--optimizer", "adabelief", "--forcing-prob", "0.5", "--val-every", "3"]
    flags += ["--no-normalize", "--decoder-options", '{"a": 2}']
    args = cli.build_parser().parse_args(["train", "--out", "x", *flags])
    config = config_from_args(args)
    assert config.optimizer_options.name == "adabelief"
    assert config.objective_options.forcing_prob == 0.5 and config.val_every == 3
    assert not config.normalize and config.decoder_options == {"a": 2}
    defaults = wp.RunConfig()
    assert defaults.context == 100 and defaults.eval_protocol == "auto"  # RunConfig's own
    assert wp.ValidationOptions().context is None  # train's: a quarter of the steps


def test_the_compiled_step_is_cached_by_the_options():
    first = compiled_step(wp.OptimizerOptions(lr=1e-3), wp.ObjectiveOptions())
    again = compiled_step(wp.OptimizerOptions(lr=0.001), wp.ObjectiveOptions())
    other = compiled_step(wp.OptimizerOptions(lr=2e-3), wp.ObjectiveOptions())
    assert first is again and first is not other


def test_model_kinds_are_listed_once(capsys):
    assert cli.main(["list"]) == 0
    assert f"models:   {', '.join(MODEL_KINDS)}" in capsys.readouterr().out
    assert set(MODEL_KINDS) == {"warp", "gru", "lstm", "transformer"}
    for kind in MODEL_KINDS:
        assert wp.RunConfig(model=kind).model == kind


def test_make_optimizer_takes_the_group():
    model = wp.WARP(1, root_width=2, root_depth=1, hyper_width=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="cosine schedule needs the number of training steps"):
        wp.make_optimizer(model, wp.OptimizerOptions(schedule="cosine"))
    chain = wp.make_optimizer(model, wp.OptimizerOptions(schedule="cosine"), steps=10)
    assert chain.init(model) is not None
