"""The inference of each meta-architecture in the form an exported graph can hold: one image in,
a dict of tensors out, every size taken from tensor shapes (so one graph serves any image size)
and every data-dependent count (proposals, detections, 0 included) carried by tensor ops.

The model's own inference keeps Python ints, ``Instances`` and CPU fast paths (the sparse
multi-level RoIAlign, the fused mask predictor, NMS variants chosen by box count) that a tracer
would freeze at the sample image. The functions here run the same computations on the model's
own modules and weights with ops that ``torch.jit.trace``, ``torch.jit.script`` (its tracing of
the dense parts aside) and ``torch.onnx.export`` record exactly: torchvision's ``roi_align`` and
``nms`` (ONNX ``RoiAlign``, ``NonMaxSuppression``), ``nonzero`` for data-dependent selections.
tests/export checks them against the model's outputs.

Outputs are on the network input (the resized image before padding); bringing them to the
original image size (box scaling, mask pasting, semantic resizing, panoptic fusion) is the
runtime's part (:mod:`seg_research.export.runtime`), as it needs the original size.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align

from ..modeling.meta_arch import GeneralizedRCNN, PanopticFPN, SemanticSegmentor
from ..modeling.poolers import ROIPooler
from ..modeling.roi_heads import StandardROIHeads
from ..modeling.roi_heads.res5_roi_heads import Res5ROIHeads

__all__ = ["export_inference", "supported_architectures", "image_size_tensor", "preprocess"]

#: Detections narrower or shorter than this (pixels, after clipping) are dropped, as in
#: ``fast_rcnn_inference_single_image`` (and torchvision).
MIN_DETECTION_SIDE = 1e-2


def supported_architectures() -> Tuple[type, ...]:
    """The meta-architectures :func:`export_inference` handles (subclasses included)."""
    return (PanopticFPN, GeneralizedRCNN, SemanticSegmentor)


def image_size_tensor(image: torch.Tensor) -> torch.Tensor:
    """int64 (2,) ``(height, width)`` of a (..., H, W) tensor, recorded as a function of its shape
    by ``torch.jit.trace`` and ``torch.export`` alike (``torch.tensor(image.shape)`` is a constant
    to the tracer)."""
    height, width = image.shape[-2:]
    return torch.stack([torch.full((), height, dtype=torch.int64), torch.full((), width, dtype=torch.int64)])


def preprocess(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """``model.preprocess_image`` for one (C, H, W) float image (0-255, the model's channel
    order): normalized and padded at the bottom/right with 0 to the backbone's size
    divisibility; (1, C, H_pad, W_pad), channels-last when the model uses it on the CPU."""
    x = (image.to(torch.float32) - model.pixel_mean) / model.pixel_std
    divisor = int(model.padding_constraints.get("size_divisibility", 0))
    if divisor > 1:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, (-width) % divisor, 0, (-height) % divisor))
    x = x[None]
    if getattr(model, "channels_last_on_cpu", False) and x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _clip(boxes: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """XYXY boxes (..., 4) clamped to [0, width] x [0, height] of ``size`` (int64 (2,) (h, w))."""
    limits = size.flip(0).repeat(2).to(boxes.dtype)
    return torch.minimum(boxes.clamp(min=0), limits)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS within each group (torchvision's coordinate trick: each group is shifted past the
    others, so one NMS never compares boxes of two groups); indices by decreasing score. No
    branch on the box count: the zero appended to the coordinates makes ``max`` defined for 0
    boxes and changes nothing for boxes clipped to the image (all >= 0)."""
    max_coordinate = torch.cat([boxes.flatten(), boxes.new_zeros(1)]).max()
    offsets = groups.to(boxes.dtype) * (max_coordinate + 1)
    return nms(boxes + offsets[:, None], scores, threshold)


def _pool(pooler: ROIPooler, features: Sequence[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
    """:class:`ROIPooler` of one image's (R, 4) boxes with torchvision's ``roi_align`` per level;
    (R, C, Ph, Pw) in the order of ``boxes``."""
    rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1).to(torch.float32)
    if len(pooler.scales) == 1:
        return roi_align(features[0], rois, pooler.output_size, pooler.scales[0], pooler.sampling_ratio,
                         pooler.aligned)
    levels = pooler.level_mapper([boxes])
    pooled, order = [], []
    for level, (feature, scale) in enumerate(zip(features, pooler.scales, strict=True)):
        index = torch.nonzero(levels == level).flatten()
        pooled.append(roi_align(feature, rois[index], pooler.output_size, scale, pooler.sampling_ratio,
                                pooler.aligned))
        order.append(index)
    return torch.cat(pooled)[torch.argsort(torch.cat(order))]


def _proposals(rpn: nn.Module, features: Dict[str, torch.Tensor], size: torch.Tensor) -> torch.Tensor:
    """The RPN's inference (``RPN.forward`` + ``find_top_rpn_proposals``) for one image: float
    (R, 4) proposals by decreasing objectness.

    Each level's logits get ``pre_nms_topk`` entries of -inf appended, so ``topk(pre_nms_topk)``
    is valid on a level of any size and, where the level has fewer anchors, the filler is dropped
    by the finiteness test as the model drops non-finite boxes."""
    feature_list = [features[f] for f in rpn.in_features]
    anchors = rpn.anchor_generator.grid_anchors(feature_list)
    logits, deltas = rpn.rpn_head(feature_list)
    topk = rpn.pre_nms_topk[False]
    boxes, scores, levels = [], [], []
    for level, (anchors_l, logits_l, deltas_l) in enumerate(zip(anchors, logits, deltas, strict=True)):
        logits_l = logits_l[0].permute(1, 2, 0).reshape(-1)
        height, width = deltas_l.shape[-2:]
        deltas_l = deltas_l[0].view(-1, 4, height, width).permute(2, 3, 0, 1).reshape(-1, 4)
        decoded = rpn.box2box_transform.apply_deltas(deltas_l, anchors_l)
        logits_l = torch.cat([logits_l, logits_l.new_full((topk,), float("-inf"))])
        decoded = torch.cat([decoded, decoded.new_zeros(topk, 4)])
        top_scores, top_index = logits_l.topk(topk)
        boxes.append(decoded[top_index])
        scores.append(top_scores)
        levels.append(torch.full((topk,), level, dtype=torch.int64, device=top_scores.device))
    boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
    keep = torch.nonzero(torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)).flatten()
    boxes, scores, levels = _clip(boxes[keep], size), scores[keep], levels[keep]
    sides = boxes[:, 2:] - boxes[:, :2]
    keep = torch.nonzero((sides > rpn.min_box_size).all(dim=1)).flatten()
    boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
    keep = _batched_nms(boxes, scores, levels, rpn.nms_thresh)[: rpn.post_nms_topk[False]]
    return boxes[keep]


def _detections(predictor: nn.Module, box_features: torch.Tensor, proposals: torch.Tensor, size: torch.Tensor,
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``FastRCNNOutputLayers.inference`` for one image: boxes (D, 4), scores (D,), classes (D,)
    int64, by decreasing score (``fast_rcnn_inference_single_image``)."""
    logits, deltas = predictor(box_features)
    scores = F.softmax(logits, dim=-1)
    boxes = predictor.box2box_transform.apply_deltas(deltas, proposals)
    valid = torch.nonzero(torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)).flatten()
    boxes, scores = boxes[valid], scores[valid, :-1]
    num_classes = scores.shape[1]
    boxes = _clip(boxes.reshape(boxes.shape[0], -1, 4), size).expand(-1, num_classes, -1)
    candidates = torch.nonzero(scores > predictor.test_score_thresh)
    boxes = boxes[candidates[:, 0], candidates[:, 1]]
    scores = scores[candidates[:, 0], candidates[:, 1]]
    classes = candidates[:, 1]
    sides = boxes[:, 2:] - boxes[:, :2]
    keep = torch.nonzero((sides >= MIN_DETECTION_SIDE).all(dim=1)).flatten()
    keep = keep[_batched_nms(boxes[keep], scores[keep], classes[keep], predictor.test_nms_thresh)]
    if predictor.test_topk_per_image >= 0:
        keep = keep[: predictor.test_topk_per_image]
    return boxes[keep], scores[keep], classes[keep]


def _mask_probabilities(mask_head: nn.Module, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``mask_rcnn_inference``: float (D, M, M) probabilities of each detection's class, from the
    head's unfused layers (the fused class-logits path loops over ROI blocks in Python)."""
    logits = mask_head.layers(features)
    if logits.shape[1] > 1:
        index = classes.view(-1, 1, 1, 1).expand(-1, 1, logits.shape[2], logits.shape[3])
        logits = logits.gather(1, index)
    return logits[:, 0].sigmoid()


def _roi_heads(heads: nn.Module, features: Dict[str, torch.Tensor], proposals: torch.Tensor,
               size: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Detections (and masks) of one image from StandardROIHeads or Res5ROIHeads."""
    if isinstance(heads, StandardROIHeads):
        pooled = _pool(heads.box_pooler, [features[f] for f in heads.box_in_features], proposals)
        boxes, scores, classes = _detections(heads.box_predictor, heads.box_head(pooled), proposals, size)
    elif isinstance(heads, Res5ROIHeads):
        pooled = heads.res5(_pool(heads.pooler, [features[f] for f in heads.in_features], proposals))
        boxes, scores, classes = _detections(heads.box_predictor, pooled.mean(dim=(2, 3)), proposals, size)
    else:
        raise NotImplementedError(f"Export supports StandardROIHeads and Res5ROIHeads, not {type(heads).__name__}.")
    outputs = {"pred_boxes": boxes, "scores": scores, "pred_classes": classes}
    if heads.mask_on:
        if isinstance(heads, StandardROIHeads):
            mask_features = _pool(heads.mask_pooler, [features[f] for f in heads.mask_in_features], boxes)
        else:
            mask_features = heads.res5(_pool(heads.pooler, [features[f] for f in heads.in_features], boxes))
        outputs["pred_masks"] = _mask_probabilities(heads.mask_head, mask_features, classes)
    return outputs


def _semantic_logits(head: nn.Module, features: Dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """(C, h, w) logits cropped to the unpadded input (``sem_seg_postprocess`` before its resize)."""
    logits, _ = head(features)
    height, width = image.shape[-2:]
    return logits[0, :, :height, :width]


def export_inference(model: nn.Module, batched_inputs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The exportable inference of ``model`` on one input ``[{"image": (C, H, W) float 0-255}]``
    (the resized image, in the model's channel order); ``TracingAdapter``'s ``inference_func``.

    Returns (all on the H x W input, before padding):
        SemanticSegmentor: ``{"sem_seg": float (C, H, W) logits}``.
        GeneralizedRCNN: ``{"instances": {"pred_boxes": float (D, 4) XYXY, "scores": (D,),
        "pred_classes": int64 (D,), ["pred_masks": float (D, M, M) box-relative probabilities]}}``,
        by decreasing score; D may be 0.
        PanopticFPN: both.

    Raises:
        ValueError: not exactly one input; NotImplementedError: another meta-architecture.
    """
    if len(batched_inputs) != 1:
        raise ValueError(f"export_inference runs one image (a graph with a fixed batch of 1), got {len(batched_inputs)}.")
    if not isinstance(model, supported_architectures()):
        raise NotImplementedError(
            f"Export supports {[c.__name__ for c in supported_architectures()]}, not {type(model).__name__}: "
            "add its inference to seg_research/export/graphs.py.")
    image = batched_inputs[0]["image"]
    size = image_size_tensor(image)
    features = model.backbone(preprocess(model, image))
    outputs: Dict[str, Any] = {}
    if isinstance(model, (SemanticSegmentor, PanopticFPN)):
        outputs["sem_seg"] = _semantic_logits(model.sem_seg_head, features, image)
    if isinstance(model, GeneralizedRCNN):
        proposals = _proposals(model.proposal_generator, features, size)
        outputs["instances"] = _roi_heads(model.roi_heads, features, proposals, size)
    return outputs
