"""Root-network decoders: the registry and the built-in priors."""

from ._base import AbstractDecoder, get_decoder, list_decoders, register_decoder
from .mlp import MLPDecoder

__all__ = ["AbstractDecoder", "MLPDecoder", "get_decoder", "list_decoders", "register_decoder"]
