"""Map network outputs on the padded, resized input back to the original image size."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ["sem_seg_postprocess"]


def sem_seg_postprocess(result: torch.Tensor, img_size: Tuple[int, int], output_height: int, output_width: int) -> torch.Tensor:
    """Crop per-pixel logits to the unpadded input and resize them to the original size.

    Args:
        result: (C, H, W) logits on the padded network input.
        img_size: (h, w) of the input image before padding (after resizing by the mapper).
        output_height, output_width: the record's original ``height``/``width``.
    Returns:
        (C, output_height, output_width) logits, bilinearly resized.
    """
    result = result[:, : img_size[0], : img_size[1]]
    return F.interpolate(result[None], size=(output_height, output_width), mode="bilinear", align_corners=False)[0]
