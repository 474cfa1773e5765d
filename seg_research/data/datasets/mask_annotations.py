"""Instance annotations derived from a binary mask: COCO polygons of its outer contours, RLE, box, area.

The contour geometry, :func:`~seg_research.structures.masks.outer_polygons`, lives in structures (the
visualizer draws with it too) and is re-exported here.

Shared by the dataset loaders that start from masks (Shapes, PH2, MADS), so that every
dataset turns a mask into annotation fields the same way.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_util

from seg_research.structures import BoxMode, bitmask_to_rle
from seg_research.structures.masks import outer_polygons

__all__ = ["outer_polygons", "rle_box_area", "polygon_instance", "component_instances"]


def rle_box_area(mask: np.ndarray) -> Tuple[Dict[str, Any], List[float], int]:
    """``(compressed RLE with str counts, tight bbox XYWH absolute pixels, pixel area)`` of an H x W mask.

    The box is pycocotools' (``[x_min, y_min, x_max - x_min + 1, y_max - y_min + 1]`` over
    foreground pixels; all zeros for an empty mask).
    """
    rle = bitmask_to_rle(mask)
    return rle, mask_util.toBbox(rle).tolist(), int(mask_util.area(rle))


def polygon_instance(mask: np.ndarray, category_id: int) -> List[Dict[str, Any]]:
    """The whole foreground of ``mask`` as one instance annotation with polygon segmentation.

    Args:
        mask: H x W array, nonzero = foreground.
        category_id: contiguous class id (0..K-1).

    Returns:
        ``[{bbox: XYWH absolute pixels (tight around the mask, :func:`rle_box_area`),
        bbox_mode: BoxMode.XYWH_ABS, category_id, segmentation: outer polygons
        (:func:`outer_polygons`; holes are covered), iscrowd: 0}]``, or ``[]`` when the
        mask has no contour of 3 points or more.
    """
    polygons, _ = outer_polygons(mask)
    if not polygons:
        return []
    _, bbox, _ = rle_box_area(mask)
    return [{"bbox": bbox, "bbox_mode": BoxMode.XYWH_ABS, "category_id": int(category_id),
             "segmentation": polygons, "iscrowd": 0}]


def component_instances(mask: np.ndarray, category_id: int, min_area: int) -> List[Dict[str, Any]]:
    """One instance annotation per 8-connected component of ``mask`` with at least ``min_area`` pixels.

    Args:
        mask: H x W array, nonzero = foreground.
        category_id: contiguous class id (0..K-1) of every instance.
        min_area: smaller components (specks) get no annotation.

    Returns:
        ``{bbox: XYWH absolute pixels, bbox_mode: BoxMode.XYWH_ABS, category_id,
        segmentation: compressed RLE (exact, holes kept), iscrowd: 0}`` per component, in
        the order of their first pixel in row-major scan.
    """
    count, labels = cv2.connectedComponents((mask != 0).astype(np.uint8), connectivity=8)
    annotations = []
    for label in range(1, count):
        rle, bbox, area = rle_box_area(labels == label)
        if area >= min_area:
            annotations.append({"bbox": bbox, "bbox_mode": BoxMode.XYWH_ABS, "category_id": int(category_id),
                                "segmentation": rle, "iscrowd": 0})
    return annotations
