"""Named parameter transforms: how a decoder keeps a physical parameter positive or bounded.

theta_t is an unconstrained real vector, so a decoder whose parameters must be positive
(a frequency, a damping ratio) or bounded (a probability) maps each raw entry through a
transform. Decoders name their transforms in their spec instead of hand-coding them:

| spec                   | forward `raw -> value`            | range      |
|------------------------|-----------------------------------|------------|
| `"identity"`           | `raw`                             | R          |
| `"softplus"`           | `log(1 + exp(raw))`               | (0, inf)   |
| `"exp"`                | `exp(raw)`                        | (0, inf)   |
| `"sigmoid"`            | `1 / (1 + exp(-raw))`             | (0, 1)     |
| `"tanh"`               | `tanh(raw)`                       | (-1, 1)    |
| `("bounded", lo, hi)`  | `lo + (hi - lo) * sigmoid(raw)`   | (lo, hi)   |
| `("around", c)`        | `c * softplus(raw + log(e - 1))`  | (0, inf)   |
| `("log", c)`           | `c * exp(raw)`                    | (0, inf)   |
| `("affine", a, b)`     | `a * raw + b`                     | R          |

`("around", c)` (c > 0) equals `c` at `raw = 0` with slope `~0.63 c` there: a raw value
near 0 is a relative correction of a physical scale such as a frequency. `("log", c)`
(c > 0) is the same scale read on a log axis: raw is `log(value / c)`, so equal raw steps
are equal ratios, also far above `c` (where `"around"` becomes linear). `("affine", a,
b)` (a != 0) stores a value in other units, e.g. a state in data units `raw` whose
physical value is `scale * raw + shift`.

A list `["bounded", lo, hi]` (what JSON gives back) works too. Every transform has an
exact inverse, so initial values are given in the constrained space (`init={"omega":
6.28}` means the raw entry starts at `inverse(6.28)`).
"""

import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

TransformSpec = str | tuple | list

_TRANSFORMS = {
    # name: (forward, inverse); inverses take and return numpy arrays (used at init only)
    "identity": (lambda r: r, lambda v: v),
    "softplus": (jax.nn.softplus, lambda v: v + np.log(-np.expm1(-v))),
    "exp": (jnp.exp, np.log),
    "sigmoid": (jax.nn.sigmoid, lambda v: np.log(v) - np.log1p(-v)),
    "tanh": (jnp.tanh, np.arctanh),
}
_RANGES = {
    "identity": (-np.inf, np.inf),
    "softplus": (0.0, np.inf),
    "exp": (0.0, np.inf),
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}

TRANSFORM_NAMES = tuple(sorted(_TRANSFORMS)) + ("bounded", "around", "log", "affine")


def canonical_transform(spec: TransformSpec) -> str | tuple:
    """Validate a transform spec and return it in hashable form (a name or a tuple).

    Raises `ValueError` for an unknown name or malformed bounds.
    """
    if isinstance(spec, str):
        if spec in _TRANSFORMS:
            return spec
        raise ValueError(f"unknown transform {spec!r}; known transforms: {list(TRANSFORM_NAMES)}")
    if isinstance(spec, tuple | list) and spec and spec[0] in ("around", "log", "affine"):
        return _canonical_scaled(spec)
    if isinstance(spec, tuple | list) and len(spec) == 3 and spec[0] == "bounded":
        try:
            lo, hi = float(spec[1]), float(spec[2])
        except (TypeError, ValueError):
            raise ValueError(f"bounded transform needs numeric bounds, got {spec!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"bounded transform needs finite bounds lo < hi, got {spec!r}")
        return ("bounded", lo, hi)
    raise ValueError(
        f"a transform is a name in {sorted(_TRANSFORMS)}, ('bounded', lo, hi), ('around', c), "
        f"('log', c) or ('affine', a, b); got {spec!r}"
    )


def _canonical_scaled(spec) -> tuple:
    """`("around", c)` or `("log", c)` with finite c > 0, or `("affine", a, b)` with
    finite a != 0, b."""
    kind, *numbers = spec
    arity = 2 if kind == "affine" else 1
    try:
        numbers = [float(n) for n in numbers]
    except (TypeError, ValueError):
        numbers = []
    ok = len(numbers) == arity and all(np.isfinite(numbers)) and numbers[0] != 0.0
    if not ok or (kind != "affine" and numbers[0] < 0.0):
        need = f"('{kind}', c) needs finite c > 0" if kind != "affine" else (
            "('affine', a, b) needs finite a != 0 and b"
        )
        raise ValueError(f"transform {need}, got {spec!r}")
    return (kind, *numbers)


def get_transform(spec: TransformSpec) -> Callable:
    """The forward map `raw -> constrained value` of a transform spec (elementwise JAX)."""
    spec = canonical_transform(spec)
    if isinstance(spec, str):
        return _TRANSFORMS[spec][0]
    if spec[0] == "around":
        return lambda raw: positive_around(spec[1], raw)
    if spec[0] == "log":
        return lambda raw: spec[1] * jnp.exp(raw)
    if spec[0] == "affine":
        return lambda raw: spec[1] * raw + spec[2]
    _, lo, hi = spec
    return lambda raw: lo + (hi - lo) * jax.nn.sigmoid(raw)


def inverse_transform(spec: TransformSpec, value) -> np.ndarray:
    """The raw value whose transform is `value` (numpy, for initialisation).

    Raises `ValueError` when `value` lies outside the transform's open range.
    """
    spec = canonical_transform(spec)
    value = np.asarray(value, dtype=np.float64)
    if isinstance(spec, str):
        lo, hi = _RANGES[spec]
        inverse = _TRANSFORMS[spec][1]
    elif spec[0] == "around":
        lo, hi = 0.0, np.inf
        inverse = lambda v: _TRANSFORMS["softplus"][1](v / spec[1]) - _SP1
    elif spec[0] == "log":
        lo, hi = 0.0, np.inf
        inverse = lambda v: np.log(v / spec[1])
    elif spec[0] == "affine":
        lo, hi = -np.inf, np.inf
        inverse = lambda v: (v - spec[2]) / spec[1]
    else:
        _, lo, hi = spec
        inverse = lambda v: _TRANSFORMS["sigmoid"][1]((v - lo) / (hi - lo))
    if np.any(value <= lo) or np.any(value >= hi) or not np.all(np.isfinite(value)):
        raise ValueError(
            f"initial value {value.tolist()} is outside the range ({lo}, {hi}) "
            f"of transform {spec!r}"
        )
    return inverse(value)


def apply_transforms(params: Mapping, transforms: Mapping[str, TransformSpec]) -> dict:
    """`params` with each entry named in `transforms` mapped through its transform."""
    out = dict(params)
    for name, spec in transforms.items():
        out[name] = get_transform(spec)(out[name])
    return out


# softplus(raw + _SP1) == 1 at raw == 0
_SP1 = math.log(math.e - 1.0)


def positive_around(nominal, raw):
    """`nominal * softplus(raw + log(e - 1))`: positive, equal to `nominal` at `raw = 0`
    and with slope `~0.63 nominal` there, so an MLP output near 0 gives a relative
    (multiplicative) correction of a physical scale such as a frequency."""
    return nominal * jax.nn.softplus(raw + _SP1)
