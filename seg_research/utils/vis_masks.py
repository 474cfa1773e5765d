"""Every instance-mask format a Visualizer accepts, turned into (H, W) bitmaps.

The formats are those detectron2's Visualizer takes (``overlay_instances(masks=...)``,
``draw_instance_predictions``' ``pred_masks``, ``draw_dataset_dict``'s ``segmentation``):
:class:`PolygonMasks`, :class:`BitMasks`, (N, H, W) tensors/arrays, and lists whose items are
polygon lists (``[[x0, y0, x1, y1, ...], ...]``, absolute pixels), COCO RLE dicts (``counts``
compressed as ``str``/``bytes`` or uncompressed as a list of run lengths), (H, W) bitmaps, or
:class:`GenericMask`.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np
import torch

from ..structures import BitMasks, PolygonMasks, polygons_to_bitmask, rle_to_bitmask
from ..structures.masks import outer_polygons

__all__ = ["GenericMask", "convert_masks"]


class GenericMask:
    """One instance mask given as polygons, an RLE dict or an (H, W) bitmap (as detectron2's).

    Args:
        mask_or_polygons: a list of flat polygons (absolute pixels), a COCO RLE dict
            (compressed or uncompressed ``counts``), or an (H, W) array / tensor (nonzero = in).
        height, width: the image size; an RLE or bitmap of another size is an error.

    Raises:
        ValueError: naming the format and the size mismatch or malformation.
    """

    def __init__(self, mask_or_polygons: Any, height: int, width: int) -> None:
        self.height, self.width = int(height), int(width)
        self._mask: Optional[np.ndarray] = None
        self._polygons: Optional[List[np.ndarray]] = None
        self._has_holes: Optional[bool] = None
        m = mask_or_polygons
        if isinstance(m, torch.Tensor):
            m = m.detach().cpu().numpy()
        if isinstance(m, dict):
            mask = rle_to_bitmask(m)
            self._mask = self._checked_size(mask, "an RLE segmentation of size")
        elif isinstance(m, (list, tuple)):
            self._polygons = [np.asarray(p, dtype=np.float64).reshape(-1) for p in m]
            self._has_holes = False
        elif isinstance(m, np.ndarray) and m.ndim == 2 and m.dtype != object:
            self._mask = self._checked_size(m, "a bitmask of shape")
        else:
            raise ValueError(f"Cannot draw a mask given as {type(m).__name__}"
                             f"{f' of shape {m.shape}' if isinstance(m, np.ndarray) else ''}: use polygons "
                             "[[x0, y0, ...], ...], a COCO RLE dict {'size', 'counts'} or an (H, W) bitmask.")

    def _checked_size(self, mask: np.ndarray, what: str) -> np.ndarray:
        if mask.shape != (self.height, self.width):
            raise ValueError(f"Cannot draw {what} {tuple(mask.shape)} on an image of (height, width) = "
                             f"{(self.height, self.width)}; masks must be at the image size (paste them first).")
        return (mask != 0).astype(np.uint8)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8 0/1."""
        if self._mask is None:
            self._mask = polygons_to_bitmask(self._polygons or [], self.height, self.width).astype(np.uint8)
        return self._mask

    @property
    def polygons(self) -> List[np.ndarray]:
        """Flat float polygons ``[x0, y0, x1, y1, ...]`` of the outer contours (absolute pixels)."""
        if self._polygons is None:
            polygons, self._has_holes = outer_polygons(self._mask)
            self._polygons = [np.asarray(p, dtype=np.float64) for p in polygons]
        return self._polygons

    @property
    def has_holes(self) -> bool:
        if self._has_holes is None:
            self.polygons  # noqa: B018  (computes both)
        return bool(self._has_holes)

    def area(self) -> int:
        """Number of mask pixels."""
        return int(self.mask.sum())

    def bbox(self) -> Tuple[float, float, float, float]:
        """Tight XYXY box of the mask pixels (absolute pixels; zeros for an empty mask)."""
        ys, xs = np.nonzero(self.mask)
        if len(xs) == 0:
            return 0.0, 0.0, 0.0, 0.0
        return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def convert_masks(masks: Any, height: int, width: int) -> np.ndarray:
    """Any accepted mask collection of N instances as an (N, height, width) bool array.

    Float bitmaps (mask probabilities) are cut at 0.5, other bitmaps at nonzero.
    """
    if isinstance(masks, PolygonMasks):
        masks = masks.polygons
    elif isinstance(masks, BitMasks):
        masks = masks.tensor
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    if isinstance(masks, np.ndarray) and masks.dtype != object:
        if masks.ndim == 2 and masks.shape[0] == 0:
            masks = masks.reshape(0, height, width)
        if masks.ndim != 3 or masks.shape[1:] != (height, width):
            raise ValueError(f"Instance masks have shape {masks.shape} but the image is (height, width) = "
                             f"{(height, width)}; pass (N, H, W) masks at the image size (paste them first).")
        return masks > 0.5 if np.issubdtype(masks.dtype, np.floating) else masks != 0
    items = list(masks)
    out = np.zeros((len(items), height, width), dtype=bool)
    for i, item in enumerate(items):
        if isinstance(item, GenericMask):
            out[i] = item.mask != 0
        elif isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 2 and item.dtype != object:
            out[i] = convert_masks(item[None], height, width)[0]
        else:
            out[i] = GenericMask(item, height, width).mask != 0
    return out
