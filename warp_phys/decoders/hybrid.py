"""Physics plus a learned residual: `y = physics(tau, x_prev) + mlp(tau, x_prev)`.

For when the physics is only partly known: any decoder (usually a physical one) is
completed by a small MLP. theta_t holds both parameter sets as one pytree
`{"physics": ..., "residual": ...}`.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import get_activation
from ._base import AbstractDecoder, decoder_factory, get_decoder, register_decoder
from .mlp import mlp_apply, mlp_init


@register_decoder("hybrid")
class HybridDecoder(AbstractDecoder):
    """`y = physics(params["physics"], tau, x_prev) + residual(params["residual"], [tau, x_prev])`.

    The residual MLP's last layer starts scaled by `residual_init_scale`, so at
    initialisation the prediction is (nearly) the physics alone.

    **Arguments:**

    - `data_size`: number of channels.
    - `physics`: a registered decoder name (or spec such as `"sympy:..."`, or an
      `AbstractDecoder` instance; only names and specs can be rebuilt from a checkpoint).
    - `physics_options`: keyword options of the physics decoder.
    - `width`, `depth`, `activation`: the residual MLP (WARP's `root_width`,
      `root_depth` set these).
    - `input_prev`: feed `x_prev` to the residual MLP next to tau.
    - `residual_init_scale`: factor on the residual's initial last layer.
    - `dt`, `scale`, `shift`: the run's step and data normalisation (see `make_decoder`),
      passed on to a physics part built by name that declares them (a `PhysicalPrior`);
      its `physics_options` win.

    **Returns** (of `__call__(params, tau, x_prev)`): the mean, shape `(data_size,)`.
    The physics decoder must be deterministic (not `probabilistic`).
    """

    takes_size: ClassVar[bool] = True
    needs_dt: ClassVar[bool] = True  # for the physics part
    units: ClassVar[str] = "physical"  # the physics part's; the residual is in data units
    physics: AbstractDecoder
    data_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    input_prev: bool = eqx.field(static=True)
    residual_init_scale: float = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        physics: str | AbstractDecoder = "damped_oscillator",
        physics_options: dict | None = None,
        width: int = 16,
        depth: int = 2,
        activation: str = "swish",
        input_prev: bool = True,
        residual_init_scale: float = 0.1,
        dt: float | None = None,
        scale=None,
        shift=None,
    ):
        if width < 1 or depth < 0:
            raise ValueError(f"hybrid residual needs width >= 1, depth >= 0; got {width}, {depth}")
        get_activation(activation)
        if isinstance(physics, AbstractDecoder):
            if physics_options:
                raise ValueError("physics_options cannot be given with a decoder instance")
        else:
            declared = _declared_settings(physics, dt=dt, scale=scale, shift=shift)
            options = {**declared, **(physics_options or {})}
            physics = get_decoder(physics, data_size=data_size, **options)
        if physics.data_size != data_size:
            raise ValueError(
                f"physics decoder predicts {physics.data_size} channels, data_size is {data_size}"
            )
        if physics.probabilistic:
            raise ValueError("the physics part of a hybrid decoder must not be probabilistic")
        self.physics = physics
        self.data_size = int(data_size)
        self.width, self.depth, self.activation = int(width), int(depth), activation
        self.input_prev = bool(input_prev)
        self.residual_init_scale = float(residual_init_scale)

    def init_params(self, key: PRNGKeyArray):
        pkey, rkey = jax.random.split(key)
        in_size = 1 + (self.data_size if self.input_prev else 0)
        residual = mlp_init(rkey, [in_size] + [self.width] * self.depth + [self.data_size])
        *hidden, last = residual
        last = jax.tree.map(lambda a: self.residual_init_scale * a, last)
        return {"physics": self.physics.init_params(pkey), "residual": (*hidden, last)}

    def physical_parameters(
        self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]
    ) -> dict[str, Array]:
        """The physical parameters of the physics part (see its `physical_parameters`);
        the residual MLP has none.

        **Returns:** dict `name -> array`. Raises `ValueError` when the physics decoder
        has no physical parameters (e.g. an `mlp`).
        """
        read = getattr(self.physics, "physical_parameters", None)
        if read is None:
            raise ValueError(
                f"the physics part of this hybrid decoder ({type(self.physics).__name__}) "
                "has no physical parameters"
            )
        return read(params["physics"], tau, x_prev)

    def __call__(self, params, tau: Float[Array, ""], x_prev: Float[Array, " data"]) -> Array:
        inputs = jnp.reshape(jnp.asarray(tau), (1,))
        if self.input_prev:
            inputs = jnp.concatenate([inputs, x_prev])
        residual = mlp_apply(params["residual"], inputs, get_activation(self.activation))
        return self.physics(params["physics"], tau, x_prev) + residual


def _declared_settings(spec: str, **settings) -> dict:
    """The given (not None) `dt`, `scale`, `shift` that the decoder `spec` declares."""
    factory = decoder_factory(spec)
    wanted = set()
    if getattr(factory, "needs_dt", False):
        wanted.add("dt")
    if getattr(factory, "units", "normalised") == "physical":
        wanted.update(("scale", "shift"))
    return {k: v for k, v in settings.items() if k in wanted and v is not None}
