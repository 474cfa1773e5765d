"""Mask2Former's data pipeline pieces: the five training dataset mappers of upstream (same names) and
SSD's color augmentation they use."""
from .color_augmentation import ColorAugSSD
from .dataset_mappers import (
    COCOInstanceNewBaselineDatasetMapper,
    COCOPanopticNewBaselineDatasetMapper,
    MaskFormerInstanceDatasetMapper,
    MaskFormerPanopticDatasetMapper,
    MaskFormerSemanticDatasetMapper,
)

__all__ = ["ColorAugSSD", "COCOInstanceNewBaselineDatasetMapper", "COCOPanopticNewBaselineDatasetMapper",
           "MaskFormerInstanceDatasetMapper", "MaskFormerPanopticDatasetMapper", "MaskFormerSemanticDatasetMapper"]
