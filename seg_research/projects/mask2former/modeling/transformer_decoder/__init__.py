"""Transformer decoders of MaskFormerHead (TRANSFORMER_DECODER_REGISTRY) and their position encoding."""
from .build import TRANSFORMER_DECODER_REGISTRY, build_transformer_decoder
from .mask2former_transformer_decoder import MultiScaleMaskedTransformerDecoder
from .position_encoding import PositionEmbeddingSine

__all__ = ["TRANSFORMER_DECODER_REGISTRY", "build_transformer_decoder", "MultiScaleMaskedTransformerDecoder",
           "PositionEmbeddingSine"]
