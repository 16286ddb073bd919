"""Decoders named by import path: `"package.module:attribute"`.

A user's prior lives in the user's own module; `--decoder mypriors:duffing` (and the
same string in a config file, `WARP(decoder=...)` or `get_decoder`) imports
`mypriors` with `importlib` and uses its attribute `duffing`, which is

- a decoder instance (e.g. what `@decoder_from_function(...)` makes of a function), or
- a factory: a decoder class or a function `factory(data_size=..., **options)`, as
  `register_decoder` takes.

Because a run records the string, every command that rebuilds the model (evaluate,
reconstruct, plot, `--resume`, `load_model`) imports the module again. Nothing is ever
evaluated: the module is imported by name and the attribute looked up with `getattr`.
"""

import importlib
import re
from collections.abc import Callable, Container

import equinox as eqx

from ._lexer import short

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_IMPORT_PATH = re.compile(rf"({_DOTTED}):({_DOTTED})", re.ASCII)


def is_import_path(spec, prefixes: Container[str] = ()) -> bool:
    """Whether `spec` reads `module.path:attribute` with a module name that is not one of
    the spec `prefixes` (so `"sympy:A*sin(t)"` stays a formula)."""
    if not isinstance(spec, str):
        return False
    match = _IMPORT_PATH.fullmatch(spec.strip())
    return match is not None and match.group(1) not in prefixes


def import_factory(spec: str) -> Callable:
    """The decoder factory that the import path `spec` names.

    **Arguments:**

    - `spec`: `"module.path:attribute"` (the attribute may be dotted too).

    **Returns:** a callable `factory(data_size=..., **options)`: the attribute itself
    when it is a class or a function, or, for a decoder instance, a factory returning
    that instance (built for its own `data_size`). An instance takes the run's settings
    (`make_decoder`: `scale`, `shift`, `dt`, `width`, `depth`) only when it has a
    `rebuild(**options)` method; the factory then declares its class's `takes_size`,
    `needs_dt` and `units`. Raises `ValueError` naming the module when it cannot be
    imported, and the attribute when it is missing or is not a decoder.
    """
    module_name, attribute = _IMPORT_PATH.fullmatch(spec.strip()).groups()
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # user code: any failure while importing it
        hint = " (is its folder on PYTHONPATH?)" if isinstance(err, ImportError) else ""
        reason = " ".join(str(err).split())[:120]
        raise ValueError(
            f"decoder {short(spec, 80)}: cannot import module {short(module_name, 80)}{hint}: "
            f"{type(err).__name__}: {reason}"
        ) from err
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(
                f"decoder {short(spec, 80)}: module {short(module_name, 80)} has no "
                f"attribute {short(attribute, 80)}"
            )
        target = getattr(target, part)
    if isinstance(target, eqx.Module):  # an instance (a class is a factory)
        return _instance_factory(target, spec)
    if not callable(target):
        raise ValueError(
            f"decoder {short(spec, 80)}: {short(attribute, 80)} is a {type(target).__name__}, "
            "not a decoder, a decoder class or a factory function"
        )
    return target


def _instance_factory(decoder: eqx.Module, spec: str) -> Callable:
    """A factory for a ready-built decoder: the instance itself for its own data size,
    or `decoder.rebuild(**options)` with the run's settings when it can take them."""
    rebuild = getattr(decoder, "rebuild", None)

    def factory(data_size: int, **options):
        if data_size != getattr(decoder, "data_size", data_size):
            raise ValueError(
                f"decoder {short(spec, 80)} predicts {decoder.data_size} channels, but the "
                f"data have {data_size}"
            )
        if not options:
            return decoder
        if rebuild is None:
            raise ValueError(
                f"decoder {short(spec, 80)} is a ready-built {type(decoder).__name__} and "
                f"takes no options; got {sorted(options)}"
            )
        return rebuild(**options)

    factory.built_class = type(decoder)
    if rebuild is not None:
        for name in ("takes_size", "needs_dt", "units"):
            setattr(factory, name, getattr(decoder, name))
    return factory
