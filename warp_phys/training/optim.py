"""The optimiser: gradient clipping, Adam / AdamW / AdaBelief with A's own learning rate,
and a constant, warmup-cosine or reduce-on-plateau schedule, as one optax chain.

The warmup-cosine schedule is a factor of the learning rate read from the run's
progress in [0, 1] (`schedule_factor`): `make_optimizer` feeds it the step count over
the run's length; `train` computes it on the host, from the step or from the wall-clock
time over a `max_seconds` budget, and scales the chain's updates by it inside the
jitted step (every optimiser here applies its rate last, so this is exactly the
scheduled rate, and a new value costs no recompilation).
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .options import OptimizerOptions


def default_transition_lr(
    model: eqx.Module, learning_rate: float, transition_lr: float | None = None
) -> float | None:
    """A's step size: `transition_lr` when given, else `learning_rate /
    model.transition.lr_divisor` for WARP (D_theta dense, 1 diagonal, sqrt(D r) low
    rank, the largest block for block), else None (no separate group to size)."""
    divisor = getattr(getattr(model, "transition", None), "lr_divisor", None)
    if transition_lr is None and divisor is not None:
        return learning_rate / divisor
    return transition_lr


def for_model(options: OptimizerOptions, model: eqx.Module) -> OptimizerOptions:
    """`options` with A's learning rate resolved for `model` (`default_transition_lr`)."""
    rate = default_transition_lr(model, options.lr, options.transition_lr)
    return dataclasses.replace(options, transition_lr=rate)


def make_optimizer(
    model: eqx.Module,
    options: OptimizerOptions | None = None,
    *,
    steps: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    """The optax chain used by `train`.

    **Arguments:**

    - `model`: the model to train (its inexact arrays are the parameters).
    - `options`: an `OptimizerOptions` (default `OptimizerOptions()`):
        - `lr`: the step size of every parameter but WARP's A.
        - `name`: `"adam"`, `"adamw"` (with `weight_decay`) or `"adabelief"` (the
          reference's choice).
        - `transition_lr`: A's step size, by default `lr / D_theta`. Adam moves every
          entry of the dense D x D matrix A by about the step size; such an update has a
          spectral norm up to D times larger, and raised to the power T along a sequence
          it blows up (the reference used 1e-5 everywhere for the same reason).
        - `clip`: `"global_norm"` (default: rescale the whole gradient to norm
          <= `clip_value`), `"elementwise"` (clip each entry to [-clip_value,
          clip_value]; the reference used 1e-7, spec section 8.6, which makes AdaBelief
          a sign-SGD) or `"none"`.
        - `schedule`: `"constant"`, `"cosine"` (a linear warmup over the first
          `warmup` of the run, then a cosine decay to 1 % at its end) or
          `"plateau"` (multiply the step by `plateau_factor` when the training loss
          stalls for `plateau_patience` checks of `plateau_accumulation` losses each;
          rtol 1e-4, min scale 0.01). With `"plateau"`, `update` needs the loss as
          `value=`.
    - `steps`: the number of training steps (the cosine schedule's length).

    **Returns:** an `optax.GradientTransformationExtraArgs`.
    """
    options = options or OptimizerOptions()
    if options.schedule == "cosine" and not steps:
        raise ValueError("the cosine schedule needs the number of training steps")
    chain = optax_chain(for_model(options, model))
    if options.schedule != "cosine":
        return chain
    factor = optax.scale_by_schedule(lambda count: schedule_factor(options, count / steps))
    return optax.chain(chain, factor)


COSINE_FLOOR = 0.01  # the cosine schedule's last rate, as a share of the first


def schedule_factor(options: OptimizerOptions, progress):
    """The learning rate's factor at `progress` (a share of the run in [0, 1], a float
    or a scalar array): 1 but for the cosine schedule, which rises linearly over the
    first `options.warmup` of the run (from 1 / 100 of it) and then decays as a cosine
    to `COSINE_FLOOR` at progress 1 (and stays there)."""
    if options.schedule != "cosine":
        return jnp.ones_like(jnp.asarray(progress, jnp.float32))
    progress = jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)
    warmup = options.warmup
    rise = 0.01 + 0.99 * jnp.minimum(1.0, progress / warmup) if warmup > 0 else 1.0
    decay = jnp.clip((progress - warmup) / (1.0 - warmup), 0.0, 1.0)
    cosine = COSINE_FLOOR + (1.0 - COSINE_FLOOR) * 0.5 * (1.0 + jnp.cos(jnp.pi * decay))
    return rise * cosine


def _labels(params):
    """ "transition" for every parameter of WARP's A (dense or structured), "other" for
    every other parameter."""
    labels = jax.tree.map(lambda _: "other", params)
    if isinstance(getattr(params, "transition", None), eqx.Module):
        labels = eqx.tree_at(
            lambda m: m.transition,
            labels,
            replace_fn=lambda t: jax.tree.map(lambda _: "transition", t),
        )
    return labels


def optax_chain(options: OptimizerOptions) -> optax.GradientTransformationExtraArgs:
    """`make_optimizer` without the cosine schedule's factor (`schedule_factor`, which
    `train` applies itself), for options whose `transition_lr` is resolved
    (`for_model`), with no model, so that it can be cached."""

    def base(lr):
        if options.name == "adamw":
            return optax.adamw(lr, weight_decay=options.weight_decay)
        return getattr(optax, options.name)(lr)

    parts = []
    if options.clip == "global_norm":
        parts.append(optax.clip_by_global_norm(options.clip_value))
    elif options.clip == "elementwise":
        parts.append(optax.clip(options.clip_value))
    lr = options.lr
    per_group = {"other": base(lr), "transition": base(options.transition_lr or lr)}
    parts.append(optax.multi_transform(per_group, _labels))
    if options.schedule == "plateau":
        parts.append(
            optax.contrib.reduce_on_plateau(
                factor=options.plateau_factor,
                patience=options.plateau_patience,
                accumulation_size=options.plateau_accumulation,
                rtol=1e-4,
                min_scale=0.01,
            )
        )
    return optax.chain(*parts)
