"""The setup of `train`: the training and validation arrays checked against the model,
the options resolved, and the compiled training step."""

import dataclasses
import functools
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from .._held_rollout import held
from .._model import WARP
from ..baselines import GRU
from ..decoders.mlp import MLPDecoder
from ._devices import batch_mesh, replicate, resolve_devices, shard_batch
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
def compiled_step(optimizer: OptimizerOptions, objective: ObjectiveOptions):
    """The optax chain (without the schedule's factor) and the jitted train function for
    one set of options (cached, so repeated or resumed `train` calls reuse the
    compilation).

    The function runs K consecutive steps in one `lax.scan` (K from the leading axis of
    its minibatches, one compilation per K): `steps(model, opt_state, inputs, targets,
    ts, key, numbers, factors, bad, limit)` with minibatches `(K, batch, T, d)` (`ts`
    `(K, batch, T)` or None), the step numbers `(K,)` (step n draws its teacher-forcing
    coins from `fold_in(key, n)`), the learning-rate factors `(K,)`, the number of
    non-finite steps in a row before the first (`bad`) and the number that stops the
    run (`limit`). A step whose loss, gradient or updated parameters are not finite
    leaves the model and optimiser state as they were; once `limit` such steps come in
    a row, no later step of the call moves them. **Returns:** `(model, opt_state,
    losses (K,), applied (K,))`.
    """
    chain = optax_chain(optimizer)
    loss_options = objective.flat()  # the keywords of `batch_loss`
    grad_fn = eqx.filter_value_and_grad(batch_loss)

    @eqx.filter_jit
    def steps(model, opt_state, inputs, targets, ts, key, numbers, factors, bad, limit):
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def one(carry, batch):
            params, opt_state, bad = carry
            x, y, t, number, factor = batch
            model = eqx.combine(params, static)
            loss, grads = grad_fn(model, x, y, jax.random.fold_in(key, number), t, **loss_options)
            updates, new_state = chain.update(grads, opt_state, params, value=loss)
            new_params = eqx.apply_updates(params, jax.tree.map(lambda u: factor * u, updates))
            # the updated parameters too: a finite gradient times a huge step is not finite
            norms = jnp.stack([loss, optax.tree.norm(grads), optax.tree.norm(new_params)])
            ok = jnp.all(jnp.isfinite(norms)) & (bad < limit)
            kept = jax.tree.map(
                lambda new, old: jnp.where(ok, new, old),
                (new_params, new_state),
                (params, opt_state),
            )
            return (*kept, jnp.where(ok, 0, bad + 1)), (loss, ok)

        xs = (inputs, targets, ts, numbers, factors)
        (params, opt_state, _), (losses, applied) = jax.lax.scan(one, (params, opt_state, bad), xs)
        return eqx.combine(params, static), opt_state, losses, applied

    return chain, steps


DEFAULT_STEPS = 5000  # a run's length with neither steps nor max_seconds (~3 min on 2 cores)
STEPS_PER_CALL = 1  # steps fused per jitted call
MAX_NON_FINITE = 10  # non-finite steps in a row that stop a run


def run_length(steps: int | None, max_seconds: float | None) -> int | None:
    """The steps of a run: `steps`, else None (as many as `max_seconds` allows), else
    `DEFAULT_STEPS` (no time budget either)."""
    if steps is None and not max_seconds:
        return DEFAULT_STEPS
    return steps


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
    optimizer: OptimizerOptions
    steps: int | None  # None: train for max_seconds
    batch_size: int
    max_seconds: float | None
    max_non_finite: int
    steps_per_call: int
    log_every: int
    folder: Path | None
    fingerprint: dict
    train_steps: object
    mesh: Mesh | None  # the devices of data-parallel training (None: one device)
    chain: object  # the optax chain (a rescue starts its state afresh)

    def fresh_opt_state(self, model):
        """The optimiser state of a new run at `model` (on the mesh's devices)."""
        opt_state = self.chain.init(eqx.filter(model, eqx.is_inexact_array))
        return opt_state if self.mesh is None else replicate(opt_state, self.mesh)

    def place(self, batch: np.ndarray):
        """Minibatches `(K, batch, ...)` on the device (split over the mesh's devices)."""
        return jnp.asarray(batch) if self.mesh is None else shard_batch(self.mesh, batch, 1)

    def progress(self, step: int, seconds: float) -> float:
        """The share of the run done before `step` (1-based), `seconds` into it: by
        steps, or by wall-clock time for a run on a time budget alone."""
        if self.steps is None:
            return seconds / self.max_seconds
        return (step - 1) / self.steps


def prepare(
    model,
    data,
    val_data,
    *,
    times,
    val_times,
    steps: int | None,
    batch_size: int,
    optimizer: OptimizerOptions,
    objective: ObjectiveOptions,
    validation: ValidationOptions,
    devices,
    max_seconds,
    max_non_finite: int,
    steps_per_call: int,
    log_every: int,
    checkpoint_dir,
    key,
) -> tuple[Setup, optax.GradientTransformationExtraArgs]:
    """Everything `train` checks and resolves before its first step (arguments as
    `train`'s): the arrays, the options (the run's length, A's learning rate, the
    validation context and protocol), the devices, the compiled step and the resume
    fingerprint.

    **Returns:** `(setup, chain)`: the loop's `Setup` and the optax chain."""
    inputs, targets, times = training_arrays(model, data, times, objective)
    in_range("max_seconds", max_seconds, 0, math.inf, "[)")
    steps = run_length(steps, max_seconds)
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        at_least(name, value, 1, none=name == "steps")
    for name, value in (("log_every", log_every), ("max_non_finite", max_non_finite)):
        at_least(name, value, 1)
    at_least("steps_per_call", steps_per_call, 1)
    batch_size = min(batch_size, len(inputs))
    n_devices = resolve_devices(devices, batch_size)
    val, val_times, validation = validation_arrays(
        model, val_data, val_times, validation, inputs, targets, times
    )
    forecast = forecast_trained(model, validation.protocol, validation.context)
    objective = objective.resolved(model.probabilistic, forecast, validation.context)
    optimizer = for_model(optimizer, model)
    chain, train_steps = compiled_step(optimizer, objective)
    # the schedule follows the run's length (steps or time budget) from the next step
    # when a resumed run changes it, as it follows a new learning rate
    loop_items = dict(batch_size=batch_size, has_val=val is not None)
    stamp = fingerprint((optimizer, objective, validation), loop_items, key, inputs, targets, times)
    setup = Setup(
        inputs=inputs,
        targets=targets,
        times=times,
        val=val,
        val_times=val_times,
        validation=validation,
        objective=objective,
        optimizer=optimizer,
        steps=steps,
        batch_size=batch_size,
        max_seconds=max_seconds,
        max_non_finite=max_non_finite,
        steps_per_call=steps_per_call,
        log_every=log_every,
        folder=None if checkpoint_dir is None else Path(checkpoint_dir),
        fingerprint=stamp,
        train_steps=train_steps,
        mesh=batch_mesh(n_devices) if n_devices > 1 else None,
        chain=chain,
    )
    return setup, chain


def forecast_trained(model, protocol: str, context: int | None) -> bool:
    """`trained_on_forecast` for a built `model` validated with `protocol` after `context`
    steps: a held WARP; with the `"forecast"` protocol and a context also a GRU and a WARP
    with the mlp root (MSE). Without a context there is no forecast to train."""
    if held(model):
        return True
    plain_warp = isinstance(model, WARP) and isinstance(model.decoder, MLPDecoder)
    forecast = protocol == "forecast" and context is not None and not model.probabilistic
    return forecast and (plain_warp or isinstance(model, GRU))


def training_arrays(model, data, times, objective: ObjectiveOptions):
    """`(inputs, targets, times)` of the training data, checked against the model."""
    objective = objective.resolved(model.probabilistic)  # for the checks below
    inputs, targets = as_pairs(data, "training data")
    times = grid_times(data, model, "training data", times)
    if inputs.shape[2] != model.data_size:
        raise ValueError(
            f"training data has {inputs.shape[2]} channels, model expects {model.data_size}"
        )
    if objective.stochastic and not model.probabilistic:
        raise ValueError("stochastic training needs a probabilistic model (Gaussian NLL)")
    if objective.time_reduction == "log_mean" and model.probabilistic:
        raise ValueError("time_reduction 'log_mean' needs the MSE loss (an NLL can be negative)")
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


def shuffler(key, n: int, batch_size: int):
    """`step -> rows`: minibatches drawn without replacement from a permutation of the
    `n` trajectories per epoch, seeded by `key` (so a resumed run draws the same)."""
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    permutation = functools.lru_cache(maxsize=2)(
        lambda epoch: np.random.default_rng([*seed, epoch]).permutation(n)
    )

    def rows_of(step: int) -> np.ndarray:
        epoch, index = divmod(step - 1, n // batch_size)
        return permutation(epoch)[index * batch_size : (index + 1) * batch_size]

    return rows_of
