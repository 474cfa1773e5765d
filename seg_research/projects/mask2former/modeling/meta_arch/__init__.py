"""MaskFormerHead (registered in SEM_SEG_HEADS_REGISTRY)."""
from .mask_former_head import MaskFormerHead

__all__ = ["MaskFormerHead"]
