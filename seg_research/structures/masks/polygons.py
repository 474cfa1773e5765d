"""Polygon geometry and rasterization: validation, clipping of far-away polygons, and the
pycocotools rasterizer (``frPyObjects`` + ``merge`` + ``decode``) in the pixel convention of
:mod:`seg_research.structures.masks`."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
import torch

__all__ = ["PolygonType", "as_polygon", "polygons_to_rle", "polygons_to_bitmask", "polygon_area",
           "rasterize_polygons_within_box"]

PolygonType = Union[np.ndarray, Sequence[float]]

# pycocotools rasterizes a polygon by walking its whole perimeter at 1/5 pixel: coordinates
# far outside the canvas take unbounded time and memory (and crash it past ~1e9). Polygons
# reaching farther than this many canvas sizes outside the canvas are clipped first.
_CLIP_MARGIN_CANVASES = 1


def as_polygon(polygon: PolygonType, where: str) -> np.ndarray:
    """Validate one flat polygon ``[x0, y0, x1, y1, ...]`` and return it as float64 (2K,)."""
    array = np.asarray(polygon, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{where}: a polygon must be a flat sequence [x0, y0, x1, y1, ...], got shape {array.shape}.")
    if array.size < 6 or array.size % 2:
        raise ValueError(
            f"{where}: a polygon needs an even number of coordinates (x, y pairs), at least 6 (3 points); "
            f"got {array.size}. Drop or fix this polygon in the annotation."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: polygon has NaN or infinite coordinates. Fix this polygon in the annotation.")
    return array


def _clip_to_rectangle(polygon: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a flat polygon (2K,) to the rectangle [x0, x1] x [y0, y1]; may return < 6 values."""
    points = polygon.reshape(-1, 2)
    for axis, bound, keep_below in ((0, x0, False), (0, x1, True), (1, y0, False), (1, y1, True)):
        if len(points) == 0:
            break
        following = np.roll(points, -1, axis=0)
        inside = points[:, axis] <= bound if keep_below else points[:, axis] >= bound
        inside_next = np.roll(inside, -1)
        crossing = inside != inside_next
        t = (bound - points[crossing, axis]) / (following[crossing, axis] - points[crossing, axis])
        cuts = points[crossing] + t[:, None] * (following[crossing] - points[crossing])
        # each vertex kept if inside, followed by the cut point of its outgoing edge if that edge crosses
        pieces = [points[i : i + 1] if inside[i] else points[:0] for i in range(len(points))]
        for k, i in enumerate(np.flatnonzero(crossing)):
            pieces[i] = np.concatenate([pieces[i], cuts[k : k + 1]])
        points = np.concatenate(pieces) if pieces else points[:0]
    return points.reshape(-1)


def _bounded_polygons(polygons: Sequence[np.ndarray], height: int, width: int) -> List[np.ndarray]:
    """Polygons reaching more than a canvas size outside the height x width canvas, clipped to
    it (plus a 1-pixel border) so that rasterizing them stays cheap. Others are unchanged.

    A clipped polygon covers the same region of the canvas; its rasterization may differ on
    a few pixels along the clipped edges (pycocotools rounds vertices to 1/5 pixel).
    """
    low_x, low_y = -_CLIP_MARGIN_CANVASES * max(width, 1), -_CLIP_MARGIN_CANVASES * max(height, 1)
    high_x, high_y = width - low_x, height - low_y
    bounded = []
    for p in polygons:
        xs, ys = p[0::2], p[1::2]
        if xs.min() < low_x or xs.max() > high_x or ys.min() < low_y or ys.max() > high_y:
            p = _clip_to_rectangle(p, -1.0, -1.0, width + 1.0, height + 1.0)
        if p.size >= 6:
            bounded.append(p)
    return bounded


def polygons_to_rle(polygons: Sequence[np.ndarray], height: int, width: int) -> Dict[str, Any]:
    """Merged (union) RLE of already validated polygons on a height x width canvas."""
    polygons = _bounded_polygons(polygons, height, width)
    if len(polygons) == 0:
        return mask_util.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    return mask_util.merge(mask_util.frPyObjects(list(polygons), height, width))


def polygons_to_bitmask(polygons: Sequence[PolygonType], height: int, width: int) -> np.ndarray:
    """Rasterize the union of the polygons of one instance.

    Args:
        polygons: flat polygons ``[x0, y0, x1, y1, ...]`` in absolute pixels (module convention).
        height, width: canvas size.

    Returns:
        bool np.ndarray of shape (height, width); all False for an empty list.
    """
    checked = [as_polygon(p, f"polygon {j}") for j, p in enumerate(polygons)]
    return mask_util.decode(polygons_to_rle(checked, height, width)).astype(bool)


def polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area enclosed by the polygon of vertices ``(x[i], y[i])`` (shoelace formula; either orientation)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def rasterize_polygons_within_box(polygons: Sequence[PolygonType], box: np.ndarray, mask_size: int) -> torch.Tensor:
    """(mask_size, mask_size) bool mask of ``polygons`` (absolute coordinates) cropped to ``box``
    (XYXY absolute) and scaled to the mask: the Mask R-CNN training target of one instance."""
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = mask_size / max(x1 - x0, 0.1), mask_size / max(y1 - y0, 0.1)
    scaled = []
    for polygon in polygons:
        p = as_polygon(polygon, "rasterize_polygons_within_box").astype(np.float64).copy()
        p[0::2] = (p[0::2] - x0) * sx
        p[1::2] = (p[1::2] - y0) * sy
        scaled.append(p)
    return torch.from_numpy(polygons_to_bitmask(scaled, mask_size, mask_size).astype(bool))
