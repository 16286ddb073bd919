"""The declaration of a prior's named physical parameter: `ParameterSpec`.

A physical prior names its outputs (omega0, zeta; a, b, c for a user prior). Each is
declared once, with its shape, the transform that maps an unconstrained raw value to
its physical range, an optional initial value (in the constrained, physical space) and
its unit. The readouts turn theta_t into the raw values; the prior applies the
transforms (see `warp_phys.decoders._prior`).
"""

import dataclasses
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._transforms import TransformSpec, canonical_transform, inverse_transform


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One named physical parameter of a prior.

    **Arguments:**

    - `name`: the parameter's name (a key of `physical_parameters`).
    - `shape`: its shape, `()` for a scalar.
    - `transform`: raw -> physical map (`"identity"`, `"softplus"`, `"exp"`,
      `"sigmoid"`, `"tanh"`, `("bounded", lo, hi)`, `("around", c)`, `("log", c)`,
      `("affine", a, b)`).
    - `init`: initial physical value (broadcast to `shape`), or `None`: raw value 0 (the
      `"direct"` readout adds noise of its `init_scale`).
    - `unit`: a free string such as `"rad/s"`, `"1"`, `"m"`.
    """

    name: str
    shape: tuple[int, ...] = ()
    transform: TransformSpec = "identity"
    init: float | tuple[float, ...] | None = None
    unit: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"parameter names must be non-empty strings, got {self.name!r}")
        shape = (self.shape,) if isinstance(self.shape, int | np.integer) else self.shape
        try:
            shape = tuple(int(n) for n in shape)
        except TypeError:
            raise ValueError(
                f"shape of parameter {self.name!r} must be a tuple of ints, got {shape!r}"
            ) from None
        if any(n < 1 for n in shape):
            raise ValueError(f"shape of parameter {self.name!r} needs positive sizes, got {shape}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "transform", canonical_transform(self.transform))
        object.__setattr__(self, "unit", str(self.unit))
        if self.init is not None:
            try:
                value = np.broadcast_to(np.asarray(self.init, dtype=np.float64), shape)
            except ValueError:
                raise ValueError(
                    f"init value for {self.name!r} does not broadcast to its shape {shape}"
                ) from None
            inverse_transform(self.transform, value)  # fails outside the transform's range
            init = float(value) if shape == () else tuple(float(v) for v in value.ravel())
            object.__setattr__(self, "init", init)

    @property
    def size(self) -> int:
        """Number of scalars."""
        return int(np.prod(self.shape, dtype=int))

    def raw_init(self) -> np.ndarray:
        """The raw value that starts at `init`, flat `(size,)`; zeros without `init`."""
        if self.init is None:
            return np.zeros(self.size)
        value = np.broadcast_to(np.asarray(self.init, dtype=np.float64), self.shape)
        return np.ravel(inverse_transform(self.transform, value))


def parameter_specs(
    params: Mapping[str, int | tuple[int, ...]] | None = None,
    *,
    transforms: Mapping[str, TransformSpec] | None = None,
    init: Mapping | None = None,
    parameters: Mapping | Sequence[ParameterSpec] | None = None,
) -> tuple[ParameterSpec, ...]:
    """Parameter declarations from either form a user may write.

    `params={name: shape}` with `transforms={name: ...}` and `init={name: value}` (the
    original form), or `parameters=` a sequence of `ParameterSpec`, or a dict `name ->
    ParameterSpec | dict(shape=, transform=, init=, unit=) | shape`. Raises
    `ValueError` for an empty or doubly given declaration and unknown names.
    """
    if (params is None) == (parameters is None):
        raise ValueError(
            "declare the parameters once: params={name: shape} (with transforms=, init=) "
            "or parameters={name: {'shape': ..., 'transform': ..., 'init': ..., 'unit': ...}}"
        )
    if parameters is not None:
        if transforms or init:
            raise ValueError("transforms= and init= go with params=; put them in parameters=")
        return _rich_specs(parameters)
    if not isinstance(params, Mapping) or not params:
        raise ValueError(
            f"params must be a non-empty dict name -> shape, e.g. {{'omega': ()}}; got {params!r}"
        )
    transforms, init = dict(transforms or {}), dict(init or {})
    for what, keys in (("transforms", transforms), ("init", init)):
        extra = sorted(set(keys) - set(params))
        if extra:
            raise ValueError(
                f"{what} names unknown parameter(s) {extra}; parameters: {sorted(params)}"
            )
    return tuple(
        ParameterSpec(name, shape, transforms.get(name, "identity"), init.get(name))
        for name, shape in params.items()
    )


def _rich_specs(parameters) -> tuple[ParameterSpec, ...]:
    if isinstance(parameters, Mapping):
        specs = []
        for name, entry in parameters.items():
            if isinstance(entry, ParameterSpec):
                specs.append(dataclasses.replace(entry, name=name))
            elif isinstance(entry, Mapping):
                specs.append(ParameterSpec(name, **entry))
            else:
                specs.append(ParameterSpec(name, entry))
    else:
        specs = list(parameters)
    if not specs or not all(isinstance(s, ParameterSpec) for s in specs):
        raise ValueError(f"parameters must declare at least one parameter, got {parameters!r}")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names must be distinct, got {names}")
    return tuple(specs)


def split_raw(
    flat: Float[Array, " n"], specs: Sequence[ParameterSpec]
) -> dict[str, Array]:
    """The flat raw vector `(sum of sizes,)` as `{name: array of its shape}`, in order."""
    out, start = {}, 0
    for spec in specs:
        out[spec.name] = jnp.reshape(flat[start : start + spec.size], spec.shape)
        start += spec.size
    return out
