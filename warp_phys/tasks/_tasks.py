"""The tasks beyond forecasting, as options (plain data) and one entry point,
`run_task`, that builds WARP or a baseline for a task, trains it with `fit` on the
training split, selects on the validation split and scores the test split.

| task              | data                          | objective              | metric   |
|-------------------|-------------------------------|------------------------|----------|
| `basic_motions`   | UEA, 6 channels, 100 steps    | cross-entropy, last step | accuracy |
| `japanese_vowels` | UEA, 12 channels, 7-29 steps  | cross-entropy, last step | accuracy |
| `digits`          | 8x8 digits, 64 pixels         | masked reconstruction  | MSE, BPD |
| `icl`             | linear regression, on the fly | MSE of every y_i       | MSE      |
"""

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._model import WARP
from .._transitions import check_transition
from ..baselines import BASELINES, count_parameters, hidden_size_for
from ..training.options import Options, at_least, in_range, option
from . import _objectives as obj
from ._data import icl_batch, least_squares_errors, load_digits, load_uea
from ._embedding import Embedded
from ._fit import fit

TASK_METRICS = {
    "basic_motions": "accuracy",
    "japanese_vowels": "accuracy",
    "digits": "mse",
    "icl": "mse",
}


@dataclasses.dataclass(frozen=True)
class TaskOptions(Options):
    """A task run: the task, the model, its size and the training budget. Baselines get
    the parameter count of the WARP these options build (`hidden_size_for`)."""

    task: Literal["basic_motions", "japanese_vowels", "digits", "icl"] = option(
        "basic_motions", "task"
    )
    model: Literal["warp", "gru", "lstm", "transformer"] = option("warp", "model")
    steps: int = option(300, "optimiser steps")
    batch_size: int = option(32, "sequences per step")
    lr: float = option(3e-3, "learning rate")
    transition_lr: float | None = option(None, "learning rate of WARP's A (None: lr / D_theta)")
    transition: Literal["dense", "diagonal", "lowrank", "block"] = option(
        "dense", "structure of WARP's A"
    )
    transition_init: Literal["identity", "rotation"] = option(
        "identity", "WARP's A at the start: I, or 2x2 rotations by random angles (dense A)"
    )
    root_width: int = option(32, "WARP root width")
    root_depth: int = option(1, "WARP root hidden layers")
    embed: int = option(
        0,
        "features of a per-step MLP embedding in front of every model (0: none); "
        "WARP reads their running sum (classification and icl only)",
    )
    embed_window: int = option(1, "steps the embedding reads (a causal window)")
    embed_raw: bool = option(False, "the models read the raw input too, after the features")
    val_every: int = option(50, "validate every N steps (error rate / MSE on validation)")
    seed: int = option(0, "seed of the model, minibatches and ICL draws")
    context: int = option(32, "digits: observed pixels before the completion")
    loss_steps: int = option(32, "digits: random steps scored per sequence")
    forcing_prob: float = option(0.15, "digits: teacher-forcing probability")
    icl_dim: int = option(2, "icl: input dimension")
    icl_pairs: int = option(12, "icl: (x, y) pairs per sequence")
    icl_noise: float = option(0.1, "icl: std of the noise on y")

    def check(self) -> None:
        for name in (
            "embed_window",
            "steps",
            "batch_size",
            "root_width",
            "val_every",
            "context",
            "loss_steps",
            "icl_dim",
            "icl_pairs",
        ):
            at_least(name, getattr(self, name), 1)
        at_least("root_depth", self.root_depth, 0)
        at_least("embed", self.embed, 0)
        in_range("forcing_prob", self.forcing_prob, 0, 1, "[]")
        in_range("transition_lr", self.transition_lr, 0, float("inf"), "()")
        in_range("icl_noise", self.icl_noise, 0, float("inf"), "[)")
        if self.task == "digits" and self.context >= 64:
            raise ValueError(f"option context must be < 64 pixels, got {self.context}")
        if self.task == "digits" and self.embed:
            raise ValueError("option embed is for classification and icl, not digits")
        check_transition(self.transition, None, init=self.transition_init)  # before any data


def _warp(options: TaskOptions, in_size: int, out_size: int, seq_len: int, key, decoder):
    return WARP(
        in_size,
        output_size=None if out_size == in_size else out_size,
        root_width=options.root_width,
        root_depth=options.root_depth,
        decoder_options=decoder,
        seq_len=seq_len + 1,
        transition=options.transition,
        transition_init=options.transition_init,
        key=key,
    )


def build_task_model(
    options: TaskOptions, in_size: int, out_size: int, seq_len: int, *, key, **decoder_options
):
    """WARP (an MLP root of `root_width` x `root_depth`, `seq_len + 1` steps so the
    output after the last step is decoded at tau = 1; A of kind `transition`, started
    at `transition_init`) or a baseline of the same parameter count, reading `in_size`
    channels and predicting `out_size`; `decoder_options` go to WARP's root (e.g.
    `input_prev`, `final_activation`). With `embed`, either sits behind an `Embedded`
    front (the same for every model, but WARP reads the running sum of the features),
    and the baseline's core gets WARP's count less the embedding's."""
    stream = options.embed + (in_size if options.embed_raw else 0) if options.embed else in_size

    def front(model, accumulate: bool):
        if not options.embed:
            return model
        return Embedded(
            in_size,
            model,
            features=options.embed,
            window=options.embed_window,
            accumulate=accumulate,
            raw=options.embed_raw,
            seq_len=seq_len,
            key=jax.random.fold_in(key, 5),
        )

    warp = front(_warp(options, stream, out_size, seq_len, key, decoder_options), True)
    if options.model == "warp":
        return warp
    extra = dict(output_size=out_size)
    if options.model == "transformer":
        extra["max_len"] = seq_len + 1
    params = count_parameters(warp) - (count_parameters(warp.embedding) if options.embed else 0)
    size = hidden_size_for(options.model, params=params, data_size=stream, **extra)
    size_arg = "d_model" if options.model == "transformer" else "hidden_size"
    return front(BASELINES[options.model](stream, **{size_arg: size}, **extra, key=key), False)


class TaskKeys(NamedTuple):
    """A task run's keys, independent of one another (`task_keys`)."""

    model: jax.Array  # every initialisation: WARP (root, A, drive), the embedding, a baseline
    train: jax.Array  # `fit`'s minibatches and loss draws, step n from fold_in(train, n)
    val: jax.Array  # ICL's validation draw
    test: jax.Array  # ICL's test draw


def task_keys(seed: int) -> TaskKeys:
    """`PRNGKey(seed)` split once into a run's keys. Why: model building splits its key
    and folds small tags into it (WARP's A 2, its drive 3, the embedding 5); training
    steps folded from that same key drew step 2 with A's key, step 5 the embedding's."""
    return TaskKeys(*jax.random.split(jax.random.PRNGKey(seed), 4))


def _minibatches(split: tuple, batch_size: int):
    n = len(split[0])
    size = min(batch_size, n)

    def sample(key):
        rows = np.asarray(jax.random.choice(key, n, (size,), replace=False))
        return tuple(jnp.asarray(a[rows]) for a in split)

    return sample


def _classify(options: TaskOptions, keys: TaskKeys, checkpoint_dir):
    data = load_uea(options.task)
    xs, _, _ = data["train"]
    model = build_task_model(
        options, xs.shape[2], len(data["classes"]), xs.shape[1], input_prev=False, key=keys.model
    )
    model, history = fit(
        model,
        obj.classification_loss,
        _minibatches(data["train"], options.batch_size),
        steps=options.steps,
        key=keys.train,
        lr=options.lr,
        transition_lr=options.transition_lr,
        every=options.val_every,
        validate=lambda m: 1.0 - obj.accuracy(m, data["val"]),
        checkpoint_dir=checkpoint_dir,
        metadata={"task": options.task},
    )
    return model, history, {"accuracy": obj.accuracy(model, data["test"])}


def _complete(options: TaskOptions, keys: TaskKeys, checkpoint_dir):
    data = load_digits()
    (train,), (val,), (test,) = data["train"], data["val"], data["test"]

    def loss(model, batch, k):
        return obj.masked_reconstruction_loss(
            model,
            batch,
            k,
            forcing_prob=options.forcing_prob,
            loss_steps=options.loss_steps,
            context=options.context,
        )

    def val_mse(model):
        return float(
            jnp.mean((obj.completion(model, val, options.context) - val[:, options.context :]) ** 2)
        )

    # the spec's MNIST root ends in tanh: it keeps early free-running rollouts finite
    model = build_task_model(
        options, 1, 1, train.shape[1], input_prev=True, final_activation="tanh", key=keys.model
    )
    model, history = fit(
        model,
        loss,
        _minibatches((train,), options.batch_size),
        steps=options.steps,
        key=keys.train,
        lr=options.lr,
        transition_lr=options.transition_lr,
        validate=val_mse,
        every=options.val_every,
        checkpoint_dir=checkpoint_dir,
        metadata={"task": "digits"},
    )
    sigma = float(np.sqrt(val_mse(model)))  # the BPD's std, fitted on validation
    prediction = obj.completion(model, test, options.context)
    target = test[:, options.context :]
    result = {
        "mse": float(jnp.mean((prediction - target) ** 2)),
        "bpd": obj.bits_per_dim(prediction, target, sigma),
        "sigma": sigma,
    }
    return model, history, {**result, "completions": np.asarray(prediction[:8, :, 0])}


def _icl(options: TaskOptions, keys: TaskKeys, checkpoint_dir):
    dim, pairs = options.icl_dim, options.icl_pairs
    draw = dict(pairs=pairs, dim=dim, noise=options.icl_noise)
    val = icl_batch(keys.val, 256, **draw)
    test = icl_batch(keys.test, 1024, **draw)
    # with an embedding WARP's root predicts y alone from its weights (the query x_i
    # reaches them through the raw stream); without, it reads the last token
    out = 1 if options.embed else dim + 1
    model = build_task_model(
        options, dim + 1, out, pairs, input_prev=not options.embed, key=keys.model
    )
    model, history = fit(
        model,
        obj.icl_loss,
        lambda k: icl_batch(k, options.batch_size, **draw),
        steps=options.steps,
        key=keys.train,
        lr=options.lr,
        transition_lr=options.transition_lr,
        every=options.val_every,
        validate=lambda m: float(np.mean(obj.icl_errors(m, *val))),
        checkpoint_dir=checkpoint_dir,
        metadata={"task": "icl"},
    )
    errors, reference = obj.icl_errors(model, *test), least_squares_errors(*test)
    at = min(2 * dim, pairs - 1)  # the target's context size: twice the input dimension
    result = {"mse": float(errors[at]), "least_squares": float(reference[at]), "pairs": at}
    return model, history, {**result, "curve": errors.tolist(), "ls_curve": reference.tolist()}


def run_task(options: TaskOptions | None = None, *, checkpoint_dir=None, **flat):
    """Train and test one model on one task.

    **Arguments:** `options` (a `TaskOptions`) or its fields as keywords (e.g.
    `run_task(task="digits", model="gru", steps=200)`); `checkpoint_dir`: where
    `best.eqx` (the model chosen on validation) is written.

    **Returns:** `(model, history, result)`: `result` has the task's test `metric`
    (`"accuracy"` or `"mse"`) and its value under that name; digits add `bpd` (bits per
    pixel, see `bits_per_dim`, with sigma the validation RMSE) and `completions` (the
    first 8 test forecasts `(8, 64 - context)`); ICL adds `curve` (MSE after i pairs,
    i = 0..pairs-1), `ls_curve` (least squares), `least_squares` and `pairs` (the
    `mse` is read at 2 x icl_dim pairs).
    """
    options = options or TaskOptions(**flat)
    run = {
        "basic_motions": _classify,
        "japanese_vowels": _classify,
        "digits": _complete,
        "icl": _icl,
    }[options.task]
    model, history, result = run(options, task_keys(options.seed), checkpoint_dir)
    return model, history, {"metric": TASK_METRICS[options.task], **result}
