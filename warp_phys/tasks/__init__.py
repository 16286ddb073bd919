"""Tasks beyond forecasting on the same models: UEA classification, digit completion
and in-context linear regression (see `_tasks` for the table)."""

from ._data import icl_batch, least_squares_errors, load_digits, load_uea
from ._embedding import Embedded
from ._fit import fit
from ._objectives import (
    accuracy,
    bits_per_dim,
    class_logits,
    classification_loss,
    icl_errors,
    icl_loss,
    masked_reconstruction_loss,
    step_outputs,
)
from ._tasks import TASK_METRICS, TaskOptions, build_task_model, run_task

__all__ = [
    "Embedded",
    "TASK_METRICS",
    "TaskOptions",
    "accuracy",
    "bits_per_dim",
    "class_logits",
    "build_task_model",
    "classification_loss",
    "fit",
    "icl_batch",
    "icl_errors",
    "icl_loss",
    "least_squares_errors",
    "load_digits",
    "load_uea",
    "masked_reconstruction_loss",
    "run_task",
    "step_outputs",
]
