"""Mask2Former's modules, registered on import: the pixel decoders and MaskFormerHead in
SEM_SEG_HEADS_REGISTRY, the transformer decoder in TRANSFORMER_DECODER_REGISTRY, the Swin backbone in
BACKBONE_REGISTRY."""
from .backbone.swin import D2SwinTransformer
from .meta_arch.mask_former_head import MaskFormerHead
from .pixel_decoder.fpn import BasePixelDecoder, build_pixel_decoder
from .pixel_decoder.msdeformattn import MSDeformAttnPixelDecoder
from .transformer_decoder import (
    TRANSFORMER_DECODER_REGISTRY,
    MultiScaleMaskedTransformerDecoder,
    build_transformer_decoder,
)

__all__ = ["D2SwinTransformer", "MaskFormerHead", "BasePixelDecoder", "MSDeformAttnPixelDecoder", "build_pixel_decoder",
           "TRANSFORMER_DECODER_REGISTRY", "MultiScaleMaskedTransformerDecoder", "build_transformer_decoder"]
