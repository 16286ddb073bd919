"""Readouts: how theta_t becomes a prior's raw (unconstrained) physical parameters.

Every physical prior (`PhysicalPrior`) delegates this one step to a readout, chosen by
name with the prior's `readout=` option:

| readout    | theta_t is                                 | raw parameters            |
|------------|--------------------------------------------|---------------------------|
| `"latent"` | a code `z` of size `latent_size`           | `init_raw + g(z)`         |
| `"direct"` | the raw parameter vector itself            | `theta_t`                 |
| `"weights"`| the weights of an MLP `[tau (, x_prev)]`   | `init_raw + mlp(tau, ...)`|

`"latent"`: `g` is a small MLP (`width`, `depth`) whose weights are fields of the
readout, hence trainable decoder parameters shared by all time steps and trajectories;
the parameters depend on theta_t only, not on tau or x_prev, so they are the
trajectory's rather than the state's. Its last layer starts small, so the declared
initial values hold at the start. `"direct"` is population-level: the recurrence must
write each parameter linearly into theta_t. `"weights"` is the paper's form.

A new candidate is one class: subclass `AbstractReadout`, decorate it with
`@register_readout("name")`; its `__init__(specs, settings)` takes the prior's
`ParameterSpec`s and a `ReadoutSettings`.
"""

import abc
import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._activations import get_activation
from ._parameters import ParameterSpec, split_raw
from .mlp import mlp_apply, mlp_init

_READOUTS: dict[str, type["AbstractReadout"]] = {}


@dataclasses.dataclass(frozen=True)
class ReadoutSettings:
    """What a readout may use besides the parameter declarations.

    - `data_size`: channels of `x_prev`.
    - `width`, `depth`, `activation`: the readout's MLP (`"weights"`, `"latent"`).
    - `input_prev`: the `"weights"` MLP also reads `x_prev` (data units).
    - `latent_size`: size of the `"latent"` code z (D_theta).
    - `init_scale`: std of the `"direct"` raw init of parameters without `init`.
    - `seed`: seed of the `"latent"` readout's own MLP weights.
    """

    data_size: int
    width: int = 16
    depth: int = 2
    activation: str = "swish"
    input_prev: bool = True
    latent_size: int = 8
    init_scale: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if self.width < 1 or self.depth < 0 or self.latent_size < 1 or self.init_scale < 0:
            raise ValueError(
                "a readout needs width >= 1, depth >= 0, latent_size >= 1, init_scale >= 0; "
                f"got {self.width}, {self.depth}, {self.latent_size}, {self.init_scale}"
            )
        get_activation(self.activation)


class AbstractReadout(eqx.Module):
    """theta_t (unflattened) -> `{name: raw value}` for the declared parameters."""

    specs: tuple[ParameterSpec, ...] = eqx.field(static=True)

    @abc.abstractmethod
    def init_params(self, key: PRNGKeyArray) -> PyTree[Array]:
        """theta_t's pytree at initialisation."""

    @abc.abstractmethod
    def __call__(
        self, params: PyTree[Array], tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Array]:
        """Raw parameters `{name: array of its declared shape}` for one theta_t (`params`),
        at the scalar `tau`, after the observation `x_prev` `(data_size,)` (data units)."""

    @property
    def raw_size(self) -> int:
        return sum(s.size for s in self.specs)

    def offset(self, dtype) -> Array:
        """The raw values of the declared initial values, flat `(raw_size,)`."""
        return jnp.asarray(np.concatenate([s.raw_init() for s in self.specs]), dtype)


def register_readout(name: str):
    """Class decorator adding a readout to the registry under `name`."""

    def decorator(cls):
        if name in _READOUTS:
            raise ValueError(f"a readout named {name!r} is already registered")
        _READOUTS[name] = cls
        return cls

    return decorator


def list_readouts() -> list[str]:
    """Names of the registered readouts, sorted."""
    return sorted(_READOUTS)


def make_readout(
    name: str, specs: Sequence[ParameterSpec], settings: ReadoutSettings
) -> AbstractReadout:
    """The readout `name` for the parameters `specs`; `ValueError` for an unknown name."""
    if name not in _READOUTS:
        raise ValueError(f"unknown readout {name!r}; known readouts: {list_readouts()}")
    return _READOUTS[name](tuple(specs), settings)


@register_readout("direct")
class DirectReadout(AbstractReadout):
    """theta_t is `{name: raw}`: D_theta = number of scalars. Population-level."""

    init_scale: float = eqx.field(static=True)

    def __init__(self, specs, settings: ReadoutSettings):
        self.specs, self.init_scale = specs, float(settings.init_scale)

    def init_params(self, key):
        dtype = jax.dtypes.canonicalize_dtype(float)
        keys = jax.random.split(key, len(self.specs))
        params = {}
        for k, spec in zip(keys, self.specs, strict=True):
            if spec.init is not None or self.init_scale == 0:
                params[spec.name] = jnp.reshape(jnp.asarray(spec.raw_init(), dtype), spec.shape)
            else:
                params[spec.name] = self.init_scale * jax.random.normal(k, spec.shape)
        return params

    def __call__(self, params, tau, x_prev):
        return {s.name: jnp.reshape(params[s.name], s.shape) for s in self.specs}


@register_readout("weights")
class WeightsReadout(AbstractReadout):
    """theta_t are the weights of an MLP `[tau] (+ x_prev) -> raw` (the paper's form)."""

    sizes: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    input_prev: bool = eqx.field(static=True)

    def __init__(self, specs, settings: ReadoutSettings):
        self.specs = specs
        in_size = 1 + (settings.data_size if settings.input_prev else 0)
        self.sizes = (in_size,) + (settings.width,) * settings.depth + (self.raw_size,)
        self.activation, self.input_prev = settings.activation, bool(settings.input_prev)

    def init_params(self, key):
        return mlp_init(key, list(self.sizes))

    def __call__(self, params, tau, x_prev):
        inputs = jnp.reshape(jnp.asarray(tau), (1,))
        if self.input_prev:
            inputs = jnp.concatenate([inputs, x_prev])
        out = mlp_apply(params, inputs, get_activation(self.activation))
        return split_raw(self.offset(out.dtype) + out, self.specs)


# factor on the latent readout's initial last layer: raw = init_raw + O(1e-2) at start
_LATENT_LAST_SCALE = 1e-2


@register_readout("latent")
class LatentReadout(AbstractReadout):
    """theta_t is a code `z` `(latent_size,)`; raw = init_raw + g(z), with `g` an MLP
    whose weights `g` are trainable fields shared over time (not part of theta_t)."""

    g: tuple[dict[str, Array], ...]
    latent_size: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(self, specs, settings: ReadoutSettings):
        self.specs = specs
        self.latent_size, self.activation = int(settings.latent_size), settings.activation
        sizes = [self.latent_size] + [settings.width] * settings.depth + [self.raw_size]
        *hidden, last = mlp_init(jax.random.PRNGKey(settings.seed), sizes)
        self.g = (*hidden, jax.tree.map(lambda a: _LATENT_LAST_SCALE * a, last))

    def init_params(self, key):
        # unit-variance codes keep g's first layer in its active range
        return {"z": jax.random.normal(key, (self.latent_size,))}

    def __call__(self, params, tau, x_prev):
        del tau, x_prev  # the trajectory's parameters, not the state's
        out = mlp_apply(self.g, params["z"], get_activation(self.activation))
        return split_raw(self.offset(out.dtype) + out, self.specs)


@register_readout("latent_unit")
class UnitLatentReadout(LatentReadout):
    """`"latent"` read through the code's direction only: raw = init_raw + g(z / |z|)
    (scaled to norm sqrt(latent_size)). After the transient of theta_0, theta_t is linear
    in the current state with coefficients set by the physics, so its direction carries
    the parameters and its norm the amplitude: reading the direction keeps the
    parameters steady while a damped forecast decays."""

    def __call__(self, params, tau, x_prev):
        z = params["z"]
        unit = z * jnp.sqrt(z.size) / (jnp.linalg.norm(z) + 1e-6)
        return super().__call__({"z": unit}, tau, x_prev)
