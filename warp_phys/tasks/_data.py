"""The data of the tasks beyond forecasting: two UEA classification sets bundled in
`aeon`, the 8x8 digits bundled in scikit-learn, and in-context linear regression
generated on the fly. Arrays are float32 NumPy `(N, T, channels)` (ICL: JAX, drawn
inside the jitted step).

Validation splits are carved from the training split with a fixed seed, so model
selection never reads a test split.
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

EXTRA = "pip install 'warp-phys[tasks]'"
UEA_LOADERS = {"basic_motions": "load_basic_motions", "japanese_vowels": "load_japanese_vowels"}
DIGIT_LEVELS = 17  # sklearn's digits take the integer grey levels 0..16


def optional(module: str):
    """Import an optional dependency of the tasks, or a one-line `ImportError` naming the
    extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this task needs {module.split('.')[0]}: {EXTRA}") from None


def _val_rows(n: int, share: float, labels=None, seed: int = 0) -> np.ndarray:
    """Rows of a validation split (`share` of `n`, per class when `labels` are given)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.permutation(n)[: max(1, round(share * n))])
    rows = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        rows.extend(members[: max(1, round(share * len(members)))])
    return np.sort(np.asarray(rows))


def _pad(series: list[np.ndarray], length: int) -> np.ndarray:
    """Sequences `(T_i, C)` padded at the end to `(N, length, C)` by repeating their last
    step (the models are causal and read each output at its own last step, so padding
    never changes a prediction)."""
    return np.stack([np.pad(s, ((0, length - len(s)), (0, 0)), mode="edge") for s in series])


def load_uea(name: str, *, val_share: float = 0.2, seed: int = 0) -> dict:
    """A UEA multivariate classification set bundled in `aeon`.

    Variable lengths (JapaneseVowels: 7 to 29 steps) are padded at the end to the
    longest sequence of both splits, and each sequence keeps its length: its class is
    read from the output after its own last step. Channels are standardised with the
    statistics of the training split's real (unpadded) steps.

    **Arguments:** `name`: `"basic_motions"` or `"japanese_vowels"`; `val_share`: the
    stratified share of the training split held out for validation (seeded by `seed`).

    **Returns:** `{"train" | "val" | "test": (xs (N, T, C) float32, lengths (N,) int32,
    labels (N,) int32), "classes": [names]}`.
    """
    if name not in UEA_LOADERS:
        raise ValueError(f"unknown UEA set {name!r}; choose from {sorted(UEA_LOADERS)}")
    load = getattr(optional("aeon.datasets"), UEA_LOADERS[name])
    raw = {split: load(split=split) for split in ("train", "test")}
    series = {s: [np.asarray(x, np.float32).T for x in raw[s][0]] for s in raw}
    classes = sorted(set(raw["train"][1]))
    steps = np.concatenate(series["train"])
    mean, std = steps.mean(0), np.where(steps.std(0) > 0, steps.std(0), 1.0)
    length = max(len(x) for s in series.values() for x in s)
    out = {"classes": [str(c) for c in classes]}
    for split, xs in series.items():
        labels = np.array([classes.index(c) for c in raw[split][1]], np.int32)
        lengths = np.array([len(x) for x in xs], np.int32)
        out[split] = (_pad([(x - mean) / std for x in xs], length), lengths, labels)
    xs, lengths, labels = out["train"]
    val = _val_rows(len(labels), val_share, labels, seed)
    keep = np.setdiff1d(np.arange(len(labels)), val)
    out["train"] = (xs[keep], lengths[keep], labels[keep])
    out["val"] = (xs[val], lengths[val], labels[val])
    return out


def load_digits(*, test_share: float = 0.2, val_share: float = 0.1, seed: int = 0) -> dict:
    """scikit-learn's 8x8 digits as pixel sequences in raster order, scaled to [0, 1].

    **Returns:** `{"train" | "val" | "test": (xs (N, 64, 1) float32,)}`: a seeded
    `test_share` of the images for test, then `val_share` of the rest for validation.
    """
    images = optional("sklearn.datasets").load_digits().data.astype(np.float32)
    xs = (images / (DIGIT_LEVELS - 1))[:, :, None]
    order = np.random.default_rng(seed).permutation(len(xs))
    n_test = round(test_share * len(xs))
    test, rest = order[:n_test], order[n_test:]
    val = rest[_val_rows(len(rest), val_share, seed=seed + 1)]
    train = np.setdiff1d(rest, val)
    return {"train": (xs[train],), "val": (xs[val],), "test": (xs[test],)}


def icl_batch(
    key: PRNGKeyArray, n: int, pairs: int, dim: int, noise: float = 0.2
) -> tuple[Float[Array, "n pairs token"], Float[Array, "n pairs"]]:
    """In-context linear regression (spec section 7): per sequence a weight
    w ~ U(-1, 1)^dim, inputs x_i ~ U(-1, 1)^dim and y_i = w . x_i + noise * N(0, 1).

    Token i is `[x_i, y_{i-1}]` (`y_{-1} = 0`): a causal model reading tokens 0..i
    has seen i pairs and the new input x_i, and its output after token i predicts y_i,
    with no gradient step. One sequence thus scores every context size 0..pairs-1.

    **Returns:** `(tokens (n, pairs, dim + 1), ys (n, pairs))`.
    """
    kw, kx, ke = jax.random.split(key, 3)
    w = jax.random.uniform(kw, (n, dim), minval=-1.0, maxval=1.0)
    x = jax.random.uniform(kx, (n, pairs, dim), minval=-1.0, maxval=1.0)
    y = jnp.einsum("npd,nd->np", x, w) + noise * jax.random.normal(ke, (n, pairs))
    previous = jnp.pad(y[:, :-1], ((0, 0), (1, 0)))
    return jnp.concatenate([x, previous[..., None]], axis=-1), y


def least_squares_errors(tokens, ys) -> np.ndarray:
    """MSE `(pairs,)` of least squares from the first i pairs, predicting y_i (the
    minimum-norm solution below `dim` pairs; 0 with no pair), on `icl_batch` data."""
    tokens, ys = np.asarray(tokens, np.float64), np.asarray(ys, np.float64)
    x = tokens[..., :-1]
    errors = np.zeros(ys.shape[1])
    for i in range(ys.shape[1]):
        if i == 0:
            errors[i] = np.mean(ys[:, 0] ** 2)
            continue
        w = [np.linalg.lstsq(xn[:i], yn[:i], rcond=None)[0] for xn, yn in zip(x, ys, strict=True)]
        errors[i] = np.mean((np.einsum("nd,nd->n", x[:, i], np.stack(w)) - ys[:, i]) ** 2)
    return errors
