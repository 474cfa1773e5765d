"""Backbones of the Mask2Former project (registered in ``BACKBONE_REGISTRY`` on import)."""
from .swin import D2SwinTransformer

__all__ = ["D2SwinTransformer"]
