"""warp-phys: Weight-space Adaptive Recurrent Prediction with physical root decoders."""

from ._conventions import reference_context, teacher_forcing_mask
from ._elementwise import ContinuousTransition, DiagonalTransition
from ._forecast import reconstruct
from ._identify import parameter_trajectory
from ._interface import AbstractSequenceModel, register_model_class
from ._kernel_rollout import kernel_rollout
from ._model import WARP
from ._refine import refine_parameters
from ._rollout import rollout
from ._transition import AbstractTransition, BlockTransition, DenseTransition, LowRankTransition
from .baselines import GRU, LSTM, Transformer, count_parameters, hidden_size_for
from .decoders import (
    AbstractDecoder,
    DampedOscillatorDecoder,
    FunctionDecoder,
    HybridDecoder,
    MLPDecoder,
    ParameterSpec,
    PhysicalPrior,
    SinusoidDecoder,
    SinusoidPhaseDecoder,
    decoder_from_function,
    decoder_from_sympy,
    get_decoder,
    list_decoders,
    list_readouts,
    make_decoder,
    parse_decoder_spec,
    register_decoder,
)
from .tasks import TaskOptions, run_task
from .training.checkpoint import load_model, save_model
from .training.config import RunConfig
from .training.data import Normalizer
from .training.evaluation import evaluate_run, reconstruct_run
from .training.loop import train
from .training.losses import gaussian_nll, mse
from .training.models import build_model
from .training.optim import make_optimizer
from .training.options import ObjectiveOptions, OptimizerOptions, ValidationOptions
from .training.parameters import median_relative_error, parameter_table
from .training.protocol import forecast_mse
from .training.run import Run, load_dataset, load_run, run_dataset, train_run

__all__ = [
    "GRU",
    "LSTM",
    "WARP",
    "AbstractSequenceModel",
    "AbstractTransition",
    "BlockTransition",
    "ContinuousTransition",
    "DenseTransition",
    "DiagonalTransition",
    "LowRankTransition",
    "Transformer",
    "count_parameters",
    "hidden_size_for",
    "kernel_rollout",
    "reference_context",
    "Run",
    "RunConfig",
    "build_model",
    "evaluate_run",
    "load_dataset",
    "load_run",
    "make_optimizer",
    "ObjectiveOptions",
    "OptimizerOptions",
    "ValidationOptions",
    "run_dataset",
    "run_task",
    "TaskOptions",
    "reconstruct_run",
    "train_run",
    "AbstractDecoder",
    "DampedOscillatorDecoder",
    "FunctionDecoder",
    "HybridDecoder",
    "MLPDecoder",
    "Normalizer",
    "ParameterSpec",
    "PhysicalPrior",
    "SinusoidDecoder",
    "SinusoidPhaseDecoder",
    "decoder_from_function",
    "decoder_from_sympy",
    "forecast_mse",
    "gaussian_nll",
    "get_decoder",
    "list_decoders",
    "list_readouts",
    "load_model",
    "make_decoder",
    "mse",
    "median_relative_error",
    "parameter_table",
    "parameter_trajectory",
    "parse_decoder_spec",
    "reconstruct",
    "refine_parameters",
    "register_decoder",
    "register_model_class",
    "rollout",
    "save_model",
    "teacher_forcing_mask",
    "train",
]
