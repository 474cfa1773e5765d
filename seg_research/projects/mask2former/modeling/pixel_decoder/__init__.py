"""Pixel decoders of MaskFormerHead, registered in SEM_SEG_HEADS_REGISTRY as upstream does."""
from .fpn import BasePixelDecoder, build_pixel_decoder
from .msdeformattn import MSDeformAttnPixelDecoder

__all__ = ["build_pixel_decoder", "BasePixelDecoder", "MSDeformAttnPixelDecoder"]
