"""User priors written as plain JAX functions: `decoder_from_function`.

A prior is a function `fn(params, tau, x_prev) -> y` where `params` is a dict of named
arrays (the physical parameters, already transformed to their constrained range),
`tau` the normalised time (a scalar) and `x_prev` the previous observation of shape
`(data_size,)`. theta_t is the flat vector of the *raw* (unconstrained) parameters;
each named transform (see `warp_phys.decoders._transforms`: `"softplus"`, `"exp"`,
`"sigmoid"`, `"tanh"`, `("bounded", lo, hi)`) maps raw values to the values `fn` sees.

    @decoder_from_function(params={"omega": (), "phase": ()}, data_size=1,
                           transforms={"omega": "softplus"}, init={"omega": 6.28})
    def wave(p, tau, x_prev):
        return jnp.sin(p["omega"] * tau + p["phase"])[None]
"""

from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import AbstractDecoder, register_decoder
from ._lexer import short
from ._transforms import TransformSpec, apply_transforms, canonical_transform, inverse_transform


class FunctionDecoder(AbstractDecoder):
    """A decoder wrapping a user function `fn(params, tau, x_prev) -> (data_size,)`.

    Build it with `decoder_from_function` (or `decoder_from_sympy`). `params` passed to
    `__call__` are the raw (unconstrained) ones, as stored in theta_t; `constrain`
    maps them to the values `fn` receives.
    """

    fn: Callable = eqx.field(static=True)
    data_size: int = eqx.field(static=True)
    params_spec: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)
    transforms: tuple[tuple[str, str | tuple], ...] = eqx.field(static=True)
    init_raw: tuple[tuple[str, tuple[float, ...]], ...] = eqx.field(static=True)
    init_scale: float = eqx.field(static=True)
    label: str = eqx.field(static=True)

    def __init__(
        self,
        fn: Callable,
        params: Mapping[str, int | tuple[int, ...]],
        *,
        data_size: int,
        transforms: Mapping[str, TransformSpec] | None = None,
        init: Mapping | None = None,
        init_scale: float = 0.1,
        label: str | None = None,
    ):
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {type(fn).__name__}")
        if not isinstance(data_size, int | np.integer) or data_size < 1:
            raise ValueError(f"data_size must be an int >= 1, got {data_size!r}")
        if not isinstance(params, Mapping) or not params:
            raise ValueError(
                "params must be a non-empty dict name -> shape, e.g. {'omega': ()}; "
                f"got {params!r}"
            )
        spec = []
        for name, shape in params.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"parameter names must be non-empty strings, got {name!r}")
            shape = (shape,) if isinstance(shape, int | np.integer) else shape
            try:
                shape = tuple(int(n) for n in shape)
            except TypeError:
                raise ValueError(
                    f"shape of parameter {name!r} must be a tuple of ints, got {shape!r}"
                ) from None
            if any(n < 1 for n in shape):
                raise ValueError(f"shape of parameter {name!r} needs positive sizes, got {shape}")
            spec.append((name, shape))
        shapes = dict(spec)
        transforms = dict(transforms or {})
        init = dict(init or {})
        for what, keys in (("transforms", transforms), ("init", init)):
            extra = sorted(set(keys) - set(shapes))
            if extra:
                raise ValueError(
                    f"{what} names unknown parameter(s) {extra}; parameters: {sorted(shapes)}"
                )
        transforms = {k: canonical_transform(v) for k, v in transforms.items()}
        init_raw = []
        for name, value in init.items():
            try:
                value = np.broadcast_to(np.asarray(value, dtype=np.float64), shapes[name])
            except ValueError:
                raise ValueError(
                    f"init value for {name!r} does not broadcast to its shape {shapes[name]}"
                ) from None
            raw = inverse_transform(transforms.get(name, "identity"), value)
            init_raw.append((name, tuple(float(v) for v in raw.ravel())))
        self.fn = fn
        self.data_size = int(data_size)
        self.params_spec = tuple(spec)
        self.transforms = tuple(sorted(transforms.items()))
        self.init_raw = tuple(init_raw)
        self.init_scale = float(init_scale)
        self.label = label or getattr(fn, "__name__", "prior")
        self._check_output()

    def init_params(self, key: PRNGKeyArray) -> dict[str, Array]:
        """Raw parameters: `init` values (inverse-transformed) where given, else
        `init_scale * N(0, 1)` raw values."""
        given = dict(self.init_raw)
        keys = jax.random.split(key, len(self.params_spec))
        params = {}
        dtype = jax.dtypes.canonicalize_dtype(float)
        for k, (name, shape) in zip(keys, self.params_spec, strict=True):
            if name in given:
                params[name] = jnp.reshape(jnp.asarray(given[name], dtype=dtype), shape)
            else:
                params[name] = self.init_scale * jax.random.normal(k, shape)
        return params

    def constrain(self, params: Mapping[str, Array]) -> dict[str, Array]:
        """Raw parameters -> the constrained values that `fn` receives."""
        return apply_transforms(params, dict(self.transforms))

    def physical_parameters(
        self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Array]:
        """The named parameters of the prior as `fn` receives them (after their
        transforms), for one theta_t.

        **Arguments:**

        - `params`: the raw parameters (`unflatten(theta_t)`).
        - `tau`, `x_prev`: unused (a function prior's parameters do not depend on
          them); accepted for the common decoder signature.

        **Returns:** dict `name -> array` of the declared shape, in the prior's units.
        """
        del tau, x_prev
        return self.constrain(params)

    def __call__(self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]):
        out = jnp.asarray(self.fn(self.physical_parameters(params, tau, x_prev), tau, x_prev))
        return jnp.reshape(out, (1,)) if out.shape == () and self.data_size == 1 else out

    def _check_output(self):
        params = {n: jax.ShapeDtypeStruct(s, jnp.float32) for n, s in self.params_spec}
        tau = jax.ShapeDtypeStruct((), jnp.float32)
        x_prev = jax.ShapeDtypeStruct((self.data_size,), jnp.float32)
        try:
            out = jax.eval_shape(self, params, tau, x_prev)
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


def decoder_from_function(
    fn: Callable | None = None,
    params: Mapping[str, int | tuple[int, ...]] | None = None,
    *,
    data_size: int,
    transforms: Mapping[str, TransformSpec] | None = None,
    init: Mapping | None = None,
    init_scale: float = 0.1,
    name: str | None = None,
    overwrite: bool = False,
):
    """Turn a JAX function into a root decoder (or, with `fn` omitted, a decorator).

    **Arguments:**

    - `fn`: `fn(params, tau, x_prev) -> y`; `params` a dict of arrays with the shapes
      below, `tau` a scalar, `x_prev` of shape `(data_size,)`; `y` of shape
      `(data_size,)` (a scalar is accepted when `data_size == 1`). Plain JAX code.
    - `params`: dict `name -> shape` (`()` for a scalar) of the physical parameters.
    - `data_size`: number of output channels; the output shape is checked now, and a
      mismatch is a `ValueError`.
    - `transforms`: dict `name -> transform` for positivity or bounds (`"softplus"`,
      `"exp"`, `"sigmoid"`, `"tanh"`, `("bounded", lo, hi)`); others are unconstrained.
    - `init`: dict `name -> initial value` in the constrained space (broadcast to the
      shape); others start at raw `init_scale * N(0, 1)`.
    - `name`: also register the decoder under this name (so `WARP(decoder=name)` and
      checkpoints can refer to it); `overwrite` as in `register_decoder`.

    **Returns:** a `FunctionDecoder` (D_theta = total size of `params`).
    """
    if fn is None:
        return lambda f: decoder_from_function(
            f, params, data_size=data_size, transforms=transforms, init=init,
            init_scale=init_scale, name=name, overwrite=overwrite,
        )
    if params is None:
        raise ValueError("decoder_from_function needs params, a dict name -> shape")
    decoder = FunctionDecoder(
        fn, params, data_size=data_size, transforms=transforms, init=init,
        init_scale=init_scale, label=name,
    )
    if name is not None:
        register_named(name, decoder, overwrite=overwrite)
    return decoder


def register_named(name: str, decoder: AbstractDecoder, *, overwrite: bool = False) -> None:
    """Register a ready-built decoder instance under `name` (built for its own data_size)."""

    def factory(data_size: int) -> AbstractDecoder:
        if data_size != decoder.data_size:
            raise ValueError(
                f"decoder {name!r} predicts {decoder.data_size} channels, "
                f"but data_size {data_size} was requested"
            )
        return decoder

    register_decoder(name, overwrite=overwrite)(factory)
