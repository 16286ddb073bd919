"""The registry of named systems: `register_system`, `get_system`, `list_systems`."""

from collections.abc import Callable
from typing import Any

from ._base import AbstractSystem

_REGISTRY: dict[str, Callable[[], AbstractSystem]] = {}


def register_system(name: str, system: Any = None, *, overwrite: bool = False) -> Any:
    """Registers a system under `name`; usable as a decorator or called directly.

    **Arguments:**

    - `name`: the registry name (used by `get_system` / `generate` and the CLI).
    - `system`: an `AbstractSystem` instance, an `AbstractSystem` subclass (constructed
      with no arguments) or a zero-argument factory returning one. Omit it to get a
      decorator.
    - `overwrite`: allow replacing an existing name (otherwise `ValueError`).

    **Returns:** `system` (so that decorated classes / functions stay usable).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"system name must be a non-empty string, got {name!r}")

    def decorator(obj: Any) -> Any:
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"system {name!r} is already registered (pass overwrite=True)")
        if isinstance(obj, AbstractSystem):
            factory = lambda: obj
        elif callable(obj):
            factory = obj
        else:
            raise TypeError(f"cannot register {obj!r}: expected a system, class or factory")
        _REGISTRY[name] = factory
        return obj

    return decorator if system is None else decorator(system)


def list_systems() -> list[str]:
    """**Returns:** the sorted names of all registered systems."""
    return sorted(_REGISTRY)


def get_system(name: str, **overrides: Any) -> AbstractSystem:
    """Builds the registered system `name`, with `overrides` applied (`AbstractSystem.replace`).

    Raises `ValueError` for an unknown name (listing the known ones) or a bad override.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown system {name!r}; known systems: {', '.join(list_systems())}")
    system = _REGISTRY[name]()
    if not isinstance(system, AbstractSystem):
        raise TypeError(f"factory of system {name!r} returned {type(system).__name__}")
    return system.replace(**overrides) if overrides else system


def resolve_system(system: str | AbstractSystem, overrides: dict[str, Any]) -> AbstractSystem:
    """A system from a registry name or an instance, with `overrides` applied."""
    if isinstance(system, AbstractSystem):
        return system.replace(**overrides) if overrides else system
    if isinstance(system, str):
        return get_system(system, **overrides)
    raise TypeError(f"expected a system name or an AbstractSystem, got {type(system).__name__}")
