"""TorchScript by scripting: the data-dependent part of inference (proposal selection, NMS, ROI
pooling by level, detection selection, class masks) compiled by ``torch.jit.script``, around the
model's dense networks traced (backbone, RPN head and anchors, box head, mask head, semantic head;
convolution stacks whose trace holds for any size and ROI count).

The model classes themselves are not scriptable (``Instances``, ``@configurable`` constructors,
submodules looked up by name), which is why detectron2 needs ``scripting_with_instances``; here the
scripted module runs the same computations as the traced export (:mod:`.graphs`, whose
tensor-only functions it calls) and returns the same named outputs, as a ``Dict[str, Tensor]``.

An architecture registered with :func:`~seg_research.export.graphs.register_architecture` has
nothing data-dependent in its exportable inference (its selection steps are the runtime's): the
scripted module calls that inference traced, and names its outputs.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops.poolers import LevelMapper

from ..modeling.meta_arch import GeneralizedRCNN, PanopticFPN, SemanticSegmentor
from ..modeling.poolers import ROIPooler
from ..modeling.roi_heads import StandardROIHeads
from ..modeling.roi_heads.res5_roi_heads import Res5ROIHeads
from .flatten import TracingAdapter
from .graphs import (
    class_mask_probabilities,
    export_inference,
    pool_levels,
    preprocess,
    registered_architecture,
    rpn_level_outputs,
    select_detections,
    supported_architectures,
    top_proposals,
)

__all__ = ["script_model"]


class _SemSegLogits(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(features)[0]


class _RPNHead(nn.Module):
    """The RPN head and the anchors of the levels it sees, from the backbone's features."""

    def __init__(self, rpn: nn.Module) -> None:
        super().__init__()
        self.head = rpn.rpn_head
        self.anchor_generator = rpn.anchor_generator
        self.in_features = list(rpn.in_features)

    def forward(self, features: Dict[str, torch.Tensor]):
        levels = [features[f] for f in self.in_features]
        logits, deltas = self.head(levels)
        return logits, deltas, self.anchor_generator.grid_anchors(levels)


class _BoxHead(nn.Module):
    """Pooled ROI features -> (class logits, box deltas): box head + predictor (FPN), or res5,
    spatial mean and predictor (C4)."""

    def __init__(self, heads: nn.Module) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, pooled: torch.Tensor):
        if isinstance(self.heads, Res5ROIHeads):
            return self.heads.box_predictor(self.heads.res5(pooled).mean(dim=(2, 3)))
        return self.heads.box_predictor(self.heads.box_head(pooled))


class _MaskHead(nn.Module):
    """Pooled ROI features -> (D, K, M, M) mask logits (res5 first in C4)."""

    def __init__(self, heads: nn.Module) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if isinstance(self.heads, Res5ROIHeads):
            pooled = self.heads.res5(pooled)
        return self.heads.mask_head.layers(pooled)


def _coder(transform) -> BoxCoder:
    """torchvision's (scriptable) ``BoxCoder`` with a ``Box2BoxTransform``'s weights and clamp: the
    coder its ``apply_deltas`` runs."""
    return BoxCoder(transform.weights, bbox_xform_clip=transform.scale_clamp)


def _pooler_fields(pooler: ROIPooler) -> Tuple[List[int], List[float], int, bool, Optional[LevelMapper]]:
    return (list(pooler.output_size), list(pooler.scales), int(pooler.sampling_ratio), bool(pooler.aligned),
            pooler.level_mapper if len(pooler.scales) > 1 else None)


def _trace(module: nn.Module, *inputs):
    with torch.no_grad():
        return torch.jit.trace(module.eval(), inputs, strict=False, check_trace=False)


class ScriptableInference(nn.Module):
    """``export_inference`` of a model as a module ``torch.jit.script`` compiles: ``forward(image)``
    takes one float32 (C, H, W) image (0-255, the model's channel order, resized) and returns the
    named outputs of :func:`~seg_research.export.graphs.export_inference`, flattened
    (``instances.pred_boxes``, ..., ``sem_seg``). Parts a model does not have are None and their
    branches are dropped by the compiler."""

    def __init__(self, model: nn.Module, image: torch.Tensor) -> None:
        super().__init__()
        if not isinstance(model, supported_architectures()):
            raise NotImplementedError(f"Scripting supports {[c.__name__ for c in supported_architectures()]}, "
                                      f"not {type(model).__name__}.")
        model = model.eval()
        self.register_buffer("pixel_mean", model.pixel_mean.clone(), persistent=False)
        self.register_buffer("pixel_std", model.pixel_std.clone(), persistent=False)
        self.divisor = int(model.padding_constraints.get("size_divisibility", 0))
        self.channels_last = bool(getattr(model, "channels_last_on_cpu", False))
        x = preprocess(model, image.to(torch.float32))
        with torch.no_grad():
            features = model.backbone(x)
        self.backbone = _trace(model.backbone, x)
        self.sem_seg_head = (_trace(_SemSegLogits(model.sem_seg_head), features)
                             if isinstance(model, (SemanticSegmentor, PanopticFPN)) else None)
        self.rpn = None
        self.box_head = None
        self.mask_head = None
        if isinstance(model, GeneralizedRCNN):
            self._set_detector(model, features, image)

    def _set_detector(self, model: nn.Module, features: Dict[str, torch.Tensor], image: torch.Tensor) -> None:
        rpn, heads = model.proposal_generator, model.roi_heads
        self.rpn = _trace(_RPNHead(rpn), features)
        self.rpn_coder = _coder(rpn.box2box_transform)
        self.pre_nms_topk, self.post_nms_topk = int(rpn.pre_nms_topk[False]), int(rpn.post_nms_topk[False])
        self.rpn_nms_thresh, self.min_box_size = float(rpn.nms_thresh), float(rpn.min_box_size)
        if isinstance(heads, StandardROIHeads):
            box_pooler, box_features = heads.box_pooler, list(heads.box_in_features)
            mask_pooler = heads.mask_pooler if heads.mask_on else None
            mask_features = list(heads.mask_in_features) if heads.mask_on else []
        elif isinstance(heads, Res5ROIHeads):
            box_pooler = mask_pooler = heads.pooler
            box_features = mask_features = list(heads.in_features)
        else:
            raise NotImplementedError(f"Scripting supports StandardROIHeads and Res5ROIHeads, not {type(heads).__name__}.")
        (self.box_output_size, self.box_scales, self.box_sampling_ratio, self.box_aligned,
         self.box_level_mapper) = _pooler_fields(box_pooler)
        self.box_in_features = box_features
        predictor = heads.box_predictor
        self.box_coder = _coder(predictor.box2box_transform)
        self.score_thresh, self.nms_thresh = float(predictor.test_score_thresh), float(predictor.test_nms_thresh)
        self.topk_per_image = int(predictor.test_topk_per_image)
        # a few ROIs over the sample image: the traced heads take any number of them, 0 included
        height, width = image.shape[-2:]
        boxes = torch.tensor([[0.0, 0.0, width / 2, height / 2], [width / 4, height / 4, width, height]])
        levels = torch.zeros(2, dtype=torch.int64)
        pooled = pool_levels([features[f] for f in box_features], boxes, levels, self.box_output_size,
                             self.box_scales, self.box_sampling_ratio, self.box_aligned)
        self.box_head = _trace(_BoxHead(heads), pooled)
        self.mask_in_features = mask_features
        if heads.mask_on:
            (self.mask_output_size, self.mask_scales, self.mask_sampling_ratio, self.mask_aligned,
             self.mask_level_mapper) = _pooler_fields(mask_pooler)
            pooled = pool_levels([features[f] for f in mask_features], boxes, levels, self.mask_output_size,
                                 self.mask_scales, self.mask_sampling_ratio, self.mask_aligned)
            self.mask_head = _trace(_MaskHead(heads), pooled)

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        height, width = image.shape[-2], image.shape[-1]
        size = torch.tensor([height, width], dtype=torch.int64, device=image.device)
        x = (image.to(torch.float32) - self.pixel_mean) / self.pixel_std
        if self.divisor > 1:
            x = F.pad(x, [0, (self.divisor - width % self.divisor) % self.divisor,
                          0, (self.divisor - height % self.divisor) % self.divisor])
        x = x[None]
        if self.channels_last and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.backbone(x)
        outputs: Dict[str, torch.Tensor] = {}
        sem_seg_head = self.sem_seg_head
        if sem_seg_head is not None:
            outputs["sem_seg"] = sem_seg_head(features)[0, :, :height, :width]
        rpn = self.rpn
        box_head = self.box_head
        if rpn is not None and box_head is not None:
            logits, deltas, anchors = rpn(features)
            level_boxes: List[torch.Tensor] = []
            level_logits: List[torch.Tensor] = []
            for level in range(len(anchors)):
                level_logit, level_delta = rpn_level_outputs(logits[level], deltas[level])
                level_boxes.append(self.rpn_coder.decode_single(level_delta, anchors[level]))
                level_logits.append(level_logit)
            proposals = top_proposals(level_boxes, level_logits, size, self.pre_nms_topk, self.post_nms_topk,
                                      self.rpn_nms_thresh, self.min_box_size)
            pooled = self._pool_boxes(features, proposals)
            class_logits, box_deltas = box_head(pooled)
            boxes, scores, classes = select_detections(
                self.box_coder.decode_single(box_deltas, proposals), F.softmax(class_logits, dim=-1), size,
                self.score_thresh, self.nms_thresh, self.topk_per_image)
            outputs["instances.pred_boxes"] = boxes
            outputs["instances.pred_classes"] = classes
            outputs["instances.scores"] = scores
            mask_head = self.mask_head
            if mask_head is not None:
                pooled = self._pool_masks(features, boxes)
                outputs["instances.pred_masks"] = class_mask_probabilities(mask_head(pooled), classes)
        return outputs

    def _pool_boxes(self, features: Dict[str, torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        levels = boxes.new_zeros(0, dtype=torch.int64)
        mapper = self.box_level_mapper
        if mapper is not None:
            levels = mapper([boxes])
        return pool_levels([features[f] for f in self.box_in_features], boxes, levels, self.box_output_size,
                           self.box_scales, self.box_sampling_ratio, self.box_aligned)

    def _pool_masks(self, features: Dict[str, torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        levels = boxes.new_zeros(0, dtype=torch.int64)
        mapper = self.mask_level_mapper
        if mapper is not None:
            levels = mapper([boxes])
        return pool_levels([features[f] for f in self.mask_in_features], boxes, levels, self.mask_output_size,
                           self.mask_scales, self.mask_sampling_ratio, self.mask_aligned)


class _OutputList(nn.Module):
    """A :class:`TracingAdapter`'s flat outputs as a list (a traced module's list indexes by a loop variable)."""

    def __init__(self, adapter: TracingAdapter) -> None:
        super().__init__()
        self.adapter = adapter

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        return list(self.adapter(image))


class NamedTracedInference(nn.Module):
    """A registered architecture's exportable inference, traced on ``image``, as a module that
    ``torch.jit.script`` compiles: ``forward(image)`` returns its flattened outputs by name."""

    def __init__(self, model: nn.Module, image: torch.Tensor) -> None:
        super().__init__()
        adapter = TracingAdapter(model.eval(), [{"image": image.to(torch.float32)}], export_inference)
        with torch.no_grad():
            adapter(*adapter.flattened_inputs)
        self.names: List[str] = adapter.outputs_schema.names()
        self.graph = _trace(_OutputList(adapter), image.to(torch.float32))

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        outputs = self.graph(image)
        named: Dict[str, torch.Tensor] = {}
        for index, name in enumerate(self.names):
            named[name] = outputs[index]
        return named


def script_model(model: nn.Module, image: torch.Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of :class:`ScriptableInference` (dense parts traced on ``image``, a
    (C, H, W) network input), or of :class:`NamedTracedInference` for a registered architecture."""
    if registered_architecture(model) is not None:
        return torch.jit.script(NamedTracedInference(model, image))
    return torch.jit.script(ScriptableInference(model, image))
