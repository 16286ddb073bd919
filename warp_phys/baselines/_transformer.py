"""A small causal decoder-only Transformer baseline with a fixed-size key/value cache.

Teacher-forced `__call__` runs causal self-attention over the whole sequence at once;
`advance` consumes one input into a cache of `max_len` keys and values per layer (a
fixed-size buffer, so rollouts are a `lax.scan`). Both compute the same function.
"""

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._common import HeadBaseline, config_json


def _attend(q, keys, values, mask: Bool[Array, " L"], heads: int):
    """Multi-head attention of one query `(d,)` over `keys`/`values` `(L, d)`."""
    d = q.shape[0]
    dh = d // heads
    q = q.reshape(heads, dh)
    k = keys.reshape(-1, heads, dh)
    v = values.reshape(-1, heads, dh)
    scores = jnp.einsum("hd,lhd->hl", q, k) / math.sqrt(dh)
    scores = jnp.where(mask[None, :], scores, -jnp.inf)
    return jnp.einsum("hl,lhd->hd", jax.nn.softmax(scores, axis=-1), v).reshape(d)


class _Block(eqx.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x))."""

    norm1: eqx.nn.LayerNorm
    norm2: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    mlp_in: eqx.nn.Linear
    mlp_out: eqx.nn.Linear
    heads: int = eqx.field(static=True)

    def __init__(self, d_model: int, heads: int, mlp_width: int, *, key: PRNGKeyArray):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = eqx.nn.LayerNorm(d_model)
        self.norm2 = eqx.nn.LayerNorm(d_model)
        self.qkv = eqx.nn.Linear(d_model, 3 * d_model, key=k1)
        self.out = eqx.nn.Linear(d_model, d_model, key=k2)
        self.mlp_in = eqx.nn.Linear(d_model, mlp_width, key=k3)
        self.mlp_out = eqx.nn.Linear(mlp_width, d_model, key=k4)
        self.heads = heads

    def _mlp(self, x):
        return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm2(x))))

    def sequence(self, x: Float[Array, "T d_model"]) -> Float[Array, "T d_model"]:
        """Causal self-attention over a whole sequence."""
        q, k, v = jnp.split(jax.vmap(self.qkv)(jax.vmap(self.norm1)(x)), 3, axis=-1)
        S = x.shape[0]
        mask = jnp.arange(S)[None, :] <= jnp.arange(S)[:, None]
        att = jax.vmap(lambda qi, mi: _attend(qi, k, v, mi, self.heads))(q, mask)
        return jax.vmap(self._mlp)(x + jax.vmap(self.out)(att))

    def token(self, x: Float[Array, " d_model"], keys, values, pos):
        """One token at position `pos`, attending to the cache (updated and returned)."""
        q, k, v = jnp.split(self.qkv(self.norm1(x)), 3)
        keys = jax.lax.dynamic_update_index_in_dim(keys, k, pos, 0)
        values = jax.lax.dynamic_update_index_in_dim(values, v, pos, 0)
        mask = jnp.arange(keys.shape[0]) <= pos
        x = self._mlp(x + self.out(_attend(q, keys, values, mask, self.heads)))
        return x, keys, values


def sinusoidal_positions(length: int, d_model: int) -> Float[Array, "length d_model"]:
    """The standard sin/cos code of integer positions 0..length-1."""
    pos = jnp.arange(length)[:, None]
    freq = jnp.exp(-math.log(10000.0) * (jnp.arange(0, d_model, 2) / d_model))
    code = jnp.zeros((length, d_model))
    code = code.at[:, 0::2].set(jnp.sin(pos * freq))
    return code.at[:, 1::2].set(jnp.cos(pos * freq)[:, : d_model // 2])


class Transformer(HeadBaseline):
    """Causal decoder-only Transformer: a linear input embedding plus learned or
    sinusoidal positions, `layers` pre-norm blocks, a final layer norm and a linear head.

    **Arguments:**

    - `data_size`: channels of one observation.
    - `d_model`, `layers`, `heads` (`d_model` divisible by `heads`), `mlp_width`
      (default `2 * d_model`).
    - `positions`: `"learned"` or `"sinusoidal"`.
    - `max_len`: the most inputs one sequence may feed (the cache size; use the
      training sequence length).
    - `probabilistic`, `std_lower_bound`, `output_size`: as for `GRU`.
    - `key`: a JAX PRNG key.
    """

    embed: eqx.nn.Linear
    position: Float[Array, "max_len d_model"] | None
    blocks: tuple[_Block, ...]
    norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear
    d_model: int = eqx.field(static=True)
    positions: str = eqx.field(static=True)
    max_len: int = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        *,
        d_model: int = 32,
        layers: int = 2,
        heads: int = 2,
        mlp_width: int | None = None,
        positions: Literal["learned", "sinusoidal"] = "learned",
        max_len: int = 256,
        probabilistic: bool = False,
        std_lower_bound: float = 1e-4,
        output_size: int | None = None,
        key: PRNGKeyArray,
    ):
        if d_model < 1 or heads < 1 or d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be a positive multiple of heads ({heads})")
        if layers < 1 or max_len < 1 or data_size < 1:
            raise ValueError("data_size, layers and max_len must be >= 1")
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        mlp_width = mlp_width or 2 * d_model
        keys = jax.random.split(key, layers + 3)
        self.embed = eqx.nn.Linear(data_size, d_model, key=keys[0])
        self.position = (
            0.02 * jax.random.normal(keys[1], (max_len, d_model))
            if positions == "learned"
            else None
        )
        self.blocks = tuple(_Block(d_model, heads, mlp_width, key=k) for k in keys[3:])
        self.norm = eqx.nn.LayerNorm(d_model)
        self.output_size = int(data_size if output_size is None else output_size)
        out = 2 * self.output_size if probabilistic else self.output_size
        self.head = eqx.nn.Linear(d_model, out, key=keys[2])
        self.data_size, self.d_model, self.positions = int(data_size), int(d_model), positions
        self.max_len = int(max_len)
        self.is_probabilistic, self.std_lower_bound = bool(probabilistic), float(std_lower_bound)
        self.config_json = config_json(
            data_size=self.data_size,
            d_model=self.d_model,
            layers=int(layers),
            heads=int(heads),
            mlp_width=int(mlp_width),
            positions=positions,
            max_len=self.max_len,
            probabilistic=self.is_probabilistic,
            std_lower_bound=self.std_lower_bound,
            output_size=output_size,
        )

    @property
    def max_length(self) -> int:
        return self.max_len

    def _position(self, index):
        if self.position is not None:
            return self.position[index]
        return sinusoidal_positions(self.max_len, self.d_model)[index]

    def empty_state(self, x0: Float[Array, " data"]):
        """Empty caches `(keys, values)` per layer, position 0, zero last output."""
        cache = jnp.zeros((self.max_len, self.d_model), x0.dtype)
        caches = tuple((cache, cache) for _ in self.blocks)
        return caches, jnp.zeros((), jnp.int32), jnp.zeros(self.d_model, x0.dtype)

    def advance(self, state, u: Float[Array, " data"], u_prev: Float[Array, " data"]):
        """Consume `u` at the next position (`u_prev` is not used)."""
        caches, pos, _ = state
        x = self.embed(u) + self._position(pos)
        new = []
        for block, (keys, values) in zip(self.blocks, caches, strict=True):
            x, keys, values = block.token(x, keys, values, pos)
            new.append((keys, values))
        return tuple(new), pos + 1, self.norm(x)

    def _features(self, state):
        return state[2]  # the last token's output

    def __call__(self, xs: Float[Array, "T data"], mode: str = "auto"):
        """Teacher-forced predictions of `xs[1:]` with one causal pass over `xs[:-1]`
        (`mode` is accepted for interface compatibility and ignored)."""
        S = xs.shape[0] - 1
        if S > self.max_len:
            raise ValueError(f"sequence of {S} inputs exceeds max_len {self.max_len}")
        x = jax.vmap(self.embed)(xs[:-1]) + self._position(jnp.arange(S))
        for block in self.blocks:
            x = block.sequence(x)
        x = jax.vmap(self.norm)(x)
        return jax.vmap(lambda h: self.decode((None, None, h), 0, xs[0]))(x)
