"""Augmentations (random policies) and transforms (deterministic ops), detectron2-style.

fvcore's transforms are re-exported so user code imports everything from here.
"""
from fvcore.transforms.transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    Transform,
    TransformList,
    VFlipTransform,
)

from .augmentation import AugInput, Augmentation, AugmentationList, apply_augmentations
from .augmentation_impl import RandomBrightness, RandomContrast, RandomCrop, RandomFlip, ResizeShortestEdge
from .transform import ResizeTransform

__all__ = [
    "Augmentation", "AugInput", "AugmentationList", "apply_augmentations",
    "ResizeShortestEdge", "RandomFlip", "RandomCrop", "RandomBrightness", "RandomContrast",
    "Transform", "TransformList", "NoOpTransform", "HFlipTransform", "VFlipTransform", "CropTransform",
    "PadTransform", "BlendTransform", "ResizeTransform",
]
