"""Data structures shared by data loading, models and evaluation: boxes, instances, masks, image batches."""
from .boxes import BoxMode, Boxes, pairwise_intersection, pairwise_ioa, pairwise_iou
from .image_list import ImageList
from .instances import Instances
from .masks import BitMasks, PolygonMasks, bitmask_to_rle, check_rle, polygons_to_bitmask, rle_to_bitmask

__all__ = [
    "BoxMode", "Boxes", "pairwise_intersection", "pairwise_iou", "pairwise_ioa",
    "Instances", "ImageList",
    "BitMasks", "PolygonMasks", "polygons_to_bitmask", "rle_to_bitmask", "bitmask_to_rle",
    "check_rle",
]
