"""Convert torchvision's ``maskrcnn_resnet50_fpn`` state_dict to :class:`GeneralizedRCNN`'s names.

Module mapping (torchvision -> ours)::

    backbone.body.*                          -> backbone.bottom_up.*   (ResNet renaming, BN counters dropped)
    backbone.fpn.inner_blocks.{i}.0.*        -> backbone.fpn_lateral{i+2}.0.*
    backbone.fpn.layer_blocks.{i}.0.*        -> backbone.fpn_output{i+2}.0.*
    rpn.head.conv.0.0.* (old: conv.*)        -> proposal_generator.rpn_head.conv.0.0.*
    rpn.head.cls_logits.*                    -> proposal_generator.rpn_head.objectness_logits.*
    rpn.head.bbox_pred.*                     -> proposal_generator.rpn_head.anchor_deltas.*
    roi_heads.box_head.fc6.* / fc7.*         -> roi_heads.box_head.fc1.* / fc2.*
    roi_heads.box_predictor.cls_score.*      -> roi_heads.box_predictor.cls_score.*   (background row moved last)
    roi_heads.box_predictor.bbox_pred.*      -> roi_heads.box_predictor.bbox_pred.*   (background's 4 rows dropped)
    roi_heads.mask_head.{i}.0.* (old: mask_fcn{i+1}.*) -> roi_heads.mask_head.mask_fcn{i+1}.0.*
    roi_heads.mask_predictor.conv5_mask.*    -> roi_heads.mask_head.deconv.*
    roi_heads.mask_predictor.mask_fcn_logits.* -> roi_heads.mask_head.predictor.*    (background row dropped)

torchvision's classes are 1-based with background 0; ours are 0-based with background last,
so torchvision class ``c`` becomes ours ``c - 1`` (COCO: NUM_CLASSES 90 for its 91 outputs).
Both the current key layout and the older one of torchvision's published weights
(``rpn.head.conv.weight``, ``mask_head.mask_fcn1.weight``) are accepted.
"""
from __future__ import annotations

import re
from typing import Collection, Dict, Mapping

import torch

from .torchvision_resnet import convert_torchvision_resnet_state_dict

__all__ = ["is_torchvision_maskrcnn_state_dict", "convert_torchvision_maskrcnn_state_dict"]

_BODY = "backbone.body."
# (pattern, replacement) applied to every non-body key; the first match wins.
_RENAMES = [
    (r"^backbone\.fpn\.inner_blocks\.(\d)\.0\.", lambda m: f"backbone.fpn_lateral{int(m[1]) + 2}.0."),
    (r"^backbone\.fpn\.layer_blocks\.(\d)\.0\.", lambda m: f"backbone.fpn_output{int(m[1]) + 2}.0."),
    (r"^rpn\.head\.conv\.(0\.0\.)?", "proposal_generator.rpn_head.conv.0.0."),
    (r"^rpn\.head\.cls_logits\.", "proposal_generator.rpn_head.objectness_logits."),
    (r"^rpn\.head\.bbox_pred\.", "proposal_generator.rpn_head.anchor_deltas."),
    (r"^roi_heads\.box_head\.fc6\.", "roi_heads.box_head.fc1."),
    (r"^roi_heads\.box_head\.fc7\.", "roi_heads.box_head.fc2."),
    (r"^roi_heads\.box_predictor\.", "roi_heads.box_predictor."),
    (r"^roi_heads\.mask_head\.(\d)\.0\.", lambda m: f"roi_heads.mask_head.mask_fcn{int(m[1]) + 1}.0."),
    (r"^roi_heads\.mask_head\.mask_fcn(\d)\.", lambda m: f"roi_heads.mask_head.mask_fcn{m[1]}.0."),
    (r"^roi_heads\.mask_predictor\.conv5_mask\.", "roi_heads.mask_head.deconv."),
    (r"^roi_heads\.mask_predictor\.mask_fcn_logits\.", "roi_heads.mask_head.predictor."),
]


def is_torchvision_maskrcnn_state_dict(keys: Collection[str]) -> bool:
    """True for the keys of a torchvision Faster/Mask R-CNN with a ResNet-FPN backbone."""
    return any(k.startswith(_BODY) for k in keys) and any(k.startswith("roi_heads.box_predictor.") for k in keys)


def _move_background_last(value: torch.Tensor) -> torch.Tensor:
    return torch.cat([value[1:], value[:1]])


def convert_torchvision_maskrcnn_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename (and re-order class rows of) a torchvision Mask R-CNN state_dict; see the module doc.

    Raises:
        ValueError: naming the keys that belong to no known torchvision module.
    """
    body = {k[len(_BODY):]: v for k, v in state_dict.items()
            if k.startswith(_BODY) and not k.endswith("num_batches_tracked")}
    converted = convert_torchvision_resnet_state_dict(body, prefix="backbone.bottom_up.")
    unknown = []
    for key, value in state_dict.items():
        if key.startswith(_BODY):
            continue
        for pattern, replacement in _RENAMES:
            new_key, count = re.subn(pattern, replacement, key, count=1)
            if count:
                break
        else:
            unknown.append(key)
            continue
        if new_key.startswith("roi_heads.box_predictor.cls_score."):
            value = _move_background_last(value)
        elif new_key.startswith(("roi_heads.box_predictor.bbox_pred.", "roi_heads.mask_head.predictor.")):
            value = value[4:] if "bbox_pred" in new_key else value[1:]
        converted[new_key] = value
    if unknown:
        raise ValueError(f"Not a torchvision Mask R-CNN ResNet-FPN state_dict: no mapping for keys {unknown[:5]}"
                         f"{' ...' if len(unknown) > 5 else ''}.")
    return converted
