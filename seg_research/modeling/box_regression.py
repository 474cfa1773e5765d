"""Box coding (torchvision's ``BoxCoder``) and the box regression losses of RPN and Fast R-CNN.

Boxes are XYXY absolute pixels; deltas are ``(dx, dy, dw, dh)`` scaled by ``weights``:
``dx = wx * (x_target_ctr - x_src_ctr) / w_src``, ``dw = ww * log(w_target / w_src)``.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import generalized_box_iou_loss

from ..utils.absent import ONE_STAGE, ROTATED, absent_names

__all__ = ["Box2BoxTransform", "box_regression_loss", "BOX_REG_LOSS_TYPES"]

#: dw and dh are clamped to this before ``exp`` (a box grows at most 1000/16 times).
DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)
BOX_REG_LOSS_TYPES = ("smooth_l1", "giou")


class Box2BoxTransform:
    """Encode boxes as weighted deltas from reference boxes and decode them back."""

    def __init__(self, weights: Tuple[float, float, float, float], scale_clamp: float = DEFAULT_SCALE_CLAMP) -> None:
        """
        Args:
            weights: (wx, wy, ww, wh) multiplying the deltas, e.g. (1, 1, 1, 1) for the RPN and
                (10, 10, 5, 5) for Fast R-CNN.
            scale_clamp: upper bound of dw and dh when decoding.
        """
        self.weights = tuple(float(w) for w in weights)
        self.scale_clamp = scale_clamp
        self._coder = BoxCoder(self.weights, bbox_xform_clip=scale_clamp)

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        """Float (N, 4) deltas turning ``src_boxes`` (N, 4) into ``target_boxes`` (N, 4)."""
        return self._coder.encode_single(target_boxes, src_boxes)

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Apply (N, 4k) deltas (k boxes per reference, e.g. one per class) to (N, 4) boxes.

        Returns:
            (N, 4k) decoded boxes, XYXY absolute pixels, not clipped.
        """
        return self._coder.decode_single(deltas, boxes)


def box_regression_loss(
    box2box_transform: Box2BoxTransform,
    src_boxes: torch.Tensor,
    pred_deltas: torch.Tensor,
    gt_boxes: torch.Tensor,
    loss_type: str = "smooth_l1",
    smooth_l1_beta: float = 0.0,
) -> torch.Tensor:
    """Summed regression loss of the foreground boxes (the caller normalizes it).

    Args:
        src_boxes: (R, 4) anchors or proposals the deltas apply to.
        pred_deltas: (R, 4) predicted deltas.
        gt_boxes: (R, 4) matched ground-truth boxes.
        loss_type: "smooth_l1" on the deltas (``smooth_l1_beta`` 0 is L1) or "giou" on the decoded boxes.

    Returns:
        A scalar tensor (0 with a gradient path when R is 0).
    """
    if loss_type == "smooth_l1":
        targets = box2box_transform.get_deltas(src_boxes, gt_boxes)
        return F.smooth_l1_loss(pred_deltas, targets, beta=smooth_l1_beta, reduction="sum")
    if loss_type == "giou":
        pred_boxes = box2box_transform.apply_deltas(pred_deltas, src_boxes)
        return generalized_box_iou_loss(pred_boxes, gt_boxes, reduction="sum")
    raise ValueError(f"Unknown box regression loss type '{loss_type}'; use one of {BOX_REG_LOSS_TYPES}.")


__getattr__ = absent_names(__name__, {"Box2BoxTransformRotated": ROTATED, "Box2BoxTransformLinear": ONE_STAGE})
