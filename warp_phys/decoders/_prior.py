"""`PhysicalPrior`: the one kind of decoder that every physical prior is.

A prior declares its named physical parameters (`ParameterSpec`s: omega0 and zeta of
the oscillator; a, b, c of a user's prior) and writes the physics in physical units,
`forward(physical, tau, state)`. Everything else is shared:

    theta_t --readout--> raw --transforms--> physical --forward--> prediction

- the readout (`readout=`: `"weights"` by default, which identifies each trajectory's
  values; `"direct"`, population-level; `"latent"`, `"latent_unit"`; see `_readout.py`)
  maps theta_t to raw values, `raw_parameters`;
- `constrain` applies each parameter's transform, `physical_parameters` does both: the
  values the physics uses, in the prior's units, which plots and reports read;
- `predict` maps the previous observation from data units to physical units, runs
  `forward` and maps back: with the data normalised as `data = (physical - shift) /
  scale` (per channel), normalisation is invisible to the prior's author.

`make_decoder` gives a prior what it declares: `width`/`depth` (its readout's MLP),
`dt = 1 / (seq_len - 1)` (the physical time of one step) and the data's `scale`/`shift`.
"""

import abc
import inspect
from collections.abc import Mapping, Sequence
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._base import AbstractDecoder, decoder_factory
from ._parameters import ParameterSpec
from ._readout import AbstractReadout, ReadoutSettings, make_readout
from ._transforms import get_transform

__all__ = ["ParameterSpec", "PhysicalPrior"]


class PhysicalPrior(AbstractDecoder):
    """Base class of the physical priors (single trajectory, single step; vmap outside).

    A subclass calls `super().__init__(data_size, parameters, ...)` and implements
    `forward`. `params` below is one theta_t unflattened (`decoder.unflatten(theta_t)`),
    `tau` a scalar (normalised time), `x_prev` the previous observation `(data_size,)`
    in data units.

    **Arguments** (of `__init__`):

    - `data_size`: channels of one observation.
    - `parameters`: the `ParameterSpec`s of the named physical parameters, in order.
    - `readout`: `"weights"` (default: theta_t are the weights of an MLP `[tau, x_prev]
      -> raw`, identifying), `"direct"` (theta_t is the raw vector: population-level
      values), `"latent"` or `"latent_unit"` (see `list_readouts()`).
    - `width`, `depth`, `activation`, `input_prev`, `latent_size`, `init_scale`: the
      readout's settings (see `ReadoutSettings`).
    - `scale`, `shift`: the data normalisation per channel, `data = (physical - shift) /
      scale`, `(data_size,)` each in physical units; `None`: identity.
    - `dt`: physical time of one step (`1 / (seq_len - 1)` from `make_decoder`), or None.
    """

    units: ClassVar[str] = "physical"
    needs_dt: ClassVar[bool] = True
    takes_size: ClassVar[bool] = True
    data_size: int = eqx.field(static=True)
    parameters: tuple[ParameterSpec, ...] = eqx.field(static=True)
    scale: tuple[float, ...] = eqx.field(static=True)
    shift: tuple[float, ...] = eqx.field(static=True)
    dt: float | None = eqx.field(static=True)
    settings: ReadoutSettings = eqx.field(static=True)
    readout_name: str = eqx.field(static=True)
    readout: AbstractReadout

    def __init__(
        self,
        data_size: int,
        parameters: Sequence[ParameterSpec],
        *,
        readout: str = "weights",
        width: int = 16,
        depth: int = 2,
        activation: str = "swish",
        input_prev: bool = True,
        latent_size: int = 8,
        init_scale: float = 0.1,
        scale: Sequence[float] | None = None,
        shift: Sequence[float] | None = None,
        dt: float | None = None,
    ):
        data_size = int(data_size)
        scale = (1.0,) * data_size if scale is None else tuple(float(s) for s in scale)
        shift = (0.0,) * data_size if shift is None else tuple(float(s) for s in shift)
        if len(scale) != data_size or len(shift) != data_size or 0.0 in scale:
            raise ValueError(
                f"scale and shift need {data_size} entries (data_size), scale nonzero; "
                f"got {scale}, {shift}"
            )
        if dt is not None and not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        settings = ReadoutSettings(
            data_size, int(width), int(depth), activation, bool(input_prev), int(latent_size),
            float(init_scale),
        )
        self.data_size = data_size
        self.parameters = tuple(parameters)
        self.scale, self.shift = scale, shift
        self.dt = None if dt is None else float(dt)
        self.settings = settings
        self.readout_name = readout
        self.readout = make_readout(readout, self.parameters, settings)

    @property
    def width(self) -> int:
        """Width of the readout's MLP."""
        return self.settings.width

    @property
    def depth(self) -> int:
        """Hidden layers of the readout's MLP."""
        return self.settings.depth

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the physical parameters, in declaration order."""
        return tuple(s.name for s in self.parameters)

    @property
    def parameter_units(self) -> dict[str, str]:
        """`{name: unit}` of the physical parameters (free strings, `""` if undeclared)."""
        return {s.name: s.unit for s in self.parameters}

    def init_params(self, key: PRNGKeyArray) -> PyTree[Array]:
        """theta_0's pytree (the readout's)."""
        return self.readout.init_params(key)

    def raw_parameters(
        self, params: PyTree[Array], tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Array]:
        """Unconstrained values `{name: array of the declared shape}` (the readout's)."""
        return self.readout(params, tau, x_prev)

    def constrain(self, raw: Mapping[str, Array]) -> dict[str, Array]:
        """Raw values -> physical values, through each parameter's transform."""
        return {s.name: get_transform(s.transform)(raw[s.name]) for s in self.parameters}

    def physical_parameters(
        self, params: PyTree[Array], tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Array]:
        """`constrain(raw_parameters(params, tau, x_prev))`: the values the physics uses,
        `{name: array of the declared shape}` in the prior's units (`parameter_units`)."""
        return self.constrain(self.raw_parameters(params, tau, x_prev))

    @abc.abstractmethod
    def forward(
        self, physical: dict[str, Array], tau: Float[Array, ""], state: Float[Array, " data"]
    ) -> Float[Array, " data"]:
        """The physics in physical units: `physical` the named parameters, `tau` the
        scalar normalised time, `state` the previous observation in physical units
        `(data_size,)`. Returns the prediction `(data_size,)` in physical units."""

    def predict(
        self, physical: Mapping[str, Array], tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> Float[Array, " data"]:
        """`forward` seen from the data: `x_prev` `(data_size,)` and the returned
        prediction `(data_size,)` are in data units, `physical` in the prior's units."""
        scale, shift = jnp.asarray(self.scale), jnp.asarray(self.shift)
        state = None if x_prev is None else x_prev * scale + shift
        y = self.forward(dict(physical), tau, state)
        return (y - shift) / scale

    def __call__(
        self, params: PyTree[Array], tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> Float[Array, " data"]:
        """`predict(physical_parameters(params, tau, x_prev), tau, x_prev)`, data units."""
        return self.predict(self.physical_parameters(params, tau, x_prev), tau, x_prev)


def builds_physical_prior(spec: str) -> bool:
    """Whether the decoder `spec` builds a `PhysicalPrior`: a registered prior (e.g.
    `damped_oscillator`), a `sympy:` formula, or an imported prior instance or class.
    False for other decoders and for factory functions (their result is known only when
    called); a malformed or unknown spec is False here and named when it is built."""
    try:
        factory = decoder_factory(spec)
    except ValueError:
        return False
    built = getattr(factory, "built_class", factory)
    return inspect.isclass(built) and issubclass(built, PhysicalPrior)
