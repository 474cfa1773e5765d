"""Deterministic transforms beyond fvcore's: a Pillow resize, and polygon cropping without shapely.

Coordinates are absolute floating-point pixels: an image of shape (H, W) spans
``[0, W] x [0, H]``; a pixel index ``(i, j)`` covers ``[j, j+1] x [i, i+1]``.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import cv2
import numpy as np
from fvcore.transforms.transform import CropTransform, Transform
from PIL import Image

from ...utils.absent import absent_names

__all__ = ["ResizeTransform", "ColorTransform", "PILColorTransform"]


class ResizeTransform(Transform):
    """Resize from (h, w) to (new_h, new_w).

    Images are resampled with Pillow (``interp``, bilinear by default, antialiased when
    shrinking); segmentations (class ids, bit masks) with nearest-neighbour sampling at
    pixel centres, so no new label values appear.
    """

    def __init__(self, h: int, w: int, new_h: int, new_w: int, interp: int = Image.Resampling.BILINEAR) -> None:
        super().__init__()
        self._set_attributes(locals())

    def _check_size(self, array: np.ndarray) -> None:
        if array.shape[:2] != (self.h, self.w):
            raise ValueError(
                f"ResizeTransform was built for inputs of size (h, w) = {(self.h, self.w)} but got an array "
                f"of shape {array.shape}. Build the transform from the same image it is applied to."
            )

    def apply_image(self, img: np.ndarray, interp: Optional[int] = None) -> np.ndarray:
        """Resize an HxW or HxWxC image (any numeric dtype); returns the same dtype and channels."""
        self._check_size(img)
        resample = self.interp if interp is None else interp
        size = (self.new_w, self.new_h)
        if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] in (3, 4)):
            return np.array(Image.fromarray(img).resize(size, resample))
        planes = img.reshape(self.h, self.w, -1).astype(np.float32)
        out = np.stack(
            [np.asarray(Image.fromarray(planes[..., c]).resize(size, resample)) for c in range(planes.shape[2])],
            axis=-1,
        )
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(img.dtype).reshape((self.new_h, self.new_w) + img.shape[2:])

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Nearest-neighbour resize of an HxW (or HxWxC) label map of any dtype, bool included."""
        self._check_size(segmentation)
        rows = np.minimum(((np.arange(self.new_h) + 0.5) * (self.h / self.new_h)).astype(np.int64), self.h - 1)
        cols = np.minimum(((np.arange(self.new_w) + 0.5) * (self.w / self.new_w)).astype(np.int64), self.w - 1)
        return segmentation[rows[:, None], cols[None, :]]

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Scale an Nx2 float array of (x, y) in place and return it."""
        coords[:, 0] = coords[:, 0] * (self.new_w / self.w)
        coords[:, 1] = coords[:, 1] * (self.new_h / self.h)
        return coords

    def inverse(self) -> "ResizeTransform":
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


def _clip_polygon(polygon: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Sutherland-Hodgman clip of an Nx2 (x, y) polygon to the box [x0, x1] x [y0, y1].

    Returns an Mx2 float64 array (M may be 0). Concave polygons stay one polygon whose
    parts are joined along the box border, which rasterizes to the same mask.
    """
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if len(polygon) == 0:
            break
        inside = polygon[:, axis] >= bound if keep_above else polygon[:, axis] <= bound
        clipped = []
        for k in range(len(polygon)):
            start, end = polygon[k - 1], polygon[k]
            if inside[k - 1] != inside[k]:
                t = (bound - start[axis]) / (end[axis] - start[axis])
                clipped.append(start + t * (end - start))
            if inside[k]:
                clipped.append(end)
        polygon = np.asarray(clipped, dtype=np.float64).reshape(-1, 2)
    return polygon


def _crop_polygons(crop: CropTransform, polygons: List[np.ndarray]) -> List[np.ndarray]:
    """Clip each Nx2 polygon to the crop window and shift it into the crop's coordinates.

    Polygons left with fewer than 3 vertices or zero area are dropped, so an instance
    entirely outside the crop ends with an empty polygon list.
    """
    out = []
    for polygon in polygons:
        clipped = _clip_polygon(
            np.asarray(polygon, dtype=np.float64).reshape(-1, 2),
            crop.x0, crop.y0, crop.x0 + crop.w, crop.y0 + crop.h,
        )
        if len(clipped) >= 3 and cv2.contourArea(clipped.astype(np.float32)) > 0:
            out.append(crop.apply_coords(clipped))
    return out


# fvcore's CropTransform.apply_polygons needs shapely, which is not a dependency.
CropTransform.register_type("polygons", _crop_polygons)


class ColorTransform(Transform):
    """A photometric transform: ``op(image)`` on the image (an (H, W, C) array), geometry and
    segmentations unchanged."""

    def __init__(self, op: Callable[[np.ndarray], np.ndarray]) -> None:
        if not callable(op):
            raise TypeError(f"ColorTransform(op): op must be callable (image -> image), got {type(op).__name__}.")
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return self.op(img)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation

    def inverse(self) -> Transform:
        from fvcore.transforms.transform import NoOpTransform

        return NoOpTransform()


class PILColorTransform(ColorTransform):
    """:class:`ColorTransform` whose ``op`` takes and returns a ``PIL.Image`` (e.g. a
    ``PIL.ImageEnhance`` chain); the image is converted from and back to a uint8 array."""

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return np.asarray(self.op(Image.fromarray(np.ascontiguousarray(img))))


_NOT_PROVIDED = "not provided; write a fvcore Transform subclass (apply_image / apply_coords / apply_segmentation)."
__getattr__ = absent_names(__name__, {"ExtentTransform": _NOT_PROVIDED, "RotationTransform": _NOT_PROVIDED})
