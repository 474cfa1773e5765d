"""Proposal helpers at detectron2's ``modeling.proposal_generator.proposal_utils`` path."""
from __future__ import annotations

import math
from typing import List

import torch

from ...structures import Boxes, Instances
from .rpn import find_top_rpn_proposals

__all__ = ["find_top_rpn_proposals", "add_ground_truth_to_proposals", "add_ground_truth_to_proposals_single_image"]

#: objectness logit of an added ground-truth box: sigmoid(logit) = 1 - 1e-10
GT_LOGIT = math.log((1.0 - 1e-10) / 1e-10)


def add_ground_truth_to_proposals_single_image(gt: Instances | Boxes, proposals: Instances) -> Instances:
    """``proposals`` (with ``proposal_boxes`` and ``objectness_logits``) followed by the ground-truth
    boxes of ``gt`` (Instances with ``gt_boxes``, or Boxes) as proposals of logit :data:`GT_LOGIT`;
    the other fields of ``gt`` are kept where ``proposals`` has them too (e.g. ``gt_classes``)."""
    gt_boxes = gt if isinstance(gt, Boxes) else gt.gt_boxes
    device = proposals.objectness_logits.device
    added = Instances(proposals.image_size)
    added.proposal_boxes = gt_boxes.to(device)
    added.objectness_logits = torch.full((len(gt_boxes),), GT_LOGIT, device=device)
    if isinstance(gt, Instances):
        for name, value in gt.get_fields().items():
            if proposals.has(name) and name != "proposal_boxes":
                added.set(name, value)
    return Instances.cat([proposals, added])


def add_ground_truth_to_proposals(gt: List[Instances] | List[Boxes], proposals: List[Instances]) -> List[Instances]:
    """Per image, :func:`add_ground_truth_to_proposals_single_image`.

    Raises:
        ValueError: ``gt`` and ``proposals`` are of different numbers of images.
    """
    if len(gt) != len(proposals):
        raise ValueError(f"add_ground_truth_to_proposals: {len(gt)} images of ground truth but {len(proposals)} "
                         "of proposals; pass one of each per image.")
    return [add_ground_truth_to_proposals_single_image(g, p) for g, p in zip(gt, proposals, strict=True)]
