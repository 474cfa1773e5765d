"""``ROIMasks``: one box-relative M×M mask per detection, pasted into the image on demand."""
from __future__ import annotations

from typing import Any, Union

import torch

from ..layers.mask_ops import paste_masks_in_image
from .boxes import Boxes
from .masks import BitMasks

__all__ = ["ROIMasks"]


class ROIMasks:
    """Masks predicted inside boxes (detectron2's ``ROIMasks``): ``tensor`` float (N, M, M)
    mask probabilities (or logits thresholded by the caller), cell (i, j) covering the
    (i, j)-th of M×M equal parts of detection n's box.
    """

    def __init__(self, tensor: torch.Tensor) -> None:
        if tensor.dim() != 3:
            raise ValueError(f"ROIMasks takes an (N, M, M) tensor, got shape {tuple(tensor.shape)}.")
        self.tensor = tensor

    def to(self, *args: Any, **kwargs: Any) -> "ROIMasks":
        return ROIMasks(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __getitem__(self, item: Union[int, slice, torch.Tensor]) -> "ROIMasks":
        """Index the detections; an int keeps the (1, M, M) shape."""
        selected = self.tensor[item]
        return ROIMasks(selected[None] if selected.dim() == 2 else selected)

    def to_bitmasks(self, boxes: Union[torch.Tensor, Boxes], height: int, width: int,
                    threshold: float = 0.5) -> BitMasks:
        """Paste each mask into its box (``boxes`` (N, 4) XYXY absolute pixels) of a (height, width)
        image: :class:`BitMasks` bool (N, height, width) of the pixels with value > ``threshold``."""
        return BitMasks(paste_masks_in_image(self.tensor, boxes, (height, width), threshold=threshold))

    def __repr__(self) -> str:
        return f"ROIMasks(num_instances={len(self)}, mask_size={tuple(self.tensor.shape[1:])})"
