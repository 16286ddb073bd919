"""An input embedding in front of any sequence model, for the tasks read with teacher
forcing (classification, in-context regression).

Why WARP needs it there: its state is driven by the *differences* of its input,
theta_t = A theta_{t-1} + B (u_t - u_{t-1}). With A = I (its initialisation) the
last state is theta_0 + B (u_T - u_0), the endpoints only, and with any A it is linear
in the inputs: no energy of a signal, no product x_i y_i of a regression pair, which a
classifier or an in-context learner needs. Reading the running sum of non-linear
features, u_t = (1/T) sum_{k<=t} e_k, its drive becomes B e_t / T and the state adds up
every step's features (the paper feeds cumulative sums to its in-context learner for the
same reason, spec section 7).
"""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._interface import model_class as registered_class
from .._interface import register_model_class

EMBED_WIDTH = 32  # hidden units of the embedding MLP


@register_model_class
class Embedded(eqx.Module):
    """`model` reading per-step features of the input instead of the raw input.

    Step t's features e_t = MLP(x_{t-w+1}, ..., x_t) `(features,)`: one hidden layer of
    `EMBED_WIDTH` (GELU) over a causal window of w = `window` steps (the first step
    repeated before the start). The spec's input embedding (section 1.7) is a causal
    convolution; this one is non-linear, so features can be squares or products.

    **Arguments:**

    - `data_size`: channels of the raw input x_t.
    - `model`: the sequence model that reads the stream; its `data_size` must be
      `features` (+ `data_size` with `raw`). Or `model_class` and `model_config`, the
      registered class name and config that rebuild it (what `load_model` passes).
    - `features`, `window`: the embedding's output size and window.
    - `accumulate`: read s_t = (1/`seq_len`) sum_{k<=t} e_k instead of e_t (WARP's
      setting, see the module docstring).
    - `raw`: append x_t itself (never summed) to what the model reads: an in-context
      learner must tell the query from the pairs it has summed.
    - `key`: initialises the embedding (and a model rebuilt from its config).
    """

    embedding: eqx.nn.MLP
    model: eqx.Module
    data_size: int = eqx.field(static=True)
    window: int = eqx.field(static=True)
    accumulate: bool = eqx.field(static=True)
    raw: bool = eqx.field(static=True)
    seq_len: int = eqx.field(static=True)
    config_json: str = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        model: eqx.Module | None = None,
        *,
        features: int,
        window: int = 1,
        accumulate: bool = False,
        raw: bool = False,
        seq_len: int = 1,
        model_class: str | None = None,
        model_config: dict | None = None,
        key: PRNGKeyArray,
    ):
        embed_key, model_key = jax.random.split(key)
        if model is None:
            cls = registered_class(model_class) if model_class else None
            if cls is None:
                raise ValueError(f"Embedded needs a model or a model class, not {model_class!r}")
            model = cls(**(model_config or {}), key=model_key)
        stream = features + (data_size if raw else 0)
        if model.data_size != stream:
            raise ValueError(f"the model reads {model.data_size} channels, the stream has {stream}")
        self.embedding = eqx.nn.MLP(
            window * data_size, features, EMBED_WIDTH, 1, activation=jax.nn.gelu, key=embed_key
        )
        self.model = model
        self.data_size, self.window, self.seq_len = int(data_size), int(window), int(seq_len)
        self.accumulate, self.raw = bool(accumulate), bool(raw)
        config = dict(
            data_size=self.data_size,
            features=int(features),
            window=self.window,
            accumulate=self.accumulate,
            raw=self.raw,
            seq_len=self.seq_len,
            model_class=type(model).__name__,
            model_config=model.config,
        )
        self.config_json = json.dumps(config, sort_keys=True)

    @property
    def config(self) -> dict:
        """The constructor arguments (without `key` and `model`) that rebuild it."""
        return json.loads(self.config_json)

    @property
    def transition(self):
        """The inner WARP's A (None for a baseline), so that `make_optimizer` gives it
        its own learning rate."""
        return getattr(self.model, "transition", None)

    @property
    def probabilistic(self) -> bool:
        return getattr(self.model, "probabilistic", False)

    def stream(self, xs: Float[Array, "T data"]) -> Float[Array, "T stream"]:
        """What the model reads: e_t (or s_t with `accumulate`), then x_t with `raw`."""
        T = xs.shape[0]
        padded = jnp.concatenate([jnp.repeat(xs[:1], self.window - 1, axis=0), xs])
        windows = jnp.concatenate([padded[i : i + T] for i in range(self.window)], axis=-1)
        u = jax.vmap(self.embedding)(windows)
        if self.accumulate:
            u = jnp.cumsum(u, axis=0) / self.seq_len
        return jnp.concatenate([u, xs], axis=-1) if self.raw else u

    def __call__(self, xs: Float[Array, "T data"]):
        """The model's teacher-forced outputs `(T-1, out)` on the stream of `xs`."""
        return self.model(self.stream(xs))
