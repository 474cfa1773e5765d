"""Fast R-CNN outputs: class scores and class-specific box deltas per ROI, their losses, and
inference (score threshold, per-class NMS, top detections per image).

Class ids are 0-based contiguous; column K of the (R, K + 1) scores is background.
Boxes are XYXY absolute pixels of the network input (before ``detector_postprocess``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

from ...config import configurable
from ...layers import ShapeSpec
from ...structures import Boxes, Instances
from ...utils.events import current_event_storage
from ..box_regression import Box2BoxTransform, box_regression_loss

__all__ = ["FastRCNNOutputLayers", "fast_rcnn_inference", "fast_rcnn_inference_single_image"]

# Detections narrower or shorter than this (pixels, after clipping) are dropped, as torchvision does.
_MIN_DETECTION_SIDE = 1e-2


def _put_classification_stats(logits: torch.Tensor, gt_classes: torch.Tensor, prefix: str = "fast_rcnn") -> None:
    """Inside an ``EventStorage``, put detectron2's classification diagnostics of the sampled ROIs.

    With ``pred = logits.argmax(1)``, background class K = ``logits.shape[1] - 1`` and the
    foreground ROIs those whose ``gt_classes`` is in 0..K-1:

    - ``<prefix>/cls_accuracy``: ROIs with ``pred == gt_classes`` / all ROIs;
    - ``<prefix>/fg_cls_accuracy``: foreground ROIs with ``pred == gt_classes`` / foreground ROIs;
    - ``<prefix>/false_negative``: foreground ROIs with ``pred == K`` / foreground ROIs.

    Nothing is put without ROIs; the two foreground ratios are not put without foreground ROIs.

    Args:
        logits: float (R, K + 1) class logits (or scores; only their argmax is used).
        gt_classes: int64 (R,) in 0..K.
    """
    storage = current_event_storage()
    if storage is None or gt_classes.numel() == 0:
        return
    background = logits.shape[1] - 1
    pred = logits.detach().argmax(dim=1)
    correct = pred == gt_classes
    foreground = (gt_classes >= 0) & (gt_classes < background)
    num_correct, num_fg, num_fg_correct, num_fg_as_bg = torch.stack([  # one sync for the four counts
        correct.count_nonzero(), foreground.count_nonzero(), (correct & foreground).count_nonzero(),
        (foreground & (pred == background)).count_nonzero(),
    ]).tolist()
    storage.put_scalar(f"{prefix}/cls_accuracy", num_correct / gt_classes.numel())
    if num_fg > 0:
        storage.put_scalar(f"{prefix}/fg_cls_accuracy", num_fg_correct / num_fg)
        storage.put_scalar(f"{prefix}/false_negative", num_fg_as_bg / num_fg)


def fast_rcnn_inference_single_image(
    boxes: torch.Tensor, scores: torch.Tensor, image_shape: Tuple[int, int], score_thresh: float,
    nms_thresh: float, topk_per_image: int,
) -> Tuple[Instances, torch.Tensor]:
    """Detections of one image.

    Args:
        boxes: float (R, K * 4) class-specific (or (R, 4) class-agnostic) boxes.
        scores: float (R, K + 1) class probabilities, background last.
        image_shape: (h, w) the boxes are clipped to.
        score_thresh: keep (box, class) pairs scoring strictly above this.
        nms_thresh: IoU of the NMS run separately for each class.
        topk_per_image: keep the best this many (all if negative).

    Returns:
        Instances with ``pred_boxes`` (Boxes), ``scores`` (float (D,)), ``pred_classes``
        (int64 (D,), 0..K-1), sorted by decreasing score; and int64 (D,) index of the ROI each
        detection comes from.
    """
    valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    roi_index = torch.arange(len(boxes), device=boxes.device)
    if not valid.all():
        boxes, scores, roi_index = boxes[valid], scores[valid], roi_index[valid]
    scores = scores[:, :-1]
    num_rois, num_classes = scores.shape
    boxes = clip_boxes_to_image(boxes.reshape(num_rois, boxes.shape[1] // 4, 4), image_shape)  # also 0 ROIs
    boxes = boxes.expand(num_rois, num_classes, 4)  # class-agnostic: one box for every class
    candidates = (scores > score_thresh).nonzero()  # (D, 2): ROI, class; ROI-major order
    boxes = boxes[candidates[:, 0], candidates[:, 1]]
    scores = scores[candidates[:, 0], candidates[:, 1]]
    keep = remove_small_boxes(boxes, _MIN_DETECTION_SIDE)
    keep = keep[batched_nms(boxes[keep], scores[keep], candidates[keep, 1], nms_thresh)]
    if topk_per_image >= 0:
        keep = keep[:topk_per_image]
    result = Instances(image_shape, pred_boxes=Boxes(boxes[keep]), scores=scores[keep],
                       pred_classes=candidates[keep, 1])
    return result, roi_index[candidates[keep, 0]]


def fast_rcnn_inference(
    boxes: List[torch.Tensor], scores: List[torch.Tensor], image_shapes: List[Tuple[int, int]],
    score_thresh: float, nms_thresh: float, topk_per_image: int,
) -> Tuple[List[Instances], List[torch.Tensor]]:
    """:func:`fast_rcnn_inference_single_image` for each image (lists of per-image tensors)."""
    results = [
        fast_rcnn_inference_single_image(b, s, shape, score_thresh, nms_thresh, topk_per_image)
        for b, s, shape in zip(boxes, scores, image_shapes, strict=True)
    ]
    return [r[0] for r in results], [r[1] for r in results]


class FastRCNNOutputLayers(nn.Module):
    """Two linear layers on the box head's per-ROI features: ``cls_score`` -> (R, K + 1) logits
    and ``bbox_pred`` -> (R, K * 4) deltas (R, 4 when class-agnostic).

    Losses: ``loss_cls`` (cross-entropy, mean over sampled ROIs) and ``loss_box_reg`` (regression
    of the ground-truth class's deltas of foreground ROIs, summed, divided by the number of
    sampled ROIs).
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        box2box_transform: Box2BoxTransform,
        num_classes: int,
        test_score_thresh: float = 0.0,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        cls_agnostic_bbox_reg: bool = False,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: Optional[Dict[str, float]] = None,
    ) -> None:
        """
        Args:
            input_shape: the box head's output shape (channels, optionally height/width).
            box2box_transform: proposal -> box coding, e.g. weights (10, 10, 5, 5).
            num_classes: K, foreground classes.
            test_score_thresh, test_nms_thresh, test_topk_per_image: see :func:`fast_rcnn_inference`.
            cls_agnostic_bbox_reg: one box per ROI instead of one per class.
            smooth_l1_beta, box_reg_loss_type: see :func:`box_regression_loss`.
            loss_weight: ``{"loss_cls": w, "loss_box_reg": w}`` (default 1 each).
        """
        super().__init__()
        input_size = input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)
        self.cls_score = nn.Linear(input_size, num_classes + 1)
        self.bbox_pred = nn.Linear(input_size, (1 if cls_agnostic_bbox_reg else num_classes) * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        self.box2box_transform = box2box_transform
        self.num_classes = num_classes
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk_per_image = test_topk_per_image
        self.smooth_l1_beta = smooth_l1_beta
        self.box_reg_loss_type = box_reg_loss_type
        self.loss_weight = {"loss_cls": 1.0, "loss_box_reg": 1.0, **(loss_weight or {})}

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> dict:
        head = cfg.MODEL.ROI_BOX_HEAD
        return {
            "input_shape": input_shape,
            "box2box_transform": Box2BoxTransform(head.BBOX_REG_WEIGHTS),
            "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "test_score_thresh": cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
            "test_nms_thresh": cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            "test_topk_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "cls_agnostic_bbox_reg": head.CLS_AGNOSTIC_BBOX_REG,
            "smooth_l1_beta": head.SMOOTH_L1_BETA,
            "box_reg_loss_type": head.BBOX_REG_LOSS_TYPE,
            "loss_weight": {"loss_box_reg": head.BBOX_REG_LOSS_WEIGHT},
        }

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(R, D) (or (R, C, S, S)) features -> (R, K + 1) class logits, (R, K * 4) deltas."""
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)

    def losses(self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]) -> Dict[str, torch.Tensor]:
        """
        Args:
            predictions: the output of :meth:`forward` for the ROIs of ``proposals``.
            proposals: per image, sampled ROIs with ``proposal_boxes``, ``gt_classes`` (int64,
                K for background) and ``gt_boxes``.

        Inside an ``EventStorage`` (a trainer), also puts ``fast_rcnn/cls_accuracy``,
        ``fast_rcnn/fg_cls_accuracy`` and ``fast_rcnn/false_negative`` (see
        :func:`_put_classification_stats`).
        """
        scores, deltas = predictions
        gt_classes = torch.cat([p.gt_classes for p in proposals])
        _put_classification_stats(scores, gt_classes)
        num_rois = max(len(gt_classes), 1)
        loss_cls = F.cross_entropy(scores, gt_classes, reduction="sum") / num_rois
        foreground = ((gt_classes >= 0) & (gt_classes < self.num_classes)).nonzero().squeeze(1)
        if deltas.shape[1] == 4:  # class-agnostic
            fg_deltas = deltas[foreground]
        else:
            fg_deltas = deltas.view(len(deltas), -1, 4)[foreground, gt_classes[foreground]]
        proposal_boxes = torch.cat([p.proposal_boxes.tensor for p in proposals])[foreground]
        gt_boxes = torch.cat([p.gt_boxes.tensor for p in proposals])[foreground]
        loss_box_reg = box_regression_loss(self.box2box_transform, proposal_boxes, fg_deltas, gt_boxes,
                                           self.box_reg_loss_type, self.smooth_l1_beta) / num_rois
        return {"loss_cls": loss_cls * self.loss_weight["loss_cls"],
                "loss_box_reg": loss_box_reg * self.loss_weight["loss_box_reg"]}

    def predict_boxes(self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]) -> List[torch.Tensor]:
        """Per image, float (Ri, K * 4) (or (Ri, 4)) decoded boxes of its proposals."""
        _, deltas = predictions
        boxes = torch.cat([p.proposal_boxes.tensor for p in proposals])
        decoded = self.box2box_transform.apply_deltas(deltas, boxes)
        return list(decoded.split([len(p) for p in proposals]))

    def predict_probs(self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]) -> List[torch.Tensor]:
        """Per image, float (Ri, K + 1) softmax class probabilities."""
        scores, _ = predictions
        return list(F.softmax(scores, dim=-1).split([len(p) for p in proposals]))

    def inference(
        self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]
    ) -> Tuple[List[Instances], List[torch.Tensor]]:
        """Detections per image and the index of the proposal each comes from (:func:`fast_rcnn_inference`)."""
        return fast_rcnn_inference(
            self.predict_boxes(predictions, proposals), self.predict_probs(predictions, proposals),
            [p.image_size for p in proposals], self.test_score_thresh, self.test_nms_thresh, self.test_topk_per_image,
        )
