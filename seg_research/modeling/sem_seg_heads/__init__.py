"""Semantic segmentation heads: the SEM_SEG_HEADS registry and the Semantic FPN head."""
from .build import SEM_SEG_HEADS_REGISTRY, build_sem_seg_head
from .fpn_head import SemSegFPNHead, loss_key, put_pixel_accuracy

__all__ = ["SEM_SEG_HEADS_REGISTRY", "build_sem_seg_head", "SemSegFPNHead", "loss_key", "put_pixel_accuracy"]
