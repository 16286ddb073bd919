"""The optimiser: gradient clipping, Adam / AdamW / AdaBelief with A's own learning rate,
and a constant, cosine or reduce-on-plateau schedule, as one optax chain."""

from typing import Literal

import equinox as eqx
import jax
import optax

OPTIMIZERS = ("adam", "adamw", "adabelief")
CLIPS = ("global_norm", "elementwise", "none")
SCHEDULES = ("constant", "cosine", "plateau")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


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


def make_optimizer(
    model: eqx.Module,
    learning_rate: float = 1e-3,
    *,
    optimizer: Literal["adam", "adamw", "adabelief"] = "adam",
    transition_lr: float | None = None,
    weight_decay: float = 1e-4,
    clip: Literal["global_norm", "elementwise", "none"] = "global_norm",
    clip_value: float = 1.0,
    schedule: Literal["constant", "cosine", "plateau"] = "constant",
    steps: int | None = None,
    plateau_factor: float = 0.5,
    plateau_patience: int = 20,
    plateau_accumulation: int = 50,
) -> optax.GradientTransformationExtraArgs:
    """The optax chain used by `train`.

    **Arguments:**

    - `model`: the model to train (its inexact arrays are the parameters).
    - `learning_rate`: the step size of every parameter but WARP's A.
    - `optimizer`: `"adam"`, `"adamw"` (with `weight_decay`) or `"adabelief"` (the
      reference's choice).
    - `transition_lr`: A's step size, by default `learning_rate / D_theta`. Adam moves
      every entry of the dense D x D matrix A by about the step size; such an update has
      a spectral norm up to D times larger, and raised to the power T along a sequence
      it blows up (the reference used 1e-5 everywhere for the same reason).
    - `clip`: `"global_norm"` (default: rescale the whole gradient to norm
      <= `clip_value`), `"elementwise"` (clip each entry to [-clip_value, clip_value];
      the reference used 1e-7, spec section 8.6, which makes AdaBelief a sign-SGD) or
      `"none"`.
    - `schedule`: `"constant"`, `"cosine"` (decay to 1 % over `steps`) or `"plateau"`
      (halve the step when the training loss stalls: factor, patience and
      accumulation as in the reference's configs, rtol 1e-4, min scale 0.01). With
      `"plateau"`, `update` needs the loss as `value=`.

    **Returns:** an `optax.GradientTransformationExtraArgs`.
    """
    _choice("optimizer", optimizer, OPTIMIZERS)
    _choice("clip", clip, CLIPS)
    _choice("schedule", schedule, SCHEDULES)
    if learning_rate <= 0 or clip_value <= 0:
        raise ValueError(
            f"learning_rate and clip_value must be > 0, got {learning_rate}, {clip_value}"
        )
    if schedule == "cosine" and not steps:
        raise ValueError("the cosine schedule needs the number of training steps")
    return build_optimizer(
        learning_rate,
        transition_lr=default_transition_lr(model, learning_rate, transition_lr),
        optimizer=optimizer,
        weight_decay=weight_decay,
        clip=clip,
        clip_value=clip_value,
        schedule=schedule,
        steps=steps,
        plateau_factor=plateau_factor,
        plateau_patience=plateau_patience,
        plateau_accumulation=plateau_accumulation,
    )


def _labels(params):
    """"transition" for every parameter of WARP's A (dense or structured), "other" for
    every other parameter."""
    labels = jax.tree.map(lambda _: "other", params)
    if isinstance(getattr(params, "transition", None), eqx.Module):
        labels = eqx.tree_at(
            lambda m: m.transition,
            labels,
            replace_fn=lambda t: jax.tree.map(lambda _: "transition", t),
        )
    return labels


def build_optimizer(
    learning_rate: float,
    *,
    transition_lr: float | None,
    optimizer: str,
    weight_decay: float,
    clip: str,
    clip_value: float,
    schedule: str,
    steps: int | None,
    plateau_factor: float,
    plateau_patience: int,
    plateau_accumulation: int,
) -> optax.GradientTransformationExtraArgs:
    """`make_optimizer` with every option explicit and no model (so it can be cached)."""

    def rate(lr):
        if schedule == "cosine":
            return optax.cosine_decay_schedule(lr, decay_steps=steps, alpha=0.01)
        return lr

    def base(lr):
        if optimizer == "adamw":
            return optax.adamw(rate(lr), weight_decay=weight_decay)
        return getattr(optax, optimizer)(rate(lr))

    parts = []
    if clip == "global_norm":
        parts.append(optax.clip_by_global_norm(clip_value))
    elif clip == "elementwise":
        parts.append(optax.clip(clip_value))
    per_group = {"other": base(learning_rate), "transition": base(transition_lr or learning_rate)}
    parts.append(optax.multi_transform(per_group, _labels))
    if schedule == "plateau":
        parts.append(
            optax.contrib.reduce_on_plateau(
                factor=plateau_factor,
                patience=plateau_patience,
                accumulation_size=plateau_accumulation,
                rtol=1e-4,
                min_scale=0.01,
            )
        )
    return optax.chain(*parts)
