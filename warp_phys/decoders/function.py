"""User priors written as plain JAX functions: `decoder_from_function`.

A prior is a function `fn(p, tau, x_prev) -> y` written in PHYSICAL units: `p` a dict
of named arrays (the physical parameters, already transformed to their range), `tau`
the normalised time (a scalar), `x_prev` the previous observation `(data_size,)` in
physical units; `y` the prediction `(data_size,)` in physical units. The model maps the
normalised data to physical units before `fn` and back after it (`units="physical"`,
the default); `units="normalised"` hands `fn` the data as trained on. A function whose
4th parameter is named `dt` also gets the physical time of one step,
`fn(p, tau, x_prev, dt)` (WARP sets `dt = 1 / (seq_len - 1)`).

Parameters are declared as `params={name: shape}` with `transforms={name: ...}` and
`init={name: value}`, or in one place, with units, as `parameters={name: {"shape": (),
"transform": "softplus", "init": 6.28, "unit": "rad/s"}}` (or `ParameterSpec`s). Each
transform (`"softplus"`, `"exp"`, `"sigmoid"`, `"tanh"`, `("bounded", lo, hi)`, ...; see
`warp_phys.decoders._transforms`) maps the raw value that the readout reads from theta_t
to the value `fn` sees; `init` is given in that constrained space.

    @decoder_from_function(parameters={"omega": {"transform": "softplus", "init": 6.28,
                                                 "unit": "rad/s"}, "phase": {}},
                           data_size=1)
    def wave(p, tau, x_prev):
        return jnp.sin(p["omega"] * tau + p["phase"])[None]
"""

import inspect
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import AbstractDecoder, register_decoder
from ._lexer import short
from ._parameters import parameter_specs
from ._prior import ParameterSpec, PhysicalPrior
from ._transforms import TransformSpec


class FunctionDecoder(PhysicalPrior):
    """A physical prior wrapping a user function `fn(p, tau, x_prev[, dt]) -> (data_size,)`.

    Build it with `decoder_from_function` (or `decoder_from_sympy`); the arguments are
    those of `decoder_from_function` plus `label` (its name in messages) and the
    `PhysicalPrior` settings (`readout="weights"` by default, `width`, `depth`,
    `activation`, `input_prev`, `latent_size`, `scale`, `shift`, `dt`). With
    `"weights"`, theta_t are the weights of a small MLP `[tau, x_prev] -> raw parameters`
    (each trajectory's values); with `"direct"`, theta_t holds the raw (unconstrained)
    parameters themselves (population-level values). `constrain` maps the raw values
    to those `fn` receives.
    """

    fn: Callable = eqx.field(static=True)
    label: str = eqx.field(static=True)
    takes_dt: bool = eqx.field(static=True)
    dt_required: bool = eqx.field(static=True)
    function_units: str = eqx.field(static=True)

    def __init__(
        self,
        fn: Callable,
        params: Mapping[str, int | tuple[int, ...]] | None = None,
        *,
        data_size: int,
        parameters: Mapping | Sequence[ParameterSpec] | None = None,
        transforms: Mapping[str, TransformSpec] | None = None,
        init: Mapping | None = None,
        init_scale: float = 0.1,
        label: str | None = None,
        units: str = "physical",
        readout: str = "weights",
        scale: Sequence[float] | None = None,
        shift: Sequence[float] | None = None,
        dt: float | None = None,
        **readout_options,
    ):
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {type(fn).__name__}")
        if not isinstance(data_size, int | np.integer) or data_size < 1:
            raise ValueError(f"data_size must be an int >= 1, got {data_size!r}")
        if units not in ("physical", "normalised"):
            raise ValueError(f"units must be 'physical' or 'normalised', got {units!r}")
        unknown = sorted(set(readout_options) - {"width", "depth", "activation", "input_prev",
                                                 "latent_size"})
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} of a function prior")
        specs = parameter_specs(params, transforms=transforms, init=init, parameters=parameters)
        if units == "normalised":  # fn sees the data as trained on
            scale = shift = None
        super().__init__(
            int(data_size), specs, readout=readout, init_scale=init_scale, scale=scale,
            shift=shift, dt=dt, **readout_options,
        )
        self.fn = fn
        self.label = label or getattr(fn, "__name__", "prior")
        self.takes_dt, self.dt_required = _takes_dt(fn)
        self.function_units = units
        self._check_output()

    def rebuild(self, **settings) -> "FunctionDecoder":
        """This prior with other `PhysicalPrior` settings (`readout`, `width`, `depth`,
        `activation`, `input_prev`, `latent_size`, `init_scale`, `scale`, `shift`,
        `dt`): what `make_decoder` passes when a run names the prior (registered or
        by import path)."""
        s = self.settings
        current = dict(
            readout=self.readout_name, width=s.width, depth=s.depth, activation=s.activation,
            input_prev=s.input_prev, latent_size=s.latent_size, init_scale=s.init_scale,
            scale=self.scale, shift=self.shift, dt=self.dt,
        )
        return FunctionDecoder(
            self.fn, data_size=self.data_size, parameters=self.parameters, label=self.label,
            units=self.function_units, **{**current, **settings},
        )

    @property
    def params_spec(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """`((name, shape), ...)` of the declared parameters."""
        return tuple((s.name, s.shape) for s in self.parameters)

    def forward(self, physical, tau: Float[Array, ""], state: Float[Array, " data"]):
        """`fn(physical, tau, state[, dt])`, a scalar made `(1,)` when `data_size == 1`."""
        if self.dt_required and self.dt is None:
            raise ValueError(
                f"prior {short(self.label, 80)} takes dt: pass dt=..., or use it by name "
                "so that WARP sets dt = 1 / (seq_len - 1)"
            )
        return self._apply(physical, tau, state, self.dt)

    def _apply(self, physical, tau, state, dt):
        # without a dt, a function whose dt has a default value keeps its default
        with_dt = self.takes_dt and dt is not None
        args = (physical, tau, state, dt) if with_dt else (physical, tau, state)
        out = jnp.asarray(self.fn(*args))
        return jnp.reshape(out, (1,)) if out.shape == () and self.data_size == 1 else out

    def _check_output(self):
        physical = {s.name: jax.ShapeDtypeStruct(s.shape, jnp.float32) for s in self.parameters}
        tau = jax.ShapeDtypeStruct((), jnp.float32)
        x_prev = jax.ShapeDtypeStruct((self.data_size,), jnp.float32)
        dt = 1.0 if self.dt is None and self.dt_required else self.dt  # placeholder
        try:
            out = jax.eval_shape(lambda *a: self._apply(*a, dt), physical, tau, x_prev)
        except Exception as err:
            reason = short(" ".join(str(err).split()), 80)  # one line, bounded
            raise ValueError(
                f"prior {short(self.label, 80)} failed when called with params "
                f"{short(dict(self.params_spec), 80)}, a scalar tau and x_prev of shape "
                f"({self.data_size},): {type(err).__name__}: {reason}"
            ) from err
        shape = getattr(out, "shape", None)
        if shape != (self.data_size,) or not jnp.issubdtype(out.dtype, jnp.floating):
            raise ValueError(
                f"prior {short(self.label, 80)} must return a float array of shape "
                f"({self.data_size},) "
                f"(data_size), or a scalar when data_size is 1; it returned "
                f"{type(out).__name__} {shape} {getattr(out, 'dtype', '')}"
            )


def _takes_dt(fn: Callable) -> tuple[bool, bool]:
    """Whether `fn`'s 4th positional parameter is named `dt`, and whether it is required
    (has no default value)."""
    try:
        positional = [
            p for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False, False
    if len(positional) < 4 or positional[3].name != "dt":
        return False, False
    return True, positional[3].default is inspect.Parameter.empty


def decoder_from_function(
    fn: Callable | None = None,
    params: Mapping[str, int | tuple[int, ...]] | None = None,
    *,
    data_size: int,
    parameters: Mapping | Sequence[ParameterSpec] | None = None,
    transforms: Mapping[str, TransformSpec] | None = None,
    init: Mapping | None = None,
    init_scale: float = 0.1,
    units: str = "physical",
    readout: str = "weights",
    name: str | None = None,
    overwrite: bool = False,
    **options,
):
    """Turn a JAX function into a physical prior (or, with `fn` omitted, a decorator).

    **Arguments:**

    - `fn`: `fn(p, tau, x_prev) -> y` or `fn(p, tau, x_prev, dt) -> y`; `p` a dict of
      arrays with the declared shapes, `tau` a scalar, `x_prev` `(data_size,)`, `dt` the
      physical time of one step; `y` `(data_size,)` (a scalar when `data_size == 1`).
      Physical units in and out (see `units`). Plain JAX code.
    - `params`: dict `name -> shape` (`()` for a scalar) of the physical parameters,
      with `transforms` (dict `name -> transform`: `"softplus"`, `"exp"`, `"sigmoid"`,
      `"tanh"`, `("bounded", lo, hi)`) and `init` (dict `name -> initial value` in the
      constrained space; `"direct"` starts the others at raw `init_scale * N(0, 1)`,
      the other readouts at raw 0 plus their MLP's initial output).
    - `parameters`: instead of those three, `name -> {"shape", "transform", "init",
      "unit"}` (each optional) or a list of `ParameterSpec`; `unit` is a free string
      such as `"rad/s"` (`decoder.parameter_units`).
    - `data_size`: number of output channels; the output shape is checked now.
    - `units`: `"physical"` (WARP gives the data's `scale`/`shift` and maps `x_prev`
      and `y`) or `"normalised"` (fn sees the data as trained on).
    - `readout`: how theta_t gives the parameters (`benchmarks/readouts.py` measured
      them): `"weights"` (default; theta_t are the weights of a small MLP
      `[tau, x_prev] -> parameters`, which identifies each trajectory's values),
      `"direct"` (theta_t holds the raw parameters: population-level values; on MSD
      it learned the population mean), `"latent"` or
      `"latent_unit"`; `options` its settings (`width`, `depth`, `activation`,
      `input_prev`, `latent_size`) and `scale`, `shift`, `dt` (see `PhysicalPrior`).
    - `name`: also register the prior under this name (so `WARP(decoder=name)` and
      checkpoints can refer to it; WARP then passes `width`, `depth`, `dt` and, for
      physical units, `scale`/`shift`); `overwrite` as in `register_decoder`.

    **Returns:** a `FunctionDecoder` (D_theta is the size of the readout's MLP with
    `"weights"`, the total size of the parameters with `"direct"`).
    """
    if fn is None:
        return lambda f: decoder_from_function(
            f, params, data_size=data_size, parameters=parameters, transforms=transforms,
            init=init, init_scale=init_scale, units=units, readout=readout, name=name,
            overwrite=overwrite, **options,
        )
    if params is None and parameters is None:
        raise ValueError("decoder_from_function needs params (a dict name -> shape) or parameters")
    decoder = FunctionDecoder(
        fn, params, data_size=data_size, parameters=parameters, transforms=transforms,
        init=init, init_scale=init_scale, label=name, units=units, readout=readout, **options,
    )
    if name is not None:
        register_named(name, decoder, overwrite=overwrite)
    return decoder


def register_named(name: str, decoder: FunctionDecoder, *, overwrite: bool = False) -> None:
    """Register a ready-built prior under `name` (for its own data_size). `decoder.rebuild`
    rebuilds it with the run's settings (`width`, `depth`, `dt`, `scale`, `shift`,
    `readout`, `latent_size`), which `make_decoder` passes as the factory declares."""

    def factory(
        data_size: int, width=None, depth=None, dt=None, scale=None, shift=None,
        readout=None, latent_size=None,
    ) -> AbstractDecoder:
        if data_size != decoder.data_size:
            raise ValueError(
                f"decoder {name!r} predicts {decoder.data_size} channels, "
                f"but data_size {data_size} was requested"
            )
        given = dict(
            width=width, depth=depth, dt=dt, scale=scale, shift=shift, readout=readout,
            latent_size=latent_size,
        )
        given = {k: v for k, v in given.items() if v is not None}
        return decoder.rebuild(**given) if given else decoder

    factory.takes_size, factory.needs_dt = True, True
    factory.units = decoder.function_units
    register_decoder(name, overwrite=overwrite)(factory)
