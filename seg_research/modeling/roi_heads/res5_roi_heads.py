"""C4 ROI heads: res5 of the ResNet runs on pooled res4 features, shared by the box and mask branches."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec
from ...structures import Boxes, Instances
from ..backbone.resnet import make_res5_stage
from ..poolers import ROIPooler
from .fast_rcnn import FastRCNNOutputLayers
from .mask_head import build_mask_head
from .roi_heads import (
    ROI_HEADS_REGISTRY,
    ROIHeads,
    foreground_masks,
    roi_heads_in_features,
    roi_pooler,
    select_foreground_proposals,
)

__all__ = ["Res5ROIHeads"]


@ROI_HEADS_REGISTRY.register()
class Res5ROIHeads(ROIHeads):
    """Faster/Mask R-CNN with a ResNet "C4" backbone (detectron2's ``Res5ROIHeads``).

    Every ROI is pooled (``pooler``, S×S, e.g. 14) from the single input feature map (res4) and
    goes through ``res5`` (the ResNet's last stage, stride 2: (R, C5, S/2, S/2)). The box branch
    averages that over space into ``box_predictor`` (Fast R-CNN, C5 inputs); the mask head
    (normally ``MaskRCNNConvUpsampleHead`` with no conv: deconv to 2·(S/2) then the predictor)
    takes the same res5 features of the foreground ROIs in training, and of the detected boxes
    in inference. Sampling and losses as in :class:`ROIHeads` / :class:`StandardROIHeads`.
    """

    @configurable
    def __init__(
        self,
        *,
        in_features: List[str],
        pooler: ROIPooler,
        res5: nn.Module,
        box_predictor: nn.Module,
        mask_head: Optional[nn.Module] = None,
        **kwargs,
    ) -> None:
        """
        Args:
            in_features: the one feature map the ROIs are pooled from (e.g. ``["res4"]``).
            pooler: ROIPooler with that map's scale.
            res5: (R, C, S, S) pooled features -> (R, C5, S', S') (see :func:`make_res5_stage`).
            box_predictor: FastRCNNOutputLayers on C5 channels.
            mask_head: on the (R, C5, S', S') features of the masked ROIs; None: no masks.
            kwargs: the arguments of :class:`ROIHeads` (``num_classes``, sampling, matcher).
        """
        super().__init__(**kwargs)
        if len(in_features) != 1:
            raise ValueError(f"Res5ROIHeads pools from one feature map, got in_features {list(in_features)}.")
        self.in_features = list(in_features)
        self.pooler = pooler
        self.res5 = res5
        self.box_predictor = box_predictor
        self.mask_on = mask_head is not None
        if self.mask_on:
            self.mask_head = mask_head

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        in_features = roi_heads_in_features(cfg, input_shape)
        if len(in_features) != 1:
            raise ConfigError(f"Res5ROIHeads pools from one feature map (the res4 of a C4 backbone); "
                              f"MODEL.ROI_HEADS.IN_FEATURES is {in_features}.")
        r = cfg.MODEL.RESNETS
        if r.RES5_DILATION != 1:
            raise ConfigError(f"MODEL.RESNETS.RES5_DILATION is {r.RES5_DILATION}, but Res5ROIHeads runs res5 with "
                              "stride 2 on pooled ROIs: set it to 1 (or use StandardROIHeads on a dilated res5, "
                              "configs/Base-RCNN-DilatedC5.yaml).")
        pooler, pooled_shape = roi_pooler(cfg.MODEL.ROI_BOX_HEAD, in_features, input_shape)
        res5 = make_res5_stage(r.DEPTH, norm=r.NORM, stride_in_1x1=r.STRIDE_IN_1X1, num_groups=r.NUM_GROUPS,
                               width_per_group=r.WIDTH_PER_GROUP)
        # res5 doubles the channels and halves the side (see make_res5_stage)
        channels, side = 2 * pooled_shape.channels, (pooled_shape.height + 1) // 2
        ret = super().from_config(cfg, input_shape)
        ret.update(in_features=in_features, pooler=pooler, res5=res5,
                   box_predictor=FastRCNNOutputLayers(cfg, ShapeSpec(channels=channels, height=1, width=1)))
        if cfg.MODEL.MASK_ON:
            ret["mask_head"] = build_mask_head(cfg, ShapeSpec(channels=channels, height=side, width=side))
        return ret

    def _shared_roi_transform(self, features: Dict[str, torch.Tensor], boxes: List[Boxes]) -> torch.Tensor:
        """(R, C5, S', S') res5 features of ``boxes`` (all images, in order)."""
        return self.res5(self.pooler([features[f] for f in self.in_features], boxes))

    def forward(
        self,
        images,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
    ) -> Tuple[List[Instances], Dict[str, torch.Tensor]]:
        """Same interface and outputs as :meth:`StandardROIHeads.forward` (masks: (D, 1, M, M)
        probabilities, M = 2 · S' with the default mask head)."""
        if self.training:
            proposals = self.label_and_sample_proposals(proposals, targets)
        box_features = self._shared_roi_transform(features, [p.proposal_boxes for p in proposals])
        predictions = self.box_predictor(box_features.mean(dim=(2, 3)))
        if self.training:
            losses = self.box_predictor.losses(predictions, proposals)
            if self.mask_on:
                foreground = torch.cat(foreground_masks(proposals, self.num_classes))
                losses.update(self.mask_head(box_features[foreground],
                                             select_foreground_proposals(proposals, self.num_classes)))
            return proposals, losses
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return self.forward_with_given_boxes(features, pred_instances), {}

    def _forward_mask(self, features: Dict[str, torch.Tensor], instances: List[Instances]) -> List[Instances]:
        """Inference: ``pred_masks`` of the detections ``instances`` (with ``pred_boxes``, ``pred_classes``)."""
        return self.mask_head(self._shared_roi_transform(features, [p.pred_boxes for p in instances]), instances)
