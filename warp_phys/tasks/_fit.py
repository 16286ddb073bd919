"""A small training loop for the tasks: the optimiser of `train` (`make_optimizer`: A's
own learning rate, clipping, a cosine schedule), a jitted step on any loss of
`(model, batch, key)`, validation with the best model kept, and `best.eqx` written by
`save_model` (so `load_model` and `warp-phys` read it like any run's checkpoint)."""

import math
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..training.checkpoint import save_model
from ..training.optim import make_optimizer
from ..training.options import OptimizerOptions


def step_keys(key, n: int) -> tuple:
    """Step `n`'s `(minibatch key, loss key)` from the training `key`: `fold_in(key, n)`
    split in two, so that drawing the batch and the loss's own draws (digits' masks and
    teacher forcing) never share a key."""
    batch_key, loss_key = jax.random.split(jax.random.fold_in(key, n))
    return batch_key, loss_key


def fit(
    model,
    loss: Callable,
    sample: Callable,
    *,
    steps: int,
    key,
    lr: float = 1e-3,
    transition_lr: float | None = None,
    validate: Callable | None = None,
    every: int = 50,
    checkpoint_dir=None,
    metadata: dict | None = None,
):
    """Train `model` for `steps` steps and keep the best validated one.

    **Arguments:**

    - `loss`: `loss(model, batch, key) -> scalar`.
    - `sample`: `sample(key) -> batch`, the minibatch of a step (step n draws it and
      its loss's randomness with `step_keys(key, n)`).
    - `key`: the training key. It must not be the key the model was built from:
      constructors fold small integers into their key too (WARP's A is `fold_in(key,
      2)`), so step 2 would draw with A's key. `run_task` passes `task_keys(seed).train`.
    - `lr`, `transition_lr`: the learning rates of the parameters and of WARP's A
      (default `lr / D_theta`, as in `train`), with a cosine decay over `steps`.
    - `validate`: `validate(model) -> float`, lower is better, run every `every` steps
      and at the end; the last model is kept without it (or when no score is finite).
    - `checkpoint_dir`: write the best model to `best.eqx` there (with `metadata`).

    **Returns:** `(model, history)`: the best model and `{"loss": [...], "seconds":
    [...] (wall clock after each step, validation and compilation included),
    "val_step": [...], "val": [...]}`. A step with a non-finite loss or gradient is skipped.
    """
    options = OptimizerOptions(lr=lr, transition_lr=transition_lr, schedule="cosine")
    optimizer = make_optimizer(model, options, steps=steps)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    grad = eqx.filter_value_and_grad(loss)

    @eqx.filter_jit
    def step(model, opt_state, batch, key):
        value, grads = grad(model, batch, key)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, new_state = optimizer.update(grads, opt_state, params, value=value)
        ok = jnp.isfinite(value) & jnp.isfinite(optax.tree.norm(grads))
        new_model = eqx.apply_updates(model, jax.tree.map(lambda u: jnp.where(ok, u, 0), updates))
        opt_state = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new_state, opt_state)
        return new_model, opt_state, value

    history = {"loss": [], "seconds": [], "val_step": [], "val": []}
    best, best_model = math.inf, None
    start = time.perf_counter()
    for n in range(1, steps + 1):
        batch_key, loss_key = step_keys(key, n)
        model, opt_state, value = step(model, opt_state, sample(batch_key), loss_key)
        history["loss"].append(float(value))
        history["seconds"].append(time.perf_counter() - start)
        if validate is not None and (n % every == 0 or n == steps):
            score = float(validate(model))
            history["val_step"].append(n)
            history["val"].append(score)
            if score < best:  # a NaN score never wins
                best, best_model = score, model
    result = model if best_model is None else best_model
    if checkpoint_dir is not None:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        score = best if math.isfinite(best) else None
        save_model(folder / "best.eqx", result, metadata={**(metadata or {}), "val": score})
    return result, history
