"""Masks back to polygons: the outer contours of a binary mask as COCO polygons (dataset loaders that start
from masks, and the visualizer's outlines, trace masks the same way)."""
from __future__ import annotations

from typing import List, Tuple

import cv2
import numpy as np

__all__ = ["outer_polygons"]


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
    for contour, parent in zip(contours, parents, strict=True):
        if parent < 0 and len(contour) >= 3:
            xy = contour.reshape(-1, 2)
            polygons.append(np.where(xy == 0, 0.0, np.where(xy == last, last + 1.0, xy + 0.5)).ravel().tolist())
    return polygons, bool((parents >= 0).any())
