"""ROI heads: match proposals to ground truth, sample them, and run the box and mask heads."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec
from ...structures import Boxes, Instances, pairwise_iou
from ...utils.absent import KEYPOINTS, absent_names
from ...utils.events import current_event_storage
from ...utils.registry import Registry
from ..matcher import Matcher
from ..poolers import ROIPooler
from ..sampling import subsample_labels
from .box_head import build_box_head
from .fast_rcnn import FastRCNNOutputLayers
from .mask_head import build_mask_head

__all__ = ["ROI_HEADS_REGISTRY", "build_roi_heads", "ROIHeads", "StandardROIHeads", "foreground_masks",
           "select_foreground_proposals"]

ROI_HEADS_REGISTRY = Registry("ROI_HEADS")
ROI_HEADS_REGISTRY.__doc__ = """
Registry for ROI heads, called as ``obj(cfg, input_shape)`` with ``input_shape`` the
backbone's ``output_shape()``. ``forward(images, features, proposals, targets)`` returns
(detections per image, loss dict).
"""


def build_roi_heads(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build ``cfg.MODEL.ROI_HEADS.NAME``."""
    name = cfg.MODEL.ROI_HEADS.NAME
    if name not in ROI_HEADS_REGISTRY:
        raise ConfigError(f"MODEL.ROI_HEADS.NAME '{name}' is not registered. Registered: "
                          f"{sorted(k for k, _ in ROI_HEADS_REGISTRY)}.")
    return ROI_HEADS_REGISTRY.get(name)(cfg, input_shape)


def foreground_masks(proposals: List[Instances], bg_label: int) -> List[torch.Tensor]:
    """Per image, bool (Ri,): the proposals whose ``gt_classes`` is a foreground class (not -1 nor ``bg_label``)."""
    return [(p.gt_classes != -1) & (p.gt_classes != bg_label) for p in proposals]


def select_foreground_proposals(proposals: List[Instances], bg_label: int) -> List[Instances]:
    """Per image, the proposals selected by :func:`foreground_masks`."""
    return [p[mask] for p, mask in zip(proposals, foreground_masks(proposals, bg_label), strict=True)]


def roi_heads_in_features(cfg, input_shape: Dict[str, ShapeSpec]) -> List[str]:
    """``MODEL.ROI_HEADS.IN_FEATURES``, checked against the backbone's outputs."""
    in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
    missing = [f for f in in_features if f not in input_shape]
    if missing:
        raise ConfigError(f"MODEL.ROI_HEADS.IN_FEATURES {in_features} include {missing}, which the backbone "
                          f"does not output; it outputs {list(input_shape)}.")
    return in_features


def roi_pooler(cfg_head, in_features: List[str], input_shape: Dict[str, ShapeSpec]) -> Tuple[ROIPooler, ShapeSpec]:
    """The ROIPooler of a box/mask head config node and the shape of what it outputs."""
    channels = {input_shape[f].channels for f in in_features}
    if len(channels) != 1:
        raise ConfigError(f"MODEL.ROI_HEADS.IN_FEATURES {in_features} must all have the same channels, "
                          f"got {sorted(channels)}.")
    resolution = cfg_head.POOLER_RESOLUTION
    pooler = ROIPooler(resolution, [1.0 / input_shape[f].stride for f in in_features],
                       cfg_head.POOLER_SAMPLING_RATIO, cfg_head.POOLER_TYPE)
    return pooler, ShapeSpec(channels=channels.pop(), height=resolution, width=resolution)


class ROIHeads(nn.Module):
    """What every ROI heads class shares: matching proposals to the ground truth and sampling the
    training ROIs (:meth:`label_and_sample_proposals`).

    Training: proposals (plus the ground-truth boxes with ``proposal_append_gt``) are matched to
    the ground truth (``proposal_matcher``) and ``batch_size_per_image`` are sampled per image (at
    most ``positive_fraction`` foreground). Subclasses add the box (and mask) branches and ``forward``.
    """

    @configurable
    def __init__(
        self,
        *,
        num_classes: int,
        batch_size_per_image: int,
        positive_fraction: float,
        proposal_matcher: Matcher,
        proposal_append_gt: bool = True,
    ) -> None:
        """
        Args:
            num_classes: K, foreground classes (background is class K internally).
            batch_size_per_image, positive_fraction: ROI sampling in training.
            proposal_matcher: labels proposals foreground (1) / background (0) / ignored (-1).
            proposal_append_gt: add the ground-truth boxes to the proposals in training.
        """
        super().__init__()
        self.num_classes = num_classes
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.proposal_matcher = proposal_matcher
        self.proposal_append_gt = proposal_append_gt
        self.mask_on = False  # subclasses with a mask branch set it and define _forward_mask

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[Dict[str, ShapeSpec]] = None) -> dict:
        heads = cfg.MODEL.ROI_HEADS
        return {
            "num_classes": heads.NUM_CLASSES,
            "batch_size_per_image": heads.BATCH_SIZE_PER_IMAGE,
            "positive_fraction": heads.POSITIVE_FRACTION,
            "proposal_matcher": Matcher(heads.IOU_THRESHOLDS, heads.IOU_LABELS, allow_low_quality_matches=False),
            "proposal_append_gt": heads.PROPOSAL_APPEND_GT,
        }

    @torch.no_grad()
    def label_and_sample_proposals(self, proposals: List[Instances],
                                   targets: Optional[List[Instances]]) -> List[Instances]:
        """Match and sample the training ROIs of each image.

        Args:
            proposals: per image, Instances with ``proposal_boxes``.
            targets: per image, Instances with ``gt_boxes``, ``gt_classes`` and optionally ``gt_masks``.

        Returns:
            per image, the sampled ROIs (foreground first) with ``proposal_boxes``, ``gt_classes``
            (int64, 0..K-1, or K for background) and every ``gt_*`` field of the target
            matched to each ROI (``gt_boxes`` all zeros for an image without ground truth).

        Inside an ``EventStorage`` (a trainer), also puts detectron2's diagnostics
        ``roi_head/num_fg_samples`` and ``roi_head/num_bg_samples``: the sampled foreground and
        background ROIs per image, averaged over the images of the batch.

        Raises:
            ValueError: without ``targets`` (the heads are in training mode).
        """
        if targets is None:
            raise ValueError(f"{type(self).__name__} needs targets in training mode.")
        sampled, num_fg, num_bg = [], 0, 0
        for proposals_i, targets_i in zip(proposals, targets, strict=True):
            boxes = proposals_i.proposal_boxes
            if self.proposal_append_gt:
                # Early in training the RPN proposes almost nothing that overlaps an object, so the box and
                # mask heads would see no foreground; the GT boxes are perfect proposals of every object.
                boxes = Boxes.cat([boxes, targets_i.gt_boxes])
            matched_idxs, matched_labels = self.proposal_matcher(pairwise_iou(targets_i.gt_boxes, boxes))
            has_gt = len(targets_i) > 0
            if has_gt:
                gt_classes = targets_i.gt_classes[matched_idxs]
            else:
                gt_classes = torch.full_like(matched_idxs, self.num_classes)
            gt_classes[matched_labels == 0] = self.num_classes
            gt_classes[matched_labels == -1] = -1
            pos_idx, neg_idx = subsample_labels(gt_classes, self.batch_size_per_image, self.positive_fraction,
                                                self.num_classes)
            index = torch.cat([pos_idx, neg_idx])
            num_fg, num_bg = num_fg + len(pos_idx), num_bg + len(neg_idx)
            rois = Instances(proposals_i.image_size, proposal_boxes=boxes[index], gt_classes=gt_classes[index])
            if has_gt:
                for name, value in targets_i.get_fields().items():
                    if name.startswith("gt_") and name != "gt_classes":
                        rois.set(name, value[matched_idxs[index]])
            else:
                rois.gt_boxes = Boxes(boxes.tensor.new_zeros((len(index), 4)))
            sampled.append(rois)
        storage = current_event_storage()
        if storage is not None and sampled:
            storage.put_scalar("roi_head/num_fg_samples", num_fg / len(sampled))
            storage.put_scalar("roi_head/num_bg_samples", num_bg / len(sampled))
        return sampled

    def forward_with_given_boxes(self, features: Dict[str, torch.Tensor], instances: List[Instances]) -> List[Instances]:
        """Add ``pred_masks`` to detections (inference); returns ``instances`` unchanged without masks."""
        if self.training:
            raise RuntimeError("forward_with_given_boxes is for inference; call model.eval() first.")
        if self.mask_on:
            instances = self._forward_mask(features, instances)
        return instances


@ROI_HEADS_REGISTRY.register()
class StandardROIHeads(ROIHeads):
    """Box head + Fast R-CNN predictor, and optionally a mask head, each on its own pooled features.

    Training: ROIs sampled as in :class:`ROIHeads`, losses ``loss_cls``, ``loss_box_reg`` and (on
    foreground ROIs) ``loss_mask``. Inference: detections from the box predictor, then masks on
    the detected boxes.
    """

    @configurable
    def __init__(
        self,
        *,
        box_in_features: List[str],
        box_pooler: ROIPooler,
        box_head: nn.Module,
        box_predictor: nn.Module,
        mask_in_features: Optional[List[str]] = None,
        mask_pooler: Optional[ROIPooler] = None,
        mask_head: Optional[nn.Module] = None,
        **kwargs,
    ) -> None:
        """
        Args:
            box_in_features, box_pooler, box_head, box_predictor: the box branch.
            mask_in_features, mask_pooler, mask_head: the mask branch (all None: no masks).
            kwargs: the arguments of :class:`ROIHeads` (``num_classes``, sampling, matcher).
        """
        super().__init__(**kwargs)
        self.box_in_features = list(box_in_features)
        self.box_pooler = box_pooler
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.mask_on = mask_head is not None
        if self.mask_on:
            self.mask_in_features = list(mask_in_features)
            self.mask_pooler = mask_pooler
            self.mask_head = mask_head

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        in_features = roi_heads_in_features(cfg, input_shape)
        box_pooler, pooled_shape = roi_pooler(cfg.MODEL.ROI_BOX_HEAD, in_features, input_shape)
        box_head = build_box_head(cfg, pooled_shape)
        ret = super().from_config(cfg, input_shape)
        ret.update(box_in_features=in_features, box_pooler=box_pooler, box_head=box_head,
                   box_predictor=FastRCNNOutputLayers(cfg, box_head.output_shape))
        if cfg.MODEL.MASK_ON:
            mask_pooler, mask_shape = roi_pooler(cfg.MODEL.ROI_MASK_HEAD, in_features, input_shape)
            ret.update(mask_in_features=in_features, mask_pooler=mask_pooler,
                       mask_head=build_mask_head(cfg, mask_shape))
        return ret

    def forward(
        self,
        images,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
    ) -> Tuple[List[Instances], Dict[str, torch.Tensor]]:
        """
        Args:
            images: the input ImageList (unused; part of the ROI heads interface).
            features: backbone features by name.
            proposals: per image, Instances with ``proposal_boxes``.
            targets: per image, ground truth (training only).

        Returns:
            training: (sampled proposals, ``{"loss_cls", "loss_box_reg"[, "loss_mask"]}``);
            inference: (per image, Instances with ``pred_boxes``, ``scores``, ``pred_classes``
            and, with masks, ``pred_masks`` (D, 1, M, M) probabilities; ``{}``).
        """
        if self.training:
            proposals = self.label_and_sample_proposals(proposals, targets)
            losses = self._forward_box(features, proposals)
            if self.mask_on:
                losses.update(self._forward_mask(features, proposals))
            return proposals, losses
        pred_instances = self._forward_box(features, proposals)
        return self.forward_with_given_boxes(features, pred_instances), {}

    def _forward_box(self, features: Dict[str, torch.Tensor], proposals: List[Instances]):
        box_features = self.box_pooler([features[f] for f in self.box_in_features],
                                       [p.proposal_boxes for p in proposals])
        predictions = self.box_predictor(self.box_head(box_features))
        if self.training:
            return self.box_predictor.losses(predictions, proposals)
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances

    def _forward_mask(self, features: Dict[str, torch.Tensor], instances: List[Instances]):
        feature_list = [features[f] for f in self.mask_in_features]
        if self.training:
            instances = select_foreground_proposals(instances, self.num_classes)
            boxes = [p.proposal_boxes for p in instances]
        else:
            boxes = [p.pred_boxes for p in instances]
        return self.mask_head(self.mask_pooler(feature_list, boxes), instances)


_absent = absent_names(__name__, {"select_proposals_with_visible_keypoints": KEYPOINTS})


def __getattr__(name: str):
    """``Res5ROIHeads`` lives in ``res5_roi_heads`` (which imports this module)."""
    if name == "Res5ROIHeads":
        from .res5_roi_heads import Res5ROIHeads

        return Res5ROIHeads
    return _absent(name)
