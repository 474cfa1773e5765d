"""``PolygonMasks``: the masks of N instances, each a list of flat polygons (COCO ``segmentation``)."""
from __future__ import annotations

from numbers import Number
from typing import Any, Iterator, List, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
import torch

from ..boxes import Boxes
from .crop import polygons_in_boxes
from .polygons import PolygonType, as_polygon, polygons_to_rle

__all__ = ["PolygonMasks"]

# PolygonMasks.area rasterizes each instance on a canvas of its own size; refuse larger ones.
_MAX_AREA_CANVAS_PIXELS = 1 << 28


def _selected_indices(item: Any, length: int) -> List[int]:
    """Positions selected by a bool mask of length ``length`` or an index list/array/tensor."""
    index = torch.as_tensor(item)
    if index.dtype == torch.bool:
        if index.dim() != 1 or index.numel() != length:
            raise IndexError(f"A bool mask index must have shape ({length},), got {tuple(index.shape)}.")
        index = index.nonzero().flatten()
    return index.flatten().tolist()


class PolygonMasks:
    """Masks of N instances, each a list of flat polygons (their union is the instance).

    ``polygons[i][j]`` is polygon ``j`` of instance ``i``: float64 np.ndarray
    ``[x0, y0, x1, y1, ...]`` in absolute pixels (module convention). Polygons stay on the CPU.
    """

    def __init__(self, polygons: Sequence[Sequence[PolygonType]]) -> None:
        """
        Raises:
            ValueError: naming the instance (and polygon) at fault when an instance is not a
                list of polygons or a polygon has an odd number of coordinates or fewer than 6.
        """
        if not isinstance(polygons, (list, tuple)):
            raise ValueError(
                "PolygonMasks expects a list (one entry per instance) of lists of polygons, "
                f"got {type(polygons).__name__}."
            )
        self.polygons: List[List[np.ndarray]] = []
        for i, instance in enumerate(polygons):
            if not isinstance(instance, (list, tuple)):
                raise ValueError(
                    f"PolygonMasks: instance {i} must be a list of polygons, each a flat [x0, y0, x1, y1, ...]; "
                    f"got {type(instance).__name__}. Wrap a single polygon in a list: [polygon]."
                )
            if any(isinstance(p, Number) for p in instance):
                raise ValueError(
                    f"PolygonMasks: instance {i} is a flat list of numbers, not a list of polygons. "
                    "Wrap a single polygon in a list: [polygon]."
                )
            self.polygons.append(
                [as_polygon(p, f"PolygonMasks: instance {i}, polygon {j}") for j, p in enumerate(instance)]
            )

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, *args: Any, **kwargs: Any) -> "PolygonMasks":
        """Polygons live on the CPU as numpy arrays: returns ``self`` unchanged."""
        return self

    def get_bounding_boxes(self) -> Boxes:
        """Tight XYXY boxes around all polygons of each instance; (0, 0, 0, 0) for an instance without polygons."""
        boxes = torch.zeros(len(self), 4, dtype=torch.float32)
        for i, polygons in enumerate(self.polygons):
            if polygons:
                points = np.concatenate(polygons).reshape(-1, 2)
                boxes[i] = torch.from_numpy(np.concatenate([points.min(axis=0), points.max(axis=0)]))
        return Boxes(boxes)

    def nonempty(self) -> torch.Tensor:
        """Bool (N,): True for instances with at least one polygon."""
        return torch.tensor([len(polygons) > 0 for polygons in self.polygons], dtype=torch.bool)

    def area(self) -> torch.Tensor:
        """Int64 (N,): rasterized pixel count of each instance (union of its polygons, pycocotools).

        Each instance is rasterized in its own frame (shifted by whole pixels), so coordinates
        outside any image, including negative ones, still count.
        """
        areas = []
        for polygons in self.polygons:
            if not polygons:
                areas.append(0)
                continue
            points = np.concatenate(polygons).reshape(-1, 2)
            origin = np.floor(points.min(axis=0))
            width, height = (np.ceil(points.max(axis=0) - origin) + 1).astype(int)
            if width * height > _MAX_AREA_CANVAS_PIXELS:
                raise ValueError(
                    f"PolygonMasks.area: an instance spans {width}x{height} pixels, too large to rasterize; its "
                    "polygon coordinates are far outside any image. Fix or drop this annotation."
                )
            shifted = [(p.reshape(-1, 2) - origin).reshape(-1) for p in polygons]
            areas.append(int(mask_util.area(polygons_to_rle(shifted, int(height), int(width)))))
        return torch.tensor(areas, dtype=torch.int64)

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Rasterize instance ``i`` inside ``boxes[i]`` at a resolution of mask_size x mask_size.

        Box ``(x0, y0, x1, y1)`` is mapped onto the grid ``[0, M] x [0, M]``; sides shorter
        than 0.1 px count as 0.1 px.

        Args:
            boxes: float (N, 4) XYXY absolute pixels, one box per instance.
            mask_size: M.

        Returns:
            float32 (N, M, M) tensor of 0/1 on ``boxes.device``.
        """
        if len(boxes) != len(self):
            raise ValueError(
                f"crop_and_resize got {len(boxes)} boxes for {len(self)} instances; pass one box per instance."
            )
        return polygons_in_boxes(self.polygons, boxes, mask_size)

    def __getitem__(self, item: Union[int, slice, List[int], torch.Tensor, np.ndarray]) -> "PolygonMasks":
        """Select instances by int (gives 1 instance), slice, index list/array/tensor or bool mask."""
        if isinstance(item, (int, np.integer)):
            return PolygonMasks([self.polygons[item]])
        if isinstance(item, slice):
            return PolygonMasks(self.polygons[item])
        return PolygonMasks([self.polygons[i] for i in _selected_indices(item, len(self))])

    def __len__(self) -> int:
        return len(self.polygons)

    def __iter__(self) -> Iterator[List[np.ndarray]]:
        """Yield the list of polygons of each instance."""
        yield from self.polygons

    @classmethod
    def cat(cls, polymasks_list: List["PolygonMasks"]) -> "PolygonMasks":
        """Concatenate the instances of several :class:`PolygonMasks`."""
        if not all(isinstance(m, PolygonMasks) for m in polymasks_list):
            raise TypeError(f"PolygonMasks.cat expects PolygonMasks, got {[type(m).__name__ for m in polymasks_list]}.")
        return cls([polygons for masks in polymasks_list for polygons in masks.polygons])

    def __repr__(self) -> str:
        return f"PolygonMasks(num_instances={len(self)})"
