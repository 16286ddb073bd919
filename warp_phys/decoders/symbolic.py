"""Priors written as formulas: `decoder_from_sympy` and the `"sympy:<formula>"` spec.

    decoder_from_sympy("A*exp(-gamma*t)*cos(omega*t + phi)", time="t",
                       params=["A", "gamma", "omega", "phi"],
                       transforms={"gamma": "softplus", "omega": "softplus"})

Strings are parsed by the whitelist parser of `warp_phys.decoders._formula` (never by
`sympify`, which evaluates Python); sympy expressions built in Python are accepted as
they are. The expression is compiled to JAX with `sympy.lambdify(..., modules="jax")`
and wrapped in a `FunctionDecoder`, so transforms and initial values work exactly as in
`decoder_from_function`. Every parameter is a scalar, read from theta_t by the readout
(`"weights"` by default; `readout="direct"`: one entry of theta_t each, population-level).

A whole input, all channels together, is bounded: at most `MAX_LENGTH` characters of
formulas, `MAX_CHANNELS` channels, `MAX_NODES` nodes, nested at most `MAX_DEPTH` deep
(sympy expressions included). Each number is rounded once, when compiled, to JAX's
float type; a number beyond its range is refused, never turned into inf or 0.
"""

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import sympy

from ._base import _SPEC_PREFIXES
from ._constants import describe
from ._formula import MAX_LENGTH, check_size, nodes, parse_formula
from ._lexer import FUNCTIONS, check_name, short
from ._parameters import parameter_specs
from ._transforms import TransformSpec
from .function import FunctionDecoder, register_named

MAX_CHANNELS = 256

_CHANNEL = re.compile(r"x(\d+)", re.ASCII)
# Names that sympy's printers may emit for whitelisted functions, bound to JAX versions
# explicitly (sympy's own "jax" namespace lacks some, e.g. erf, and would fall back to
# the `math` module, which cannot trace).
_JAX_NAMESPACE = {
    "exp": jnp.exp, "log": jnp.log, "sqrt": jnp.sqrt, "abs": jnp.abs, "Abs": jnp.abs,
    "sign": jnp.sign, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "sinh": jnp.sinh,
    "cosh": jnp.cosh, "tanh": jnp.tanh, "arcsin": jnp.arcsin, "arccos": jnp.arccos,
    "arctan": jnp.arctan, "arcsinh": jnp.arcsinh, "arccosh": jnp.arccosh,
    "arctanh": jnp.arctanh, "arctan2": jnp.arctan2, "asin": jnp.arcsin, "acos": jnp.arccos,
    "atan": jnp.arctan, "asinh": jnp.arcsinh, "acosh": jnp.arccosh, "atanh": jnp.arctanh,
    "atan2": jnp.arctan2, "erf": jax.scipy.special.erf, "pi": jnp.pi, "e": jnp.e, "E": jnp.e,
}

__all__ = ["FUNCTIONS", "decoder_from_sympy", "parse_formula"]


def decoder_from_sympy(
    expr: str | sympy.Expr | Sequence[str | sympy.Expr],
    *,
    time: str = "t",
    params: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    data_size: int | None = None,
    transforms: Mapping[str, TransformSpec] | None = None,
    init: Mapping[str, float] | None = None,
    init_scale: float = 0.1,
    units_of: Mapping[str, str] | None = None,
    units: str = "physical",
    readout: str = "weights",
    name: str | None = None,
    overwrite: bool = False,
    **options,
) -> FunctionDecoder:
    """Build a decoder from a formula `y = f(t, params, x_prev)`.

    **Arguments:**

    - `expr`: a formula string, a sympy expression, or a list of them (one per output
      channel). A string may also hold several formulas separated by `;`.
    - `time`: the name of the time symbol, bound to tau (normalised time, a scalar).
    - `params`: names of the learned scalar parameters, in declaration order. `None`: every
      free symbol that is not `time` or an input, sorted by name. When given, a string
      formula may only use these names, `time` and the inputs.
    - `inputs`: names bound to the channels of `x_prev`, in order (`inputs[i]` is
      `x_prev[i]`). `None`: the names `x0, x1, ...` (below `data_size`) are inputs.
    - `data_size`: the number of channels; defaults to the number of formulas, and
      must equal it.
    - `transforms`, `init`, `init_scale`: per-parameter positivity/bounds and initial
      values, as in `decoder_from_function`.
    - `units_of`: dict `name -> unit` (free strings such as `"rad/s"`).
    - `units`, `readout`, `options` (`width`, `depth`, `scale`, `shift`, `dt`, ...): as in
      `decoder_from_function`; the formula is in physical units by default.
    - `name`: also register the decoder under this name.

    **Returns:** a `FunctionDecoder` (D_theta = number of parameters with
    `readout="direct"`, the readout MLP's size with the default `"weights"`). Raises
    `ValueError` for rejected formulas (naming the offending token and position),
    unknown or missing symbols, or a wrong number of formulas.
    """
    sources = _split(expr)
    if data_size is None:
        data_size = len(sources)
    if data_size != len(sources):
        raise ValueError(f"data_size is {data_size} but {len(sources)} formula(s) were given")
    input_names, param_names = _declared_names(time, inputs, params, data_size)

    allowed = None
    if param_names is not None:
        implicit_inputs = [f"x{i}" for i in range(data_size)] if input_names is None else []
        allowed = {time, *(input_names or []), *param_names, *implicit_inputs}
    exprs = [parse_formula(s, allowed) if isinstance(s, str) else s for s in sources]
    check_size(exprs)  # all channels together; before sympy recurses into them
    symbols = _symbols_by_name(exprs)
    input_names, param_names = _resolve_names(symbols, time, input_names, param_names, data_size)

    label = "; ".join(str(s) for s in sources)
    label = label if len(label) <= 80 else label[:77] + "..."
    fn = _compile(exprs, symbols, time, param_names, input_names)
    fn.__name__ = f"sympy:{label}"
    specs = parameter_specs({n: () for n in param_names}, transforms=transforms, init=init)
    units_of = dict(units_of or {})
    unknown = sorted(set(units_of) - set(param_names))
    if unknown:
        raise ValueError(f"units_of names unknown parameter(s) {short(unknown)}")
    specs = [dataclasses.replace(s, unit=units_of.get(s.name, "")) for s in specs]
    decoder = FunctionDecoder(
        fn, data_size=data_size, parameters=specs, init_scale=init_scale, label=label,
        units=units, readout=readout, **options,
    )
    if name is not None:
        register_named(name, decoder, overwrite=overwrite)
    return decoder


def _declared_names(time, inputs, params, data_size: int):
    """The checked `(inputs, params)` names as given (`None` where not given);
    `ValueError` for a bad name, more inputs than channels, or a name used twice."""
    check_name(time, "time")
    input_names = None if inputs is None else [check_name(n, "input") for n in inputs]
    if input_names is not None and len(input_names) > data_size:
        raise ValueError(f"{len(input_names)} inputs given but x_prev has {data_size} channels")
    param_names = None if params is None else [check_name(n, "parameter") for n in params]
    declared = [time] + (input_names or []) + (param_names or [])
    if len(set(declared)) != len(declared):
        repeated = sorted(n for n, count in Counter(declared).items() if count > 1)
        raise ValueError(
            f"time, inputs and params must have distinct names; repeated: {short(repeated)}"
        )
    return input_names, param_names


def _resolve_names(symbols, time: str, input_names, param_names, data_size: int):
    """The `(inputs, params)` names of a parsed formula: the defaults filled in (inputs
    `x0, x1, ...`; params every other free symbol, by name), every symbol accounted for."""
    if input_names is None:
        input_names = [f"x{i}" for i in range(data_size)]
        for symbol_name in sorted(set(symbols) - set(param_names or [])):
            match = _CHANNEL.fullmatch(symbol_name)
            if match and int(match.group(1)) >= data_size:
                raise ValueError(
                    f"{short(symbol_name)} refers to channel {short(int(match.group(1)))} of "
                    f"x_prev, but data_size is {data_size}"
                )
        clash = sorted(set(input_names) & ({time} | set(param_names or [])))
        if clash:
            raise ValueError(
                f"{short(clash)} name channels of x_prev; pass inputs=[...] to use other "
                "input names"
            )
    if param_names is None:
        param_names = sorted(set(symbols) - {time} - set(input_names))
    unknown = sorted(set(symbols) - {time} - set(input_names) - set(param_names))
    if unknown:
        raise ValueError(
            f"formula uses undeclared symbol(s) {short(unknown)}; declare them in params"
        )
    if not param_names:
        raise ValueError("the formula has no learned parameters (theta_t would be empty)")
    return input_names, param_names


def _compile(exprs, symbols, time: str, param_names: list[str], input_names: list[str]):
    """`fn(p, tau, x_prev) -> (len(exprs),)`: the formulas compiled to JAX, with `time`
    bound to tau, each parameter name to `p[name]` and `input_names[i]` to `x_prev[i]`."""

    def symbol(n):
        return symbols.get(n, sympy.Symbol(n, real=True))

    args = [symbol(n) for n in [time, *param_names, *input_names]]
    args, exprs = _compilable(args, exprs)
    compiled = sympy.lambdify(args, exprs, modules=[_JAX_NAMESPACE, "jax"], dummify=False)
    n_inputs = len(input_names)

    def fn(p, tau, x_prev):
        outputs = compiled(tau, *(p[n] for n in param_names), *(x_prev[i] for i in range(n_inputs)))
        return jnp.stack([jnp.asarray(o) + jnp.zeros_like(tau) for o in outputs])

    return fn


def _split(expr) -> list:
    """The formulas of `expr`, one per channel; `ValueError` beyond the input limits."""
    if isinstance(expr, str):
        length = len(expr)
        sources = [] if length > MAX_LENGTH else [part.strip() for part in expr.split(";")]
    elif isinstance(expr, sympy.Basic):
        length, sources = 0, [expr]
    elif isinstance(expr, Sequence) and expr:
        sources = list(expr)
        length = sum(len(s) + 1 for s in sources if isinstance(s, str))
    else:
        raise ValueError(
            f"expr must be a formula string, a sympy expression or list; got {short(expr)}"
        )
    if length > MAX_LENGTH:
        raise ValueError(
            f"the formulas are {length} characters long, the limit is {MAX_LENGTH} "
            "(all channels together)"
        )
    if len(sources) > MAX_CHANNELS:
        raise ValueError(f"{len(sources)} formulas (channels), the limit is {MAX_CHANNELS}")
    for source in sources:
        if not isinstance(source, str | sympy.Expr):
            raise ValueError(
                f"each formula must be a string or a sympy expression, got {short(source)}"
            )
    return sources


def _compilable(args: list[sympy.Symbol], exprs: list[sympy.Expr]):
    """`args` and `exprs` with each symbol replaced by one named `_0, _1, ...` (a safe
    identifier that no formula uses, so lambdify substitutes nothing, which costs time
    quadratic in the number of symbols) and each number that is not a small exact
    rational by its float value: lambdify would print a large integer as a Python int,
    which JAX refuses beyond int32. A constant that is not a real number within the range
    of JAX's float type is a `ValueError`."""
    dtype = jax.dtypes.canonicalize_dtype(float)
    largest = float(jnp.finfo(dtype).max)
    mapping = {arg: sympy.Symbol(f"_{i}", real=True) for i, arg in enumerate(args)}
    for atom in {node for node in nodes(exprs) if node.is_number and not node.args}:
        value = float(atom) if atom.is_real and atom.is_finite else math.inf
        if not abs(value) <= largest:
            raise ValueError(
                f"the constant {describe(atom)} is not a real number within the range of "
                f"{dtype.name} (±{largest:.3g})"
            )
        small = atom.is_Rational and max(abs(atom.p), atom.q) < 2**31
        if atom.is_Number and not small:  # 17 digits: printed, reads back as the same float64
            mapping[atom] = sympy.Float(value, 17)
    with sympy.evaluate(False):
        return [mapping[arg] for arg in args], [expr.xreplace(mapping) for expr in exprs]


def _symbols_by_name(exprs) -> dict[str, sympy.Symbol]:
    symbols = {}
    for expr in exprs:
        for s in expr.free_symbols:
            if symbols.setdefault(s.name, s) != s:
                raise ValueError(f"two different sympy symbols are both named {short(s.name)}")
    return symbols


_SPEC_OPTIONS = (
    "time", "params", "inputs", "transforms", "init", "init_scale", "units_of", "units",
    "readout", "width", "depth", "activation", "input_prev", "latent_size", "scale", "shift",
    "dt",
)


def _from_spec(body: str, *, data_size: int, **options) -> FunctionDecoder:
    """Handler of `"sympy:<formula>[; <formula> ...]"` specs (see `parse_decoder_spec`)."""
    unknown = sorted(set(options) - set(_SPEC_OPTIONS))
    if unknown:
        raise ValueError(
            f"a 'sympy:' decoder does not accept option(s) {short(unknown)}; "
            f"it accepts {list(_SPEC_OPTIONS)}"
        )
    return decoder_from_sympy(body, data_size=data_size, **options)


# what make_decoder gives a formula prior (see PhysicalPrior)
_from_spec.takes_size, _from_spec.needs_dt, _from_spec.units = True, True, "physical"
_from_spec.built_class = FunctionDecoder
_SPEC_PREFIXES["sympy"] = _from_spec
