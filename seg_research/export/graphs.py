"""The inference of each meta-architecture in the form an exported graph can hold: one image in,
a dict of tensors out, every size taken from tensor shapes (so one graph serves any image size)
and every data-dependent count (proposals, detections, 0 included) carried by tensor ops.

The model's own inference keeps Python ints, ``Instances`` and CPU fast paths (the sparse
multi-level RoIAlign, the fused mask predictor, NMS variants chosen by box count) that a tracer
would freeze at the sample image. The functions here run the same computations on the model's
own modules and weights with ops that ``torch.jit.trace`` and ``torch.onnx.export`` record
exactly: torchvision's ``roi_align`` and ``nms`` (ONNX ``RoiAlign``, ``NonMaxSuppression``),
``nonzero`` for data-dependent selections. The selection steps are tensor-only functions that
``torch.jit.script`` also compiles (:mod:`.scripting`). tests/export checks them against the
model's outputs.

Outputs are on the network input (the resized image before padding); bringing them to the
original image size (box scaling, mask pasting, semantic resizing, panoptic fusion) is the
runtime's part (:mod:`seg_research.export.runtime`), as it needs the original size.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align

from ..modeling.meta_arch import GeneralizedRCNN, PanopticFPN, SemanticSegmentor
from ..modeling.poolers import ROIPooler
from ..modeling.roi_heads import StandardROIHeads
from ..modeling.roi_heads.res5_roi_heads import Res5ROIHeads

__all__ = ["export_inference", "supported_architectures", "register_architecture", "registered_architecture",
           "image_size_tensor", "preprocess"]

#: Detections narrower or shorter than this (pixels, after clipping) are dropped, as in
#: ``fast_rcnn_inference_single_image`` (and torchvision).
MIN_DETECTION_SIDE = 1e-2


#: Meta-architectures defined above this package (seg_research.projects, user code), which this
#: package must not import: class -> (its exportable inference, its runtime metadata). See
#: :func:`register_architecture`.
_REGISTERED: Dict[type, Tuple[Callable[[nn.Module, torch.Tensor], Dict[str, Any]],
                              Optional[Callable[[nn.Module], Dict[str, Any]]]]] = {}


def register_architecture(architecture: type, inference: Callable[[nn.Module, torch.Tensor], Dict[str, Any]],
                          metadata: Optional[Callable[[nn.Module], Dict[str, Any]]] = None) -> None:
    """Make :func:`export_inference` (and so ``export_model``, tracing, scripting and ONNX) handle
    ``architecture`` and its subclasses: the module defining a meta-architecture registers it, as it
    registers the class in ``META_ARCH_REGISTRY`` (``seg_research.projects.mask2former.export``).

    Args:
        inference: ``(model, image) -> outputs``: one float32 (C, H, W) resized image (0-255, the
            model's channel order) to a dict of tensors (or of dicts of tensors), every size taken
            from tensor shapes and nothing data-dependent in Python, so that ``torch.export`` and
            ``torch.jit.trace`` record it for any image size.
        metadata: ``model -> dict`` merged into the export's ``runtime.json`` (what
            :mod:`.runtime` needs to post-process those outputs).
    """
    _REGISTERED[architecture] = (inference, metadata)


def registered_architecture(model: nn.Module) -> Optional[Tuple[Callable, Optional[Callable]]]:
    """The (inference, metadata) registered for ``model``'s class or its nearest registered base; None if none."""
    for cls in type(model).__mro__:
        if cls in _REGISTERED:
            return _REGISTERED[cls]
    return None


def supported_architectures() -> Tuple[type, ...]:
    """The meta-architectures :func:`export_inference` handles (subclasses included): the library's
    and those registered (:func:`register_architecture`)."""
    return (PanopticFPN, GeneralizedRCNN, SemanticSegmentor, *_REGISTERED)


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


# The functions below take tensors and plain values only, so that ``torch.jit.script`` compiles them
# for the scripted export (:mod:`.scripting`) as they are; the glue that calls the model's modules
# (``_proposals``, ``_roi_heads``, ``export_inference``) is the traced and ONNX path's.


def clip_boxes(boxes: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """XYXY boxes (..., 4) clamped to [0, width] x [0, height] of ``size`` (int64 (2,) (h, w))."""
    limits = size.flip(0).repeat(2).to(boxes.dtype)
    return torch.minimum(boxes.clamp(min=0), limits)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS within each group (torchvision's coordinate trick: each group is shifted past the
    others, so one NMS never compares boxes of two groups); indices by decreasing score. No
    branch on the box count: the zero appended to the coordinates makes ``max`` defined for 0
    boxes and changes nothing for boxes clipped to the image (all >= 0)."""
    max_coordinate = torch.cat([boxes.flatten(), boxes.new_zeros(1)]).max()
    offsets = groups.to(boxes.dtype) * (max_coordinate + 1)
    return nms(boxes + offsets[:, None], scores, threshold)


def pool_levels(features: List[torch.Tensor], boxes: torch.Tensor, levels: torch.Tensor, output_size: List[int],
                scales: List[float], sampling_ratio: int, aligned: bool) -> torch.Tensor:
    """``ROIPooler`` of one image's (R, 4) boxes, box ``r`` from level ``levels[r]`` (int64 (R,),
    index into ``features``), with torchvision's ``roi_align``; (R, C, Ph, Pw) in box order."""
    rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1).to(torch.float32)
    if len(features) == 1:
        return roi_align(features[0], rois, output_size, scales[0], sampling_ratio, aligned)
    pooled, order = [], []
    for level, feature in enumerate(features):
        index = torch.nonzero(levels == level).flatten()
        pooled.append(roi_align(feature, rois[index], output_size, scales[level], sampling_ratio, aligned))
        order.append(index)
    return torch.cat(pooled)[torch.argsort(torch.cat(order))]


def rpn_level_outputs(logits: torch.Tensor, deltas: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """One level's RPN head outputs of one image, (1, A, H, W) logits and (1, A * 4, H, W) deltas,
    as (H * W * A,) logits and (H * W * A, 4) deltas in the anchors' (row, column, cell) order."""
    height, width = deltas.shape[-2:]
    return (logits[0].permute(1, 2, 0).reshape(-1),
            deltas[0].view(-1, 4, height, width).permute(2, 3, 0, 1).reshape(-1, 4))


def top_proposals(boxes: List[torch.Tensor], logits: List[torch.Tensor], size: torch.Tensor, pre_nms_topk: int,
                  post_nms_topk: int, nms_thresh: float, min_box_size: float) -> torch.Tensor:
    """``find_top_rpn_proposals`` for one image: per level, the decoded (N_l, 4) boxes and (N_l,)
    logits; returns float (R, 4) proposals by decreasing objectness.

    Each level's logits get ``pre_nms_topk`` entries of -inf appended, so ``topk(pre_nms_topk)``
    is valid on a level of any size and, where the level has fewer anchors, the filler is dropped
    by the finiteness test as the model drops non-finite boxes."""
    top_boxes, scores, levels = [], [], []
    for level in range(len(boxes)):
        level_logits = torch.cat([logits[level], logits[level].new_full((pre_nms_topk,), float("-inf"))])
        level_boxes = torch.cat([boxes[level], boxes[level].new_zeros(pre_nms_topk, 4)])
        level_scores, index = level_logits.topk(pre_nms_topk)
        top_boxes.append(level_boxes[index])
        scores.append(level_scores)
        levels.append(torch.full((pre_nms_topk,), level, dtype=torch.int64, device=level_scores.device))
    all_boxes, all_scores, all_levels = torch.cat(top_boxes), torch.cat(scores), torch.cat(levels)
    keep = torch.nonzero(torch.isfinite(all_boxes).all(dim=1) & torch.isfinite(all_scores)).flatten()
    all_boxes, all_scores, all_levels = clip_boxes(all_boxes[keep], size), all_scores[keep], all_levels[keep]
    sides = all_boxes[:, 2:] - all_boxes[:, :2]
    keep = torch.nonzero((sides > min_box_size).all(dim=1)).flatten()
    all_boxes, all_scores, all_levels = all_boxes[keep], all_scores[keep], all_levels[keep]
    keep = batched_nms(all_boxes, all_scores, all_levels, nms_thresh)[:post_nms_topk]
    return all_boxes[keep]


def select_detections(boxes: torch.Tensor, probs: torch.Tensor, size: torch.Tensor, score_thresh: float,
                      nms_thresh: float, topk: int, min_side: float = MIN_DETECTION_SIDE,
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``fast_rcnn_inference_single_image``: decoded (R, K * 4) (or (R, 4)) boxes and (R, K + 1)
    class probabilities -> boxes (D, 4), scores (D,), classes (D,) int64, by decreasing score;
    detections with a side under ``min_side`` pixels dropped."""
    valid = torch.nonzero(torch.isfinite(boxes).all(dim=1) & torch.isfinite(probs).all(dim=1)).flatten()
    boxes, scores = boxes[valid], probs[valid, :-1]
    num_classes = scores.shape[1]
    boxes = clip_boxes(boxes.reshape(boxes.shape[0], -1, 4), size).expand(-1, num_classes, -1)
    candidates = torch.nonzero(scores > score_thresh)
    boxes = boxes[candidates[:, 0], candidates[:, 1]]
    scores = scores[candidates[:, 0], candidates[:, 1]]
    classes = candidates[:, 1]
    sides = boxes[:, 2:] - boxes[:, :2]
    keep = torch.nonzero((sides >= min_side).all(dim=1)).flatten()
    keep = keep[batched_nms(boxes[keep], scores[keep], classes[keep], nms_thresh)]
    if topk >= 0:
        keep = keep[:topk]
    return boxes[keep], scores[keep], classes[keep]


def class_mask_probabilities(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``mask_rcnn_inference``: (D, K, M, M) (or (D, 1, M, M)) mask logits -> float (D, M, M)
    probabilities of each detection's class."""
    if logits.shape[1] > 1:
        index = classes.view(-1, 1, 1, 1).expand(-1, 1, logits.shape[2], logits.shape[3])
        logits = logits.gather(1, index)
    return logits[:, 0].sigmoid()


def _pool(pooler: ROIPooler, features: List[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
    levels = pooler.level_mapper([boxes]) if len(features) > 1 else boxes.new_zeros(0, dtype=torch.int64)
    return pool_levels(features, boxes, levels, list(pooler.output_size), pooler.scales, pooler.sampling_ratio,
                       pooler.aligned)


def _proposals(rpn: nn.Module, features: Dict[str, torch.Tensor], size: torch.Tensor) -> torch.Tensor:
    """The RPN's inference (``RPN.forward`` + ``find_top_rpn_proposals``) for one image."""
    feature_list = [features[f] for f in rpn.in_features]
    anchors = rpn.anchor_generator.grid_anchors(feature_list)
    logits, deltas = rpn.rpn_head(feature_list)
    boxes, scores = [], []
    for anchors_l, logits_l, deltas_l in zip(anchors, logits, deltas, strict=True):
        logits_l, deltas_l = rpn_level_outputs(logits_l, deltas_l)
        boxes.append(rpn.box2box_transform.apply_deltas(deltas_l, anchors_l))
        scores.append(logits_l)
    return top_proposals(boxes, scores, size, rpn.pre_nms_topk[False], rpn.post_nms_topk[False], rpn.nms_thresh,
                         rpn.min_box_size)


def _detections(predictor: nn.Module, box_features: torch.Tensor, proposals: torch.Tensor, size: torch.Tensor,
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``FastRCNNOutputLayers.inference`` for one image."""
    logits, deltas = predictor(box_features)
    return select_detections(predictor.box2box_transform.apply_deltas(deltas, proposals), F.softmax(logits, dim=-1),
                             size, predictor.test_score_thresh, predictor.test_nms_thresh,
                             predictor.test_topk_per_image)


def _mask_probabilities(mask_head: nn.Module, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Mask probabilities from the head's unfused layers (its fused class-logits path loops over
    ROI blocks in Python)."""
    return class_mask_probabilities(mask_head.layers(features), classes)


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
        A registered architecture (:func:`register_architecture`): what its inference returns.

    Raises:
        ValueError: not exactly one input; NotImplementedError: another meta-architecture.
    """
    if len(batched_inputs) != 1:
        raise ValueError(f"export_inference runs one image (a graph with a fixed batch of 1), got {len(batched_inputs)}.")
    if not isinstance(model, supported_architectures()):
        raise NotImplementedError(
            f"Export supports {[c.__name__ for c in supported_architectures()]}, not {type(model).__name__}: "
            "add its inference to seg_research/export/graphs.py, or register it with "
            "seg_research.export.graphs.register_architecture (import the project that defines it first).")
    image = batched_inputs[0]["image"]
    registered = registered_architecture(model)
    if registered is not None:
        return registered[0](model, image)
    size = image_size_tensor(image)
    features = model.backbone(preprocess(model, image))
    outputs: Dict[str, Any] = {}
    if isinstance(model, (SemanticSegmentor, PanopticFPN)):
        outputs["sem_seg"] = _semantic_logits(model.sem_seg_head, features, image)
    if isinstance(model, GeneralizedRCNN):
        proposals = _proposals(model.proposal_generator, features, size)
        outputs["instances"] = _roi_heads(model.roi_heads, features, proposals, size)
    return outputs
