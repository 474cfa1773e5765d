"""Instance annotations derived from a binary mask: COCO polygons of its outer contours, RLE, box, area.

Shared by the dataset loaders that start from masks (Shapes, PH2, MADS), so that every
dataset turns a mask into annotation fields the same way.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_util

from seg_research.structures import BoxMode, bitmask_to_rle

__all__ = ["outer_polygons", "rle_box_area", "polygon_instance", "component_instances"]


def outer_polygons(mask: np.ndarray) -> Tuple[List[List[float]], bool]:
    """Outer contours of ``mask`` as flat COCO polygons (>= 3 points), and whether the mask has holes.

    Args:
        mask: H x W array, nonzero = foreground.

    Returns:
        ``(polygons, has_hole)``: one flat ``[x0, y0, x1, y1, ...]`` list (absolute pixels)
        per outer contour of at least 3 points (smaller specks are left out), and True when
        some contour encloses a hole (the polygons cover holes; use :func:`rle_box_area`
        for an exact mask). Vertices are the centres of boundary pixels (``index + 0.5``),
        moved onto the image edge (0 or the width/height) for pixels on the first/last row
        or column, so that a shape cut by the border keeps its border pixels when the
        polygon is rasterized.
    """
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return [], False
    parents = hierarchy[0][:, 3]
    last = np.array([mask.shape[1] - 1, mask.shape[0] - 1])
    polygons = []
    for contour, parent in zip(contours, parents):
        if parent < 0 and len(contour) >= 3:
            xy = contour.reshape(-1, 2)
            polygons.append(np.where(xy == 0, 0.0, np.where(xy == last, last + 1.0, xy + 0.5)).ravel().tolist())
    return polygons, bool((parents >= 0).any())


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
