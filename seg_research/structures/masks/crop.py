"""Instance masks cropped to their boxes' frames: the (N, M, M) targets a mask head is trained on, from
polygons (rasterized inside each box) or from image-sized bitmaps (RoIAlign)."""
from __future__ import annotations

from typing import List

import numpy as np
import pycocotools.mask as mask_util
import torch
from torchvision.ops import roi_align

from .polygons import polygons_to_rle

__all__ = ["polygons_in_boxes", "bitmasks_in_boxes"]

# Smallest box side (pixels) used when mapping polygons into a box frame, so that
# degenerate boxes do not divide by zero.
_MIN_BOX_SIDE = 0.1


def polygons_in_boxes(instances: List[List[np.ndarray]], boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
    """Rasterize the polygons of instance ``i`` inside ``boxes[i]`` on an M x M grid.

    Args:
        instances: N lists (one per instance) of validated flat float64 polygons, absolute pixels.
        boxes: float (N, 4) XYXY absolute pixels; box ``(x0, y0, x1, y1)`` is mapped onto
            ``[0, M] x [0, M]``, sides shorter than 0.1 px counting as 0.1 px.
        mask_size: M.

    Returns:
        float32 (N, M, M) tensor of 0/1 on ``boxes.device``.
    """
    box_array = boxes.detach().to("cpu", torch.float64).numpy()
    flat = [p for polygons in instances for p in polygons]
    if not flat:
        return torch.zeros(len(instances), mask_size, mask_size, dtype=torch.float32, device=boxes.device)
    lengths = np.array([p.size for p in flat])
    owner_of_polygon = np.repeat(np.arange(len(instances)), [len(polygons) for polygons in instances])
    owner_of_point = np.repeat(owner_of_polygon, lengths // 2)
    origin = box_array[owner_of_point, :2]
    side = np.maximum(box_array[owner_of_point, 2:] - origin, _MIN_BOX_SIDE)
    points = (np.concatenate(flat).reshape(-1, 2) - origin) * (mask_size / side)
    transformed = np.split(points.reshape(-1), np.cumsum(lengths)[:-1])
    masks = np.zeros((len(instances), mask_size, mask_size), dtype=bool)
    start = 0
    for i, polygons in enumerate(instances):
        if polygons:
            in_box = transformed[start : start + len(polygons)]
            masks[i] = mask_util.decode(polygons_to_rle(in_box, mask_size, mask_size))
        start += len(polygons)
    return torch.from_numpy(masks).to(device=boxes.device, dtype=torch.float32)


def bitmasks_in_boxes(masks: torch.Tensor, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
    """Crop mask ``i`` to ``boxes[i]`` and resample it on an M x M grid (RoIAlign, aligned=True).

    Args:
        masks: bool (N, H, W) image-sized masks.
        boxes: float (N, 4) XYXY absolute pixels.
        mask_size: M.

    Returns:
        float32 (N, M, M) tensor in [0, 1] (the covered fraction of each cell, bilinearly
        sampled) on ``boxes.device``.
    """
    boxes = boxes.to(torch.float32)
    batch_index = torch.arange(len(boxes), device=boxes.device, dtype=torch.float32)[:, None]
    rois = torch.cat([batch_index, boxes], dim=1)
    masks = masks.to(device=boxes.device, dtype=torch.float32)[:, None]
    resized = roi_align(masks, rois, (mask_size, mask_size), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    return resized.squeeze(1)
