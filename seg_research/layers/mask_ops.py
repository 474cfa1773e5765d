"""Paste box-relative mask probabilities into the image, with sub-pixel box coordinates."""
from __future__ import annotations

import math
from typing import Protocol, Tuple, Union

import torch
import torch.nn.functional as F

__all__ = ["BoxesLike", "paste_masks_in_image"]


class BoxesLike(Protocol):
    """What is read of a ``structures.Boxes`` here (layers sit below structures): its (N, 4) ``tensor``."""

    tensor: torch.Tensor


def paste_masks_in_image(masks: torch.Tensor, boxes: Union[torch.Tensor, BoxesLike], image_shape: Tuple[int, int],
                         threshold: float = 0.5) -> torch.Tensor:
    """Resample each M×M mask onto the pixels of its box, with the box's exact (float) corners.

    Pixel ``(y, x)`` (centre ``(y + 0.5, x + 0.5)``) takes the bilinear value of mask ``i`` at the
    position of that centre relative to box ``i`` (mask cells tile the box; values past the
    outer cell centres are interpolated towards zero, i.e. the mask is zero outside its box).
    Only the pixels of the box's bounding integer window are computed.

    Args:
        masks: (N, M, M) or (N, 1, M, M) probabilities in [0, 1].
        boxes: (N, 4) XYXY absolute pixel coordinates in the image, a tensor or ``Boxes``.
        image_shape: (H, W) of the image.
        threshold: ``>= 0``: return bool masks ``value > threshold``; ``< 0``: return the float values.

    Returns:
        (N, H, W) bool (or float32 with a negative ``threshold``).
    """
    if masks.dim() == 4:
        masks = masks[:, 0]
    height, width = image_shape
    out_dtype = torch.bool if threshold >= 0 else torch.float32
    result = torch.zeros((len(masks), height, width), dtype=out_dtype, device=masks.device)
    boxes = getattr(boxes, "tensor", boxes).to(torch.float32)  # Boxes or (N, 4) tensor
    for i, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes.tolist(), strict=True)):
        left, top = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
        right, bottom = min(int(math.ceil(x1)) + 1, width), min(int(math.ceil(y1)) + 1, height)
        if right <= left or bottom <= top:
            continue
        xs = (torch.arange(left, right, device=masks.device, dtype=torch.float32) + 0.5 - x0) / max(x1 - x0, 1e-6)
        ys = (torch.arange(top, bottom, device=masks.device, dtype=torch.float32) + 0.5 - y0) / max(y1 - y0, 1e-6)
        # [0, 1] box-relative -> grid_sample's [-1, 1] (align_corners=False: -1 / 1 are the mask's outer edges)
        grid = torch.stack(torch.meshgrid(ys * 2 - 1, xs * 2 - 1, indexing="ij")[::-1], dim=-1)
        values = F.grid_sample(mask[None, None].to(torch.float32), grid[None], align_corners=False)[0, 0]
        result[i, top:bottom, left:right] = values > threshold if threshold >= 0 else values
    return result
