"""Map network outputs on the padded, resized input back to the original image size."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from ..layers.mask_ops import paste_masks_in_image
from ..structures import Instances

__all__ = ["detector_postprocess", "sem_seg_postprocess"]


def detector_postprocess(results: Instances, output_height: int, output_width: int,
                         mask_threshold: float = 0.5) -> Instances:
    """Rescale detections (or proposals) from the network input size to the record's original size.

    Args:
        results: detections on an input of size ``results.image_size`` (before padding), with
            ``pred_boxes`` and optionally ``pred_masks`` (D, 1, M, M) box-relative probabilities;
            or proposals with ``proposal_boxes`` (ProposalNetwork's output).
        output_height, output_width: the original image size.
        mask_threshold: probability above which a pasted mask pixel is foreground.

    Returns:
        Instances of size (output_height, output_width): boxes scaled and clipped (empty ones
        dropped); ``pred_masks`` bool (D, output_height, output_width), pasted with
        :func:`~seg_research.layers.paste_masks_in_image` (exact box corners, as detectron2).
    """
    scale_x = output_width / results.image_size[1]
    scale_y = output_height / results.image_size[0]
    output = Instances((output_height, output_width), **results.get_fields())
    box_field = "pred_boxes" if output.has("pred_boxes") else "proposal_boxes"
    boxes = output.get(box_field).clone()
    boxes.scale(scale_x, scale_y)
    boxes.clip(output.image_size)
    output.set(box_field, boxes)
    output = output[boxes.nonempty()]
    if output.has("pred_masks"):
        output.pred_masks = paste_masks_in_image(output.pred_masks, output.pred_boxes.tensor, output.image_size,
                                                 threshold=mask_threshold)
    return output


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
