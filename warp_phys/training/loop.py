"""The training loop: optax, a jitted step, seeded minibatches, validation, progress."""

import time
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray
from tqdm.auto import tqdm

from .._model import WARP, Mode
from .._rollout import reconstruct, rollout, teacher_forcing_mask
from .checkpoint import save_model
from .data import as_trajectories
from .losses import mse, prediction_loss

Objective = Literal["autoregressive", "teacher_forced"]


def sequence_loss(
    model: WARP,
    xs,
    key: PRNGKeyArray,
    *,
    objective: Objective = "autoregressive",
    forcing_prob: float = 0.25,
    mode: Mode = "parallel",
):
    """Loss of one sequence `xs` `(T, data_size)` on its predictions of `xs[1:]`.

    `"teacher_forced"` feeds every true observation (parallel or sequential weights);
    `"autoregressive"` feeds each true observation with probability `forcing_prob`
    and the model's own prediction otherwise.
    """
    if objective == "teacher_forced":
        prediction = model(xs, mode)
    elif objective == "autoregressive":
        prediction = rollout(model, xs, teacher_forcing_mask(key, xs.shape[0], forcing_prob))
    else:
        raise ValueError(
            f"objective must be 'autoregressive' or 'teacher_forced', got {objective!r}"
        )
    return prediction_loss(prediction, xs[1:])


def batch_loss(model, batch, key, **options):
    """Mean of `sequence_loss` over a batch `(N, T, data_size)`."""
    keys = jax.random.split(key, batch.shape[0])
    losses = jax.vmap(lambda xs, k: sequence_loss(model, xs, k, **options))(batch, keys)
    return jnp.mean(losses)


@eqx.filter_jit
def forecast_mse(model: WARP, trajectories, context: int):
    """MSE of `reconstruct` from the first `context` steps over the rest of each
    trajectory `(N, T, data_size)` (the paper's evaluation protocol)."""
    horizon = trajectories.shape[1] - context
    prediction = reconstruct(model, trajectories[:, :context], horizon)
    if isinstance(prediction, tuple):
        prediction = prediction[0]
    return mse(prediction, trajectories[:, context:])


def make_optimizer(
    model, learning_rate: float = 1e-3, clip_norm: float = 1.0, transition_lr: float | None = None
) -> optax.GradientTransformation:
    """Adam after global-norm gradient clipping, with its own learning rate for A.

    Adam moves every entry of the dense D x D matrix A by about the learning rate per
    step, and such an update has a spectral norm up to D times larger; raised to the
    power T along the sequence it blows up. So A gets `transition_lr`, by default
    `learning_rate / D_theta` (the reference code used 1e-5 everywhere for the same
    reason).
    """
    params = eqx.filter(model, eqx.is_inexact_array)
    labels = jax.tree.map(lambda _: "other", params)
    if hasattr(model, "A"):
        labels = eqx.tree_at(lambda m: m.A, labels, "transition")
        if transition_lr is None:
            transition_lr = learning_rate / model.A.shape[0]
    adam = {"other": optax.adam(learning_rate), "transition": optax.adam(transition_lr or 0.0)}
    # labels is a WARP (callable), so optax must get it through a function
    return optax.chain(
        optax.clip_by_global_norm(clip_norm), optax.multi_transform(adam, lambda _: labels)
    )


def train(
    model: WARP,
    data,
    *,
    steps: int = 500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    transition_lr: float | None = None,
    clip_norm: float = 1.0,
    objective: Objective = "autoregressive",
    forcing_prob: float = 0.25,
    mode: Mode = "parallel",
    val_data=None,
    val_context: int | None = None,
    val_every: int = 50,
    max_seconds: float | None = None,
    checkpoint_dir=None,
    key: PRNGKeyArray,
    progress: bool = True,
):
    """Train `model` on trajectories `data` `(N, T, data_size)` (or a `systems.Dataset`).

    Minibatches are drawn without replacement from a shuffle seeded by `key`. When
    `val_data` is given, the forecast MSE from `val_context` observed steps (default a
    quarter of the sequence) is computed every `val_every` steps and the best model
    is kept (and returned). `transition_lr` is A's learning rate (see
    `make_optimizer`). `max_seconds` stops early on a wall-clock budget. With
    `checkpoint_dir`, `best.eqx` and `last.eqx` are written there atomically.

    **Returns:** `(model, history)` where `history` is a dict of lists
    (`step`, `loss`, `val_step`, `val_mse`, `seconds`).
    """
    y = as_trajectories(data, "training data")
    if y.shape[2] != model.data_size:
        raise ValueError(
            f"training data has {y.shape[2]} channels, model expects {model.data_size}"
        )
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    batch_size = min(batch_size, y.shape[0])
    val = None if val_data is None else jnp.asarray(as_trajectories(val_data, "validation data"))
    val_context = val_context or (
        max(1, y.shape[1] // 4) if val is None else max(1, val.shape[1] // 4)
    )

    optimizer = make_optimizer(model, learning_rate, clip_norm, transition_lr)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    loss_options = dict(objective=objective, forcing_prob=forcing_prob, mode=mode)

    @eqx.filter_jit
    def train_step(model, opt_state, batch, key):
        loss, grads = eqx.filter_value_and_grad(batch_loss)(model, batch, key, **loss_options)
        updates, opt_state = optimizer.update(
            grads, opt_state, eqx.filter(model, eqx.is_inexact_array)
        )
        return eqx.apply_updates(model, updates), opt_state, loss

    shuffle_key, step_key = jax.random.split(key)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(shuffle_key)).ravel())
    order, cursor = rng.permutation(y.shape[0]), 0
    history = {"step": [], "loss": [], "val_step": [], "val_mse": [], "seconds": []}
    best_model, best_val = model, np.inf
    start = time.perf_counter()
    bar = tqdm(total=steps, disable=not progress, desc="training", unit="step")
    for step in range(1, steps + 1):
        if cursor + batch_size > len(order):
            order, cursor = rng.permutation(y.shape[0]), 0
        batch = jnp.asarray(y[order[cursor : cursor + batch_size]])
        cursor += batch_size
        new_model, opt_state, loss = train_step(
            model, opt_state, batch, jax.random.fold_in(step_key, step)
        )
        loss = float(loss)
        if not np.isfinite(loss):
            bar.close()
            raise FloatingPointError(
                f"training loss became {loss} at step {step}; the model from step {step - 1} "
                "was kept. Lower the learning rate, check the data scale, or bound the decoder's "
                "output (e.g. decoder_options={'final_activation': 5.0} clips to [-5, 5]) so "
                "free-running rollouts stay finite"
            )
        model = new_model
        elapsed = time.perf_counter() - start
        history["step"].append(step)
        history["loss"].append(loss)
        history["seconds"].append(elapsed)
        postfix = {"loss": f"{loss:.4g}"}
        out_of_time = max_seconds is not None and elapsed >= max_seconds
        if val is not None and (step % val_every == 0 or step == steps or out_of_time):
            val_mse = float(forecast_mse(model, val, val_context))
            history["val_step"].append(step)
            history["val_mse"].append(val_mse)
            if val_mse < best_val:
                best_model, best_val = model, val_mse
                if checkpoint_dir is not None:
                    save_model(f"{checkpoint_dir}/best.eqx", model, metadata={"step": step})
            postfix["val"] = f"{val_mse:.4g}"
        bar.set_postfix(postfix)
        bar.update(1)
        if out_of_time:
            break
    bar.close()
    if checkpoint_dir is not None:
        save_model(f"{checkpoint_dir}/last.eqx", model, metadata={"step": history["step"][-1]})
    return (best_model if val is not None else model), history
