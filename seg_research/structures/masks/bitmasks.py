"""``BitMasks``: the masks of N instances as one image-sized bool (N, H, W) tensor."""
from __future__ import annotations

from typing import Any, Iterator, List, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_util
import torch

from ..boxes import Boxes
from .crop import bitmasks_in_boxes
from .polygon_masks import PolygonMasks
from .polygons import PolygonType, polygons_to_rle

__all__ = ["BitMasks"]


class BitMasks:
    """Masks of N instances as one bool tensor of shape (N, H, W) (``tensor``), image-sized."""

    def __init__(self, tensor: Union[torch.Tensor, np.ndarray]) -> None:
        """
        Args:
            tensor: (N, H, W) masks; nonzero means foreground. Cast to bool on its own device.

        Raises:
            ValueError: if the input is not 3-dimensional.
        """
        device = tensor.device if isinstance(tensor, torch.Tensor) else torch.device("cpu")
        tensor = torch.as_tensor(tensor, device=device)
        if tensor.dim() != 3:
            raise ValueError(f"BitMasks expects a tensor of shape (N, H, W), got shape {tuple(tensor.shape)}.")
        self.tensor = tensor.to(torch.bool)

    @property
    def image_size(self) -> Tuple[int, int]:
        """(H, W) of the masks."""
        return tuple(self.tensor.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def to(self, *args: Any, **kwargs: Any) -> "BitMasks":
        return BitMasks(self.tensor.to(*args, **kwargs))

    @classmethod
    def from_polygon_masks(
        cls, polygon_masks: Union[PolygonMasks, Sequence[Sequence[PolygonType]]], height: int, width: int
    ) -> "BitMasks":
        """Rasterize polygons (a :class:`PolygonMasks` or its list-of-lists) on a height x width canvas."""
        if not isinstance(polygon_masks, PolygonMasks):
            polygon_masks = PolygonMasks(polygon_masks)
        masks = np.zeros((len(polygon_masks), height, width), dtype=bool)
        for i, polygons in enumerate(polygon_masks.polygons):
            masks[i] = mask_util.decode(polygons_to_rle(polygons, height, width))
        return cls(torch.from_numpy(masks))

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Crop mask ``i`` to ``boxes[i]`` and resample it to mask_size x mask_size (RoIAlign, aligned=True).

        Args:
            boxes: float (N, 4) XYXY absolute pixels, one box per mask.
            mask_size: M.

        Returns:
            float32 (N, M, M) tensor in [0, 1] (the covered fraction of each cell, bilinearly
            sampled) on ``boxes.device``; threshold at 0.5 for a binary mask.
        """
        if len(boxes) != len(self):
            raise ValueError(f"crop_and_resize got {len(boxes)} boxes for {len(self)} masks; pass one box per mask.")
        return bitmasks_in_boxes(self.tensor, boxes, mask_size)

    def get_bounding_boxes(self) -> Boxes:
        """Tight XYXY boxes around each mask's foreground pixels; (0, 0, 0, 0) for an empty mask.

        A mask whose only foreground pixel is ``(i, j)`` gives the box ``(j, i, j + 1, i + 1)``.
        """
        height, width = self.image_size
        if height == 0 or width == 0:
            return Boxes(torch.zeros(len(self), 4, dtype=torch.float32, device=self.device))
        rows = self.tensor.any(dim=2).to(torch.uint8)  # (N, H)
        cols = self.tensor.any(dim=1).to(torch.uint8)  # (N, W)
        y0 = rows.argmax(dim=1)
        y1 = height - rows.flip(1).argmax(dim=1)
        x0 = cols.argmax(dim=1)
        x1 = width - cols.flip(1).argmax(dim=1)
        boxes = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
        boxes[~self.nonempty()] = 0
        return Boxes(boxes)

    def nonempty(self) -> torch.Tensor:
        """Bool (N,): True for masks with at least one foreground pixel."""
        return self.tensor.flatten(1).any(dim=1)

    def area(self) -> torch.Tensor:
        """Int64 (N,): foreground pixel count of each mask."""
        return self.tensor.flatten(1).sum(dim=1)

    def __getitem__(self, item: Union[int, slice, torch.Tensor, List[int]]) -> "BitMasks":
        """Select masks by int (gives 1 mask), slice, index list/tensor or bool mask."""
        if isinstance(item, (int, np.integer)):
            return BitMasks(self.tensor[item].unsqueeze(0))
        selected = self.tensor[item]
        if selected.dim() != 3:
            raise IndexError(
                f"Indexing BitMasks with {item!r} gave shape {tuple(selected.shape)}; "
                "use an int, slice, bool mask or index list."
            )
        return BitMasks(selected)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield each mask as a bool (H, W) tensor."""
        yield from self.tensor

    @classmethod
    def cat(cls, bitmasks_list: List["BitMasks"]) -> "BitMasks":
        """Concatenate masks of the same (H, W)."""
        if not all(isinstance(m, BitMasks) for m in bitmasks_list):
            raise TypeError(f"BitMasks.cat expects BitMasks, got {[type(m).__name__ for m in bitmasks_list]}.")
        return cls(torch.cat([m.tensor for m in bitmasks_list], dim=0))

    def __repr__(self) -> str:
        return f"BitMasks(num_instances={len(self)}, image_size={self.image_size})"
