"""Augmentations (random policies) and transforms (deterministic ops), detectron2-style.

fvcore's transforms are re-exported so user code imports everything from here.
"""
from fvcore.transforms.transform import (
    BlendTransform,
    CropTransform,
    GridSampleTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    ScaleTransform,
    Transform,
    TransformList,
    VFlipTransform,
)

from ...utils.absent import absent_names
from . import augmentation_impl, transform
from .augmentation import (
    AugInput,
    Augmentation,
    AugmentationList,
    StandardAugInput,
    TransformGen,
    apply_augmentations,
    apply_transform_gens,
)
from .augmentation_impl import (
    FixedSizeCrop,
    RandomApply,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomCrop_CategoryAreaConstraint,
    RandomFlip,
    RandomSaturation,
    Resize,
    ResizeScale,
    ResizeShortestEdge,
)
from .transform import ColorTransform, PILColorTransform, ResizeTransform

__all__ = [
    "Augmentation", "AugInput", "AugmentationList", "apply_augmentations",
    "ResizeShortestEdge", "RandomFlip", "RandomCrop", "RandomBrightness", "RandomContrast",
    "Transform", "TransformList", "NoOpTransform", "HFlipTransform", "VFlipTransform", "CropTransform",
    "PadTransform", "BlendTransform", "ResizeTransform", "ScaleTransform", "GridSampleTransform",
    "ColorTransform", "PILColorTransform", "RandomSaturation", "Resize", "RandomApply",
    "TransformGen", "StandardAugInput", "apply_transform_gens", "ResizeScale", "FixedSizeCrop",
    "RandomCrop_CategoryAreaConstraint",
]


def __getattr__(name: str):
    """detectron2 transforms that are not provided: the advice of the module defining them."""
    for module in (augmentation_impl, transform):
        try:
            return getattr(module, name)
        except AttributeError:
            continue
    return absent_names(__name__, {})(name)
