"""Data structures shared by data loading, models and evaluation: boxes, instances, masks, image batches."""
from ..utils.absent import KEYPOINTS, ROTATED, absent_names
from .boxes import Boxes, BoxMode, pairwise_intersection, pairwise_ioa, pairwise_iou, pairwise_point_box_distance
from .image_list import ImageList
from .instances import Instances
from .masks import BitMasks, PolygonMasks, bitmask_to_rle, check_rle, polygons_to_bitmask, rle_to_bitmask
from .roi_masks import ROIMasks

__all__ = [
    "BoxMode", "Boxes", "pairwise_intersection", "pairwise_iou", "pairwise_ioa", "pairwise_point_box_distance",
    "Instances", "ImageList",
    "BitMasks", "PolygonMasks", "polygons_to_bitmask", "rle_to_bitmask", "bitmask_to_rle",
    "check_rle", "ROIMasks",
]

__getattr__ = absent_names(__name__, {
    "Keypoints": KEYPOINTS,
    "heatmaps_to_keypoints": KEYPOINTS,
    "RotatedBoxes": ROTATED,
    "pairwise_iou_rotated": ROTATED,
})
