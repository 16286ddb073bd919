"""The option flags of `warp-phys train`: one flag per field of `RunConfig`'s option
groups, generated from the fields (name, type, choices, help), and the config they
resolve to (defaults < `--config FILE` < flags; a resumed run starts from its own)."""

import argparse
import dataclasses
import json
import typing
from pathlib import Path

from .training.config import GROUPS, RunConfig, read_config_file, stored_options
from .training.options import choices_of, flat_name


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _word_or(base: type, words: list[str]):
    """An argparse type for options such as `--devices 2` / `--devices auto`: one of
    `words`, or else a value of type `base`."""

    def convert(text: str):
        if text in words:
            return text
        try:
            return base(text)
        except ValueError:
            choices = ", ".join(repr(w) for w in words)
            raise argparse.ArgumentTypeError(
                f"expected {base.__name__} or {choices}, got {text!r}"
            ) from None

    return convert


def _parsing(kind, f: dataclasses.Field) -> dict:
    """The argparse keywords that read a value of the field `f` annotated `kind`."""
    allowed = choices_of(kind, f)
    if allowed is not None:
        return dict(choices=allowed, metavar="{" + ",".join(allowed) + "}")
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if args else kind
    words = [w for a in args if typing.get_origin(a) is typing.Literal for w in typing.get_args(a)]
    if base is bool:
        return dict(action=argparse.BooleanOptionalAction)
    if base is dict:
        return dict(type=_json_object, metavar="JSON")
    if words:  # e.g. devices: int | Literal["auto"]
        return dict(type=_word_or(base, words), metavar="|".join(["N", *words]))
    return dict(type=base, metavar=base.__name__.upper())


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option (`--lr`, `--forcing-prob`, ...), in a help section per
    group; defaults are suppressed so that only the flags given override the config
    file."""
    for group, default in GROUPS.items():
        section = parser.add_argument_group(
            f"{group.removesuffix('_options')} options", type(default).__doc__.split("\n\n")[0]
        )
        hints = typing.get_type_hints(type(default))
        for f in dataclasses.fields(default):
            name, text = flat_name(f), f.metadata["help"]
            if "(default:" not in text:
                text += f" (default: {getattr(default, f.name)})"
            section.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                default=argparse.SUPPRESS,
                help=text,
                **_parsing(hints[f.name], f),
            )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The `RunConfig` of `warp-phys train`: the stored config of a resumed run, then
    `--config FILE`, then the flags given."""
    values = {}
    if args.resume:
        stored = Path(args.out) / "config.json"
        if not stored.is_file():
            raise FileNotFoundError(f"no run to resume in {args.out} (no config.json)")
        values.update(stored_options(read_config_file(stored)))
    if args.config:
        values.update(read_config_file(args.config))
    names = set(RunConfig.option_names())
    flags = {k: v for k, v in vars(args).items() if k in names}
    if "data" in flags and "system" not in flags:  # a flag's source replaces the file's
        values.pop("system", None)
    if "system" in flags and "data" not in flags:
        values.pop("data", None)
        values.pop("val_data", None)
    values.update(flags)
    return RunConfig.from_dict(values, source=args.config or "options")
