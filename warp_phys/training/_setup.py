"""The setup of `train`: the training and validation arrays checked against the model,
the options resolved, and the compiled training step."""

import dataclasses
import functools
import math
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from ._devices import batch_mesh, resolve_devices, shard_batch
from ._state import fingerprint
from .data import as_pairs, grid_times
from .optim import for_model, optax_chain
from .options import (
    ObjectiveOptions,
    OptimizerOptions,
    ValidationOptions,
    at_least,
    in_range,
)
from .protocol import batch_loss


@functools.lru_cache(maxsize=32)
def compiled_step(optimizer: OptimizerOptions, steps: int | None, objective: ObjectiveOptions):
    """The optax chain and the jitted train step for one set of options (cached, so
    repeated or resumed `train` calls reuse the compilation)."""
    chain = optax_chain(optimizer, steps)
    loss_options = objective.flat()  # the keywords of `sequence_loss`

    @eqx.filter_jit
    def step(model, opt_state, inputs, targets, key, ts):
        loss, grads = eqx.filter_value_and_grad(batch_loss)(
            model, inputs, targets, key, ts, **loss_options
        )
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = chain.update(grads, opt_state, params, value=loss)
        model = eqx.apply_updates(model, updates)
        # the updated parameters too: a finite gradient times a huge step is not finite
        new_params = eqx.filter(model, eqx.is_inexact_array)
        norms = jnp.stack([loss, optax.tree.norm(grads), optax.tree.norm(new_params)])
        return model, opt_state, loss, jnp.all(jnp.isfinite(norms))

    return chain, step


@dataclasses.dataclass(frozen=True)
class Setup:
    """What the loop reads but never changes."""

    inputs: np.ndarray
    targets: np.ndarray
    times: np.ndarray | None
    val: tuple | None  # (inputs, targets) on the device
    val_times: np.ndarray | None
    validation: ValidationOptions
    objective: ObjectiveOptions
    steps: int
    batch_size: int
    max_seconds: float | None
    log_every: int
    folder: Path | None
    fingerprint: dict
    train_step: object
    mesh: Mesh | None  # the devices of data-parallel training (None: one device)

    def place(self, batch: np.ndarray):
        """A minibatch on the device (split over the mesh's devices)."""
        return jnp.asarray(batch) if self.mesh is None else shard_batch(self.mesh, batch)


def prepare(
    model,
    data,
    val_data,
    *,
    times,
    val_times,
    steps: int,
    batch_size: int,
    optimizer: OptimizerOptions,
    objective: ObjectiveOptions,
    validation: ValidationOptions,
    devices,
    max_seconds,
    log_every: int,
    checkpoint_dir,
    key,
) -> tuple[Setup, optax.GradientTransformationExtraArgs]:
    """Everything `train` checks and resolves before its first step (arguments as
    `train`'s): the arrays, the options (A's learning rate, the validation context and
    protocol), the devices, the compiled step and the resume fingerprint.

    **Returns:** `(setup, chain)`: the loop's `Setup` and the optax chain."""
    inputs, targets, times = training_arrays(model, data, times, objective)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    at_least("log_every", log_every, 1)
    in_range("max_seconds", max_seconds, 0, math.inf, "[)")
    batch_size = min(batch_size, len(inputs))
    n_devices = resolve_devices(devices, batch_size)
    val, val_times, validation = validation_arrays(
        model, val_data, val_times, validation, inputs, targets, times
    )
    optimizer = for_model(optimizer, model)
    cosine_steps = steps if optimizer.schedule == "cosine" else None
    chain, train_step = compiled_step(optimizer, cosine_steps, objective)
    loop_items = dict(steps=cosine_steps, batch_size=batch_size, has_val=val is not None)
    stamp = fingerprint((optimizer, objective, validation), loop_items, key, inputs, targets, times)
    setup = Setup(
        inputs=inputs,
        targets=targets,
        times=times,
        val=val,
        val_times=val_times,
        validation=validation,
        objective=objective,
        steps=steps,
        batch_size=batch_size,
        max_seconds=max_seconds,
        log_every=log_every,
        folder=None if checkpoint_dir is None else Path(checkpoint_dir),
        fingerprint=stamp,
        train_step=train_step,
        mesh=batch_mesh(n_devices) if n_devices > 1 else None,
    )
    return setup, chain


def training_arrays(model, data, times, objective: ObjectiveOptions):
    """`(inputs, targets, times)` of the training data, checked against the model."""
    inputs, targets = as_pairs(data, "training data")
    times = grid_times(data, model, "training data", times)
    if inputs.shape[2] != model.data_size:
        raise ValueError(
            f"training data has {inputs.shape[2]} channels, model expects {model.data_size}"
        )
    if objective.stochastic and not model.probabilistic:
        raise ValueError("stochastic training needs a probabilistic model (Gaussian NLL)")
    return inputs, targets, times


def validation_arrays(model, val_data, val_times, validation, inputs, targets, times):
    """`(val, val_times, validation)`: the validation pair on the device (or None) and
    the options with the context and an `"auto"` protocol resolved (`"full"` when the
    training inputs differ from the targets)."""
    protocol = validation.protocol
    if protocol == "auto":
        protocol = "forecast" if np.array_equal(inputs, targets) else "full"
    validation = dataclasses.replace(validation, protocol=protocol)
    if val_data is None:
        return None, None, validation
    val = tuple(jnp.asarray(a) for a in as_pairs(val_data, "validation data"))
    val_times = grid_times(val_data, model, "validation data", val_times)
    if (val_times is None) != (times is None):
        raise ValueError("training and validation data must both have time stamps or neither")
    if val[0].shape[2] != model.data_size:
        raise ValueError(f"validation data must have {model.data_size} channels")
    context = validation.context or max(1, val[0].shape[1] // 4)
    return val, val_times, dataclasses.replace(validation, context=context)
