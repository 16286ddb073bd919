"""Root-network decoders: the registry and the built-in priors.

Built-in decoders (see `list_decoders()`): `mlp`, `sinusoid`, `sinusoid_phase`,
`damped_oscillator`, `hybrid`. Every physical prior is a `PhysicalPrior`, whose
named physical parameters a readout (`readout=`, see `list_readouts()`) reads from
theta_t. User priors: `decoder_from_function` (a JAX function)
and `decoder_from_sympy` (a formula; also `"sympy:<formula>"` wherever a decoder name
is accepted).
"""

from ._base import (
    AbstractDecoder,
    decoder_keywords,
    get_decoder,
    list_decoders,
    make_decoder,
    parse_decoder_spec,
    register_decoder,
)
from ._defaults import explicit_options, legacy_options
from ._formula import FormulaError, parse_formula
from ._prior import ParameterSpec, PhysicalPrior, builds_physical_prior
from ._readout import AbstractReadout, ReadoutSettings, list_readouts, register_readout
from ._transforms import get_transform, inverse_transform
from .function import FunctionDecoder, decoder_from_function
from .hybrid import HybridDecoder
from .mlp import MLPDecoder
from .oscillator import DampedOscillatorDecoder, damped_transition
from .sinusoid import SinusoidDecoder, SinusoidPhaseDecoder
from .symbolic import decoder_from_sympy

__all__ = [
    "AbstractDecoder",
    "AbstractReadout",
    "ParameterSpec",
    "PhysicalPrior",
    "ReadoutSettings",
    "list_readouts",
    "register_readout",
    "DampedOscillatorDecoder",
    "FormulaError",
    "FunctionDecoder",
    "HybridDecoder",
    "MLPDecoder",
    "SinusoidDecoder",
    "SinusoidPhaseDecoder",
    "damped_transition",
    "decoder_from_function",
    "decoder_from_sympy",
    "builds_physical_prior",
    "decoder_keywords",
    "explicit_options",
    "legacy_options",
    "get_decoder",
    "get_transform",
    "inverse_transform",
    "list_decoders",
    "make_decoder",
    "parse_decoder_spec",
    "parse_formula",
    "register_decoder",
]
