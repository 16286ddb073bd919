"""The root-decoder abstraction and its registry.

A root decoder maps a coordinate `tau` (and optionally the previous observation) to a
prediction, using parameters that WARP stores as one flat vector `theta_t`. WARP only
needs three things from a decoder: the shapes of its parameters (to ravel / unravel
theta), an initialiser for those parameters, and the forward map.

Adding a decoder: subclass `AbstractDecoder` in its own module and decorate it with
`@register_decoder("name")`; its `__init__` takes `data_size` plus keyword options. For
a prior that is just a formula or a JAX function, use `decoder_from_sympy` or
`decoder_from_function` instead.

What a decoder needs from the run is declared on its class, and `make_decoder` (which
WARP calls) passes each setting only to decoders that declare it:

- `takes_size`: it has an internal MLP with options `width` and `depth` (WARP's
  `root_width`, `root_depth`);
- `needs_dt`: it takes `dt`, the time of one sampling interval in tau units
  (`1 / (seq_len - 1)`);
- `units`: `"normalised"` (it computes on the data as WARP is trained on it) or
  `"physical"` (it computes in raw units and takes the data normalisation
  `data = (raw - shift) / scale` as options `scale`, `shift`).

A factory function registered with `register_decoder` may carry the same names as
attributes; without them it gets none of these settings.

Positivity and bounds of physical parameters are declared, not hand-coded: decoders
name a transform per parameter (`"softplus"`, `"exp"`, `"sigmoid"`, `"tanh"`,
`("bounded", lo, hi)`); see `warp_phys.decoders._transforms`.
"""

import abc
import inspect
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._import_path import import_factory, is_import_path
from ._lexer import short

_REGISTRY: dict[str, Callable[..., "AbstractDecoder"]] = {}
# Decoders built from a spec string `"<prefix>:<body>"` rather than a registered name,
# e.g. `"sympy:A*sin(omega*t)"`; the handler is called as `handler(body, data_size=...,
# **options)`. Filled by the modules that implement each prefix (see symbolic.py).
_SPEC_PREFIXES: dict[str, Callable[..., "AbstractDecoder"]] = {}


class AbstractDecoder(eqx.Module):
    """Base class of all root decoders.

    A subclass provides:

    - `data_size`: the number of output channels (the size of one observation);
    - `init_params(key)`: a pytree of arrays, the root parameters at initialisation;
    - `__call__(params, tau, x_prev)`: the forward map. `params` has the structure of
      `init_params(key)`, `tau` is a scalar coordinate (normalised time), `x_prev` the
      previous observation of shape `(data_size,)`. Returns the mean of shape
      `(data_size,)`, or `(mean, std)` when `probabilistic` is true.

    Fields of the decoder module itself (not in `params`) are ordinary trainable
    parameters shared by all time steps; `params` change with `theta_t`.
    """

    data_size: eqx.AbstractVar[int]
    # what the decoder takes from the run (see the module docstring and `make_decoder`)
    takes_size: ClassVar[bool] = False
    needs_dt: ClassVar[bool] = False
    units: ClassVar[Literal["normalised", "physical"]] = "normalised"

    @property
    def probabilistic(self) -> bool:
        """Whether `__call__` returns `(mean, std)` rather than the mean alone."""
        return False

    @abc.abstractmethod
    def init_params(self, key: PRNGKeyArray) -> PyTree[Array]:
        """Root parameters at initialisation (the pytree that theta_t flattens)."""

    @abc.abstractmethod
    def __call__(self, params: PyTree[Array], tau: Float[Array, ""], x_prev: Float[Array, " data"]):
        """Forward map; see the class docstring."""

    def param_shapes(self) -> PyTree[jax.ShapeDtypeStruct]:
        """Shapes and dtypes of the root parameters, without allocating them."""
        return jax.eval_shape(self.init_params, jax.random.PRNGKey(0))

    @property
    def theta_size(self) -> int:
        """D_theta: the number of scalars in the flattened root parameters."""
        return sum(s.size for s in jax.tree.leaves(self.param_shapes()))

    def unflatten(self, theta: Float[Array, " D_theta"]) -> PyTree[Array]:
        """The flat vector `theta` of shape `(D_theta,)` as the pytree of parameters."""
        template = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), self.param_shapes())
        _, unravel = ravel_pytree(template)
        return unravel(theta)

    def flat_init(self, key: PRNGKeyArray) -> Float[Array, " D_theta"]:
        """`init_params(key)` flattened to shape `(D_theta,)`."""
        return ravel_pytree(self.init_params(key))[0]

    def decode(self, theta: Float[Array, " D_theta"], tau, x_prev):
        """Evaluate the root network whose flattened parameters are `theta`."""
        return self(self.unflatten(theta), tau, x_prev)


def register_decoder(name: str, *, overwrite: bool = False):
    """Class/function decorator adding a decoder factory to the registry under `name`.

    The factory is called as `factory(data_size=..., **options)` and must return an
    `AbstractDecoder`. Registering an existing name raises `ValueError` unless
    `overwrite=True`.
    """
    if not isinstance(name, str) or not name.strip() or ":" in name or name != name.strip():
        raise ValueError(
            f"decoder name must be a non-empty string without ':' or surrounding spaces, "
            f"got {name!r}"
        )

    def decorator(factory):
        if name in _REGISTRY and not overwrite:
            raise ValueError(
                f"a decoder named {name!r} is already registered; pass overwrite=True to replace it"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_decoders() -> list[str]:
    """Names of all registered decoders, sorted."""
    return sorted(_REGISTRY)


def get_decoder(name: str, *, data_size: int, **options) -> AbstractDecoder:
    """Build the registered decoder `name` for observations of size `data_size`.

    `name` may also be a spec string such as `"sympy:<formula>"` (see
    `parse_decoder_spec`). `options` are the decoder's own keyword arguments (e.g.
    `width`, `depth` for `mlp`). Unknown names and unknown options raise `ValueError`
    naming what is accepted. An import path `"package.module:attribute"` names a
    decoder (instance, class or factory) in your own module; see `_import_path`.
    """
    by_path = is_import_path(name, _SPEC_PREFIXES)
    if isinstance(name, str) and ":" in name and not by_path:
        prefix, body = name.split(":", 1)
        handler = _SPEC_PREFIXES.get(prefix.strip())
        if handler is None:
            raise ValueError(
                f"unknown decoder spec prefix {short(prefix.strip(), 40)} in {short(name, 80)}; "
                f"known prefixes: {sorted(_SPEC_PREFIXES)} (or a registered name: "
                f"{', '.join(list_decoders())})"
            )
        return _checked(handler(body, data_size=data_size, **options), name)
    factory = import_factory(name) if by_path else _lookup(name)
    accepted = _keyword_names(factory)
    if accepted is not None:
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ValueError(
                f"decoder {short(name, 80)} does not accept option(s) {short(unknown, 80)}; "
                f"it accepts {sorted(accepted - {'data_size'})}"
            )
    return _checked(factory(data_size=data_size, **options), name)


def make_decoder(
    spec: str,
    data_size: int,
    *,
    seq_len: int | None = None,
    root_width: int | None = None,
    root_depth: int | None = None,
    data_scale: Sequence[float] | None = None,
    data_shift: Sequence[float] | None = None,
    **options,
) -> AbstractDecoder:
    """Build the decoder `spec` with the run-level settings it declares (see the module
    docstring): `root_width`/`root_depth` as its `width`/`depth` if it `takes_size`,
    `dt = 1 / (seq_len - 1)` if it `needs_dt`, and `data_scale`/`data_shift` as its
    `scale`/`shift` if its `units` are `"physical"`. The others never see them.

    **Arguments:**

    - `spec`: a registered decoder name or a spec string such as `"sympy:<formula>"`.
    - `data_size`: channels of one observation.
    - `seq_len`: the training sequence length that defines tau (for `dt`).
    - `root_width`, `root_depth`: the size of the decoder's internal MLP (its `width`,
      `depth`).
    - `data_scale`, `data_shift`: the data normalisation per channel, `(data_size,)`
      each, in raw units.
    - `options`: the decoder's own keyword options; they win over the settings above
      (e.g. a `width` or `dt` given here), and an option the decoder does not take
      fails with the decoder's own error.

    **Returns:** an `AbstractDecoder`.
    """
    factory = decoder_factory(spec)
    declared = {}
    if getattr(factory, "takes_size", False):
        declared.update(width=root_width, depth=root_depth)
    if getattr(factory, "needs_dt", False) and seq_len is not None:
        declared["dt"] = 1.0 / (int(seq_len) - 1)
    if getattr(factory, "units", "normalised") == "physical":
        declared.update(scale=data_scale, shift=data_shift)
    given = {k: v for k, v in declared.items() if v is not None}
    return get_decoder(spec, data_size=data_size, **{**given, **options})


def decoder_keywords(spec: str) -> set[str] | None:
    """The keyword options the decoder `spec` takes (None when it takes any, or when
    `spec` names no registered decoder or prefix)."""
    factory = decoder_factory(spec)
    return None if factory is None else _keyword_names(factory)


def decoder_factory(spec):
    """The registered factory, spec-prefix handler or imported factory that builds `spec`."""
    if is_import_path(spec, _SPEC_PREFIXES):
        return import_factory(spec)
    if isinstance(spec, str) and ":" in spec:
        prefix = spec.split(":", 1)[0].strip()
        if prefix in _SPEC_PREFIXES:
            return _SPEC_PREFIXES[prefix]
    return _REGISTRY.get(spec) if isinstance(spec, str) else None


def parse_decoder_spec(spec: str, *, data_size: int, **options) -> AbstractDecoder:
    """Build a decoder from a one-line spec, as given on the command line.

    Grammar:

        spec     := NAME                          a registered decoder, see list_decoders()
                  | "sympy:" formula (";" formula)*   one formula per output channel
        formula  := sum ;  sum := product (("+" | "-") product)*
        product  := unary (("*" | "/") unary)* ;  unary := ("+" | "-") unary | power
        power    := atom (("**" | "^") unary)?
        atom     := NUMBER | NAME | FUNCTION "(" sum ("," sum)* ")" | "(" sum ")"

    In a formula, `t` is the normalised time tau, `x0, x1, ...` are the channels of the
    previous observation `x_prev`, `pi` and `E` are constants, FUNCTION is one of the
    whitelisted functions (exp, log, sin, cos, tan, sinh, cosh, tanh, sqrt, abs, atan,
    atan2, ...; see `warp_phys.decoders.symbolic.FUNCTIONS`), and every other name is a
    learned scalar parameter (read from theta_t by the readout). Formulas are parsed by a whitelist
    parser and never evaluated as Python. Example: `"sympy:A*exp(-gamma*t)*cos(omega*t + phi)"`.

    **Arguments:**

    - `spec`: the spec string.
    - `data_size`: the number of output channels (must equal the number of formulas).
    - `options`: keyword options of the decoder (for `sympy:`, those of
      `decoder_from_sympy`, e.g. `transforms={"gamma": "softplus"}`).

    **Returns:** an `AbstractDecoder`. Raises `ValueError` on any malformed spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a decoder spec must be a non-empty string, got {spec!r}")
    return get_decoder(spec.strip(), data_size=data_size, **options)


def _checked(decoder, name: str) -> AbstractDecoder:
    if not isinstance(decoder, AbstractDecoder):
        raise TypeError(
            f"decoder factory {short(name, 80)} returned {type(decoder).__name__}, not an "
            "AbstractDecoder"
        )
    return decoder


def _lookup(name: str):
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(list_decoders())
        prefixes = ", ".join(f"'{p}:<...>'" for p in sorted(_SPEC_PREFIXES))
        raise ValueError(
            f"unknown decoder {short(name, 80)}; registered decoders: {known}"
            + (f"; or a spec {prefixes}" if prefixes else "")
        ) from None


def _keyword_names(factory) -> set[str] | None:
    """Keyword names a factory accepts, or None when it takes **kwargs."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self"}
