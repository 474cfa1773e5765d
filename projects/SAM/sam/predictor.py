"""Prompt SAM with boxes and points; masks come back as the library's ``Instances``."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from seg_research.structures import BitMasks, Boxes, Instances

from .build import import_segment_anything

__all__ = ["SamInstancePredictor"]


class SamInstancePredictor:
    """segment-anything's ``SamPredictor`` on one image at a time, with prompts and results in the
    library's conventions (XYXY absolute boxes, (x, y) absolute points, ``Instances``)::

        predictor = SamInstancePredictor(build_sam("vit_b"))
        instances = predictor(image_rgb, boxes=detections.pred_boxes.tensor)

    Args:
        sam: a segment-anything ``Sam`` (:func:`~.build.build_sam`, or one built from its modules).
        multimask: ask SAM for 3 masks per prompt and keep the one of highest predicted IoU
            (helps single-point prompts); False: SAM's single mask.
    """

    def __init__(self, sam: nn.Module, multimask: bool = False) -> None:
        self._predictor = import_segment_anything().SamPredictor(sam)
        self.multimask = multimask

    def __call__(self, image: np.ndarray, boxes: Optional[torch.Tensor] = None,
                 points: Optional[torch.Tensor] = None, point_labels: Optional[torch.Tensor] = None) -> Instances:
        """
        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: float (N, 4) XYXY absolute pixels, one prompt each; or None.
            points: float (N, P, 2) (x, y) absolute pixels, P points per prompt; or None.
            point_labels: (N, P): 1 foreground, 0 background point; needed with ``points``.

        Returns:
            ``Instances`` of size (H, W), one per prompt: ``pred_masks`` bool (N, H, W),
            ``scores`` (N,) SAM's predicted IoU, ``pred_boxes`` the prompt boxes (or the masks'
            tight boxes without box prompts).
        """
        if boxes is None and points is None:
            raise ValueError("SamInstancePredictor needs box and/or point prompts.")
        if points is not None and (point_labels is None or point_labels.shape != points.shape[:2]):
            raise ValueError("point_labels must be given with points, of shape (N, P) for points (N, P, 2).")
        if boxes is not None and points is not None and len(boxes) != len(points):
            raise ValueError(f"{len(boxes)} box prompts and {len(points)} point prompts: give one of each per object.")
        height, width = image.shape[:2]
        count = len(boxes) if boxes is not None else len(points)
        result = Instances((height, width))
        if count == 0:
            result.pred_masks = torch.zeros(0, height, width, dtype=torch.bool)
            result.scores = torch.zeros(0)
            result.pred_boxes = Boxes(torch.zeros(0, 4))
            return result
        predictor = self._predictor
        predictor.set_image(np.ascontiguousarray(image), image_format="RGB")
        device = predictor.device
        size = predictor.original_size
        box_in = None if boxes is None else predictor.transform.apply_boxes_torch(
            torch.as_tensor(boxes, dtype=torch.float32, device=device), size)
        point_in = None if points is None else predictor.transform.apply_coords_torch(
            torch.as_tensor(points, dtype=torch.float32, device=device), size)
        label_in = None if points is None else torch.as_tensor(point_labels, dtype=torch.int64, device=device)
        with torch.no_grad():
            masks, iou, _ = predictor.predict_torch(point_in, label_in, box_in, multimask_output=self.multimask)
        best = iou.argmax(dim=1)
        keep = torch.arange(count, device=device)
        result.pred_masks = masks[keep, best].cpu()
        result.scores = iou[keep, best].float().cpu()
        if boxes is not None:
            result.pred_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32).cpu())
        else:
            result.pred_boxes = BitMasks(result.pred_masks).get_bounding_boxes()
        predictor.reset_image()
        return result

