"""Region Proposal Network: objectness + anchor deltas on every level, matched to ground truth
for training, and top-k / NMS filtering into per-image proposals.

Boxes are XYXY absolute pixels of the padded input images (``ImageList``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, clip_boxes_to_image
from torchvision.ops.misc import Conv2dNormActivation

from ...config import ConfigError, configurable
from ...layers import ShapeSpec
from ...structures import Boxes, ImageList, Instances, pairwise_iou
from ...utils.events import current_event_storage
from ...utils.registry import Registry
from ..anchor_generator import build_anchor_generator
from ..box_regression import Box2BoxTransform, box_regression_loss
from ..matcher import Matcher
from ..sampling import subsample_labels
from .build import PROPOSAL_GENERATOR_REGISTRY

__all__ = ["RPN_HEAD_REGISTRY", "build_rpn_head", "StandardRPNHead", "RPN", "find_top_rpn_proposals"]

RPN_HEAD_REGISTRY = Registry("RPN_HEAD")
RPN_HEAD_REGISTRY.__doc__ = """
Registry for RPN heads, called as ``obj(cfg, input_shape)`` with ``input_shape`` the list of
:class:`ShapeSpec` of the RPN's input features. ``forward(features)`` returns per level the
objectness logits (N, A, H, W) and the anchor deltas (N, A * 4, H, W).
"""


def build_rpn_head(cfg, input_shape: List[ShapeSpec]) -> nn.Module:
    """Build ``cfg.MODEL.RPN.HEAD_NAME``."""
    name = cfg.MODEL.RPN.HEAD_NAME
    if name not in RPN_HEAD_REGISTRY:
        raise ConfigError(f"MODEL.RPN.HEAD_NAME '{name}' is not registered. Registered: "
                          f"{sorted(k for k, _ in RPN_HEAD_REGISTRY)}.")
    return RPN_HEAD_REGISTRY.get(name)(cfg, input_shape)


@RPN_HEAD_REGISTRY.register()
class StandardRPNHead(nn.Module):
    """Shared across levels: 3×3 conv(s) + ReLU, then a 1×1 conv for the objectness logit of each
    of the A anchors and a 1×1 conv for their 4 deltas. The layout of the convs matches
    torchvision's ``RPNHead`` (``conv.{i}.0``), with detectron2's names for the two predictors."""

    @configurable
    def __init__(self, *, in_channels: int, num_anchors: int, box_dim: int = 4, conv_dims: Sequence[int] = (-1,)):
        """
        Args:
            in_channels: C of every input level.
            num_anchors: A, anchors per location.
            box_dim: numbers per box delta (4).
            conv_dims: output channels of each 3×3 conv; -1 means ``in_channels``.
        """
        super().__init__()
        convs, channels = [], in_channels
        for dim in conv_dims:
            dim = in_channels if dim == -1 else dim
            convs.append(Conv2dNormActivation(channels, dim, kernel_size=3, norm_layer=None))
            channels = dim
        self.conv = nn.Sequential(*convs)
        self.objectness_logits = nn.Conv2d(channels, num_anchors, kernel_size=1)
        self.anchor_deltas = nn.Conv2d(channels, num_anchors * box_dim, kernel_size=1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.zeros_(layer.bias)

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]) -> dict:
        channels = {s.channels for s in input_shape}
        if len(channels) != 1:
            raise ConfigError(f"StandardRPNHead needs the same channels on every level of MODEL.RPN.IN_FEATURES, "
                              f"got {sorted(channels)}.")
        num_anchors = set(build_anchor_generator(cfg, input_shape).num_anchors)
        if len(num_anchors) != 1:
            raise ConfigError(
                "StandardRPNHead shares its convs across levels, so every level needs the same number of anchors "
                f"(len(SIZES[l]) * len(ASPECT_RATIOS[l])); MODEL.ANCHOR_GENERATOR gives {sorted(num_anchors)}."
            )
        return {"in_channels": channels.pop(), "num_anchors": num_anchors.pop(),
                "conv_dims": list(cfg.MODEL.RPN.CONV_DIMS)}

    def forward(self, features: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """
        Args:
            features: per level, (N, C, H_l, W_l).

        Returns:
            objectness logits per level (N, A, H_l, W_l); anchor deltas per level (N, A * 4, H_l, W_l).
        """
        logits, deltas = [], []
        for x in features:
            x = self.conv(x)
            logits.append(self.objectness_logits(x))
            deltas.append(self.anchor_deltas(x))
        return logits, deltas


def find_top_rpn_proposals(
    proposals: List[torch.Tensor],
    pred_objectness_logits: List[torch.Tensor],
    image_sizes: List[Tuple[int, int]],
    nms_thresh: float,
    pre_nms_topk: int,
    post_nms_topk: int,
    min_box_size: float,
) -> List[Instances]:
    """Per image: the ``pre_nms_topk`` best anchors of each level, clipped to the image, without
    boxes whose side is <= ``min_box_size`` or non-finite ones, NMS within each level, then the
    ``post_nms_topk`` best overall.

    Args:
        proposals: per level, float (N, Hi*Wi*A, 4) decoded boxes.
        pred_objectness_logits: per level, float (N, Hi*Wi*A).
        image_sizes: per image, (h, w) before padding.

    Returns:
        per image, Instances with ``proposal_boxes`` (Boxes) and ``objectness_logits`` (float (R,)),
        sorted by decreasing objectness.
    """
    num_images = len(image_sizes)
    batch_index = torch.arange(num_images, device=proposals[0].device)[:, None]
    boxes, scores, levels = [], [], []
    for level, (boxes_l, logits_l) in enumerate(zip(proposals, pred_objectness_logits, strict=True)):
        k = min(pre_nms_topk, logits_l.shape[1])
        top_scores, top_index = logits_l.topk(k, dim=1)
        boxes.append(boxes_l[batch_index, top_index])
        scores.append(top_scores)
        levels.append(torch.full((k,), level, dtype=torch.int64, device=top_scores.device))
    boxes, scores, levels = torch.cat(boxes, dim=1), torch.cat(scores, dim=1), torch.cat(levels)

    results = []
    for image_boxes, image_scores, image_size in zip(boxes, scores, image_sizes, strict=True):
        keep = torch.isfinite(image_boxes).all(dim=1) & torch.isfinite(image_scores)
        image_boxes = clip_boxes_to_image(image_boxes[keep], image_size)
        image_scores, image_levels = image_scores[keep], levels[keep]
        sides = image_boxes[:, 2:] - image_boxes[:, :2]
        keep = (sides > min_box_size).all(dim=1)
        image_boxes, image_scores, image_levels = image_boxes[keep], image_scores[keep], image_levels[keep]
        keep = batched_nms(image_boxes, image_scores, image_levels, nms_thresh)[:post_nms_topk]
        results.append(Instances(image_size, proposal_boxes=Boxes(image_boxes[keep]),
                                 objectness_logits=image_scores[keep]))
    return results


@PROPOSAL_GENERATOR_REGISTRY.register()
class RPN(nn.Module):
    """Region Proposal Network (Faster R-CNN) over one or more feature levels.

    Training labels anchors with ``anchor_matcher`` (IoU with the ground truth; an ignore band
    between the thresholds), samples ``batch_size_per_image`` of them (at most
    ``positive_fraction`` foreground) and returns ``loss_rpn_cls`` (binary cross-entropy of the
    sampled anchors) and ``loss_rpn_loc`` (box regression of the sampled foreground anchors),
    both divided by ``batch_size_per_image * N``.
    """

    @configurable
    def __init__(
        self,
        *,
        in_features: List[str],
        head: nn.Module,
        anchor_generator: nn.Module,
        anchor_matcher: Matcher,
        box2box_transform: Box2BoxTransform,
        batch_size_per_image: int,
        positive_fraction: float,
        pre_nms_topk: Tuple[int, int],
        post_nms_topk: Tuple[int, int],
        nms_thresh: float = 0.7,
        min_box_size: float = 0.0,
        anchor_boundary_thresh: float = -1.0,
        loss_weight: Optional[Dict[str, float]] = None,
        box_reg_loss_type: str = "smooth_l1",
        smooth_l1_beta: float = 0.0,
    ) -> None:
        """
        Args:
            in_features: names of the features the RPN runs on, finest first.
            head: maps those features to per-level logits and deltas (e.g. :class:`StandardRPNHead`).
            anchor_generator: per-level anchors (e.g. ``DefaultAnchorGenerator``).
            anchor_matcher: labels anchors foreground (1), background (0) or ignored (-1).
            box2box_transform: anchor -> box coding.
            batch_size_per_image, positive_fraction: anchor sampling for the losses.
            pre_nms_topk, post_nms_topk: (training, inference) numbers of boxes kept per level
                before NMS and per image after it.
            nms_thresh: IoU of the NMS within each level.
            min_box_size: proposals with a side <= this (pixels, after clipping) are dropped.
            anchor_boundary_thresh: anchors sticking out of the image by more than this many
                pixels are ignored in training; negative keeps all.
            loss_weight: ``{"loss_rpn_cls": w, "loss_rpn_loc": w}`` (default 1 each).
            box_reg_loss_type, smooth_l1_beta: see :func:`box_regression_loss`.
        """
        super().__init__()
        self.in_features = list(in_features)
        self.rpn_head = head
        self.anchor_generator = anchor_generator
        self.anchor_matcher = anchor_matcher
        self.box2box_transform = box2box_transform
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.pre_nms_topk = {True: pre_nms_topk[0], False: pre_nms_topk[1]}
        self.post_nms_topk = {True: post_nms_topk[0], False: post_nms_topk[1]}
        self.nms_thresh = nms_thresh
        self.min_box_size = float(min_box_size)
        self.anchor_boundary_thresh = anchor_boundary_thresh
        self.loss_weight = {"loss_rpn_cls": 1.0, "loss_rpn_loc": 1.0, **(loss_weight or {})}
        self.box_reg_loss_type = box_reg_loss_type
        self.smooth_l1_beta = smooth_l1_beta

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        rpn = cfg.MODEL.RPN
        missing = [f for f in rpn.IN_FEATURES if f not in input_shape]
        if missing:
            raise ConfigError(f"MODEL.RPN.IN_FEATURES {list(rpn.IN_FEATURES)} include {missing}, which the backbone "
                              f"does not output; it outputs {list(input_shape)}.")
        shapes = [input_shape[f] for f in rpn.IN_FEATURES]
        return {
            "in_features": list(rpn.IN_FEATURES),
            "head": build_rpn_head(cfg, shapes),
            "anchor_generator": build_anchor_generator(cfg, shapes),
            "anchor_matcher": Matcher(rpn.IOU_THRESHOLDS, rpn.IOU_LABELS, allow_low_quality_matches=True),
            "box2box_transform": Box2BoxTransform(rpn.BBOX_REG_WEIGHTS),
            "batch_size_per_image": rpn.BATCH_SIZE_PER_IMAGE,
            "positive_fraction": rpn.POSITIVE_FRACTION,
            "pre_nms_topk": (rpn.PRE_NMS_TOPK_TRAIN, rpn.PRE_NMS_TOPK_TEST),
            "post_nms_topk": (rpn.POST_NMS_TOPK_TRAIN, rpn.POST_NMS_TOPK_TEST),
            "nms_thresh": rpn.NMS_THRESH,
            "min_box_size": cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE,
            "anchor_boundary_thresh": rpn.BOUNDARY_THRESH,
            "loss_weight": {"loss_rpn_cls": rpn.LOSS_WEIGHT, "loss_rpn_loc": rpn.BBOX_REG_LOSS_WEIGHT * rpn.LOSS_WEIGHT},
            "box_reg_loss_type": rpn.BBOX_REG_LOSS_TYPE,
            "smooth_l1_beta": rpn.SMOOTH_L1_BETA,
        }

    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: List[Boxes], gt_instances: List[Instances]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """
        Args:
            anchors: per level, the anchors (shared by all images).
            gt_instances: per image, Instances with ``gt_boxes``.

        Returns:
            gt_labels: per image, int8 (R,) over all anchors of all levels: 1 sampled foreground,
                0 sampled background, -1 not sampled.
            matched_gt_boxes: per image, float (R, 4) matched ground-truth box of each anchor
                (meaningful where the label is 1).
        """
        anchors = Boxes.cat(anchors)
        gt_labels, matched_gt_boxes = [], []
        for instances in gt_instances:
            iou = pairwise_iou(instances.gt_boxes, anchors)
            matched_idxs, labels = self.anchor_matcher(iou)
            if self.anchor_boundary_thresh >= 0:
                labels[~anchors.inside_box(instances.image_size, self.anchor_boundary_thresh)] = -1
            pos_idx, neg_idx = subsample_labels(labels, self.batch_size_per_image, self.positive_fraction, 0)
            labels = torch.full_like(labels, -1)
            labels[pos_idx], labels[neg_idx] = 1, 0
            gt_labels.append(labels)
            if len(instances) == 0:
                matched_gt_boxes.append(torch.zeros_like(anchors.tensor))
            else:
                matched_gt_boxes.append(instances.gt_boxes.tensor[matched_idxs])
        return gt_labels, matched_gt_boxes

    def losses(
        self,
        anchors: List[Boxes],
        pred_objectness_logits: List[torch.Tensor],
        gt_labels: List[torch.Tensor],
        pred_anchor_deltas: List[torch.Tensor],
        matched_gt_boxes: List[torch.Tensor],
    ) -> Dict[str, torch.Tensor]:
        """``loss_rpn_cls`` and ``loss_rpn_loc`` (see the class doc).

        Inside an ``EventStorage`` (a trainer), also puts detectron2's diagnostics
        ``rpn/num_pos_anchors`` and ``rpn/num_neg_anchors``: the sampled foreground (label 1) and
        background (label 0) anchors, summed over the batch and divided by the number of images.

        Args:
            pred_objectness_logits: per level, (N, Hi*Wi*A).
            pred_anchor_deltas: per level, (N, Hi*Wi*A, 4).
            gt_labels, matched_gt_boxes: from :meth:`label_and_sample_anchors`.
        """
        num_images = len(gt_labels)
        labels = torch.stack(gt_labels)  # (N, R)
        foreground = labels == 1
        storage = current_event_storage()
        if storage is not None:
            num_pos, num_neg = torch.stack([foreground.count_nonzero(), (labels == 0).count_nonzero()]).tolist()  # one sync
            storage.put_scalar("rpn/num_pos_anchors", num_pos / num_images)
            storage.put_scalar("rpn/num_neg_anchors", num_neg / num_images)
        all_anchors = Boxes.cat(anchors).tensor.expand(num_images, -1, -1)
        loss_loc = box_regression_loss(
            self.box2box_transform, all_anchors[foreground], torch.cat(pred_anchor_deltas, dim=1)[foreground],
            torch.stack(matched_gt_boxes)[foreground], self.box_reg_loss_type, self.smooth_l1_beta,
        )
        valid = labels >= 0
        loss_cls = F.binary_cross_entropy_with_logits(
            torch.cat(pred_objectness_logits, dim=1)[valid], labels[valid].to(torch.float32), reduction="sum"
        )
        normalizer = self.batch_size_per_image * num_images
        return {
            "loss_rpn_cls": loss_cls / normalizer * self.loss_weight["loss_rpn_cls"],
            "loss_rpn_loc": loss_loc / normalizer * self.loss_weight["loss_rpn_loc"],
        }

    def forward(
        self, images: ImageList, features: Dict[str, torch.Tensor], gt_instances: Optional[List[Instances]] = None
    ) -> Tuple[List[Instances], Dict[str, torch.Tensor]]:
        """
        Args:
            images: the padded input batch (for image sizes).
            features: backbone features by name.
            gt_instances: per image, Instances with ``gt_boxes``; needed in training.

        Returns:
            proposals: per image, Instances with ``proposal_boxes`` and ``objectness_logits``
                (detached; at most ``post_nms_topk`` of them).
            losses: ``{"loss_rpn_cls", "loss_rpn_loc"}`` in training, ``{}`` otherwise.
        """
        features = [features[f] for f in self.in_features]
        anchors = self.anchor_generator(features)
        logits, deltas = self.rpn_head(features)
        # (N, A, H, W) -> (N, H*W*A), matching the (row, column, cell anchor) order of the anchors
        pred_objectness_logits = [x.permute(0, 2, 3, 1).flatten(1) for x in logits]
        pred_anchor_deltas = [
            x.view(x.shape[0], -1, 4, x.shape[-2], x.shape[-1]).permute(0, 3, 4, 1, 2).flatten(1, -2) for x in deltas
        ]
        losses: Dict[str, torch.Tensor] = {}
        if self.training:
            if gt_instances is None:
                raise ValueError("RPN needs gt_instances in training mode.")
            gt_labels, matched_gt_boxes = self.label_and_sample_anchors(anchors, gt_instances)
            losses = self.losses(anchors, pred_objectness_logits, gt_labels, pred_anchor_deltas, matched_gt_boxes)
        proposals = self.predict_proposals(anchors, pred_objectness_logits, pred_anchor_deltas, images.image_sizes)
        return proposals, losses

    @torch.no_grad()
    def predict_proposals(
        self,
        anchors: List[Boxes],
        pred_objectness_logits: List[torch.Tensor],
        pred_anchor_deltas: List[torch.Tensor],
        image_sizes: List[Tuple[int, int]],
    ) -> List[Instances]:
        """Decode the deltas of every anchor and keep the best proposals (:func:`find_top_rpn_proposals`)."""
        proposals = []
        for anchors_l, deltas_l in zip(anchors, pred_anchor_deltas, strict=True):
            num_images, num_anchors = deltas_l.shape[:2]
            decoded = self.box2box_transform.apply_deltas(
                deltas_l.reshape(-1, 4), anchors_l.tensor.repeat(num_images, 1)
            )
            proposals.append(decoded.view(num_images, num_anchors, 4))
        return find_top_rpn_proposals(
            proposals, pred_objectness_logits, image_sizes, self.nms_thresh,
            self.pre_nms_topk[self.training], self.post_nms_topk[self.training], self.min_box_size,
        )
