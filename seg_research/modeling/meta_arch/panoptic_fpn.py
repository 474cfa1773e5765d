"""PanopticFPN (Kirillov et al. 2019): Mask R-CNN and a semantic FPN head on one backbone + FPN."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
from torch import nn

from ...config import ConfigError, configurable
from ...structures import Instances
from ..image_input import requested_size
from ..panoptic_fusion import combine_semantic_and_instance_outputs
from ..postprocessing import detector_postprocess, sem_seg_postprocess
from ..sem_seg_heads import build_sem_seg_head
from .build import META_ARCH_REGISTRY
from .rcnn import GeneralizedRCNN

__all__ = ["PanopticFPN"]


@META_ARCH_REGISTRY.register()
class PanopticFPN(GeneralizedRCNN):
    """One backbone + FPN feeding an instance branch (RPN + ROI heads, as :class:`GeneralizedRCNN`)
    and a semantic branch (``SEM_SEG_HEAD``) over the stuff classes plus one "things" class
    (detectron2's ``_separated`` convention: label 0 = any thing, 1..S = stuff, 255 = ignore).

    Input: list of dicts with ``image`` (uint8 or float (C, H, W), 0-255, ``INPUT.FORMAT`` channel
    order), optional ``height``/``width`` (original size) and, in training, ``instances`` (as for
    :class:`GeneralizedRCNN`, masks included) and ``sem_seg`` (int64 (H, W) stuff labels of the
    separated convention), which the DatasetMapper builds from a ``*_panoptic_separated`` record.

    Output: training: the instance losses (``loss_rpn_cls``, ``loss_rpn_loc``, ``loss_cls``,
    ``loss_box_reg``, ``loss_mask``) times ``instance_loss_weight``, and the semantic head's
    losses (``loss_sem_seg``, weighted by the head's ``loss_weight``, ``MODEL.SEM_SEG_HEAD.
    LOSS_WEIGHT``). Inference: per image, at (``height``, ``width``): ``sem_seg`` float (C, H, W)
    logits, ``instances`` (``pred_boxes`` XYXY absolute, ``scores``, ``pred_classes`` 0..K-1,
    ``pred_masks`` bool (D, H, W)) and, with ``combine_on``, ``panoptic_seg = (int32 (H, W) ids,
    segments_info)`` from :func:`combine_semantic_and_instance_outputs`.
    """

    @configurable
    def __init__(
        self,
        *,
        sem_seg_head: nn.Module,
        instance_loss_weight: float = 1.0,
        combine_on: bool = True,
        combine_overlap_thresh: float = 0.5,
        combine_stuff_area_thresh: int = 4096,
        combine_instances_score_thresh: float = 0.5,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            sem_seg_head: a SEM_SEG_HEADS head predicting 1 + S classes (see the class doc).
            instance_loss_weight: multiplies the RPN and ROI-heads losses.
            combine_on: add ``panoptic_seg`` to the inference outputs.
            combine_overlap_thresh, combine_stuff_area_thresh, combine_instances_score_thresh:
                ``overlap_threshold``, ``stuff_area_thresh`` and ``instances_score_thresh`` of
                :func:`combine_semantic_and_instance_outputs`.
            kwargs: the arguments of :class:`GeneralizedRCNN` (backbone, proposal_generator,
                roi_heads, pixel_mean, pixel_std, input_format).
        """
        super().__init__(**kwargs)
        self.sem_seg_head = sem_seg_head
        self.instance_loss_weight = instance_loss_weight
        self.combine_on = combine_on
        self.combine_overlap_thresh = combine_overlap_thresh
        self.combine_stuff_area_thresh = combine_stuff_area_thresh
        self.combine_instances_score_thresh = combine_instances_score_thresh

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Any]:
        if not cfg.MODEL.MASK_ON:
            raise ConfigError("PanopticFPN needs instance masks: set MODEL.MASK_ON True.")
        ret = super().from_config(cfg)
        combine = cfg.MODEL.PANOPTIC_FPN.COMBINE
        ret.update(
            sem_seg_head=build_sem_seg_head(cfg, ret["backbone"].output_shape()),
            instance_loss_weight=cfg.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT,
            combine_on=combine.ENABLED,
            combine_overlap_thresh=combine.OVERLAP_THRESH,
            combine_stuff_area_thresh=combine.STUFF_AREA_LIMIT,
            combine_instances_score_thresh=combine.INSTANCES_CONFIDENCE_THRESH,
        )
        return ret

    def forward(self, batched_inputs: List[Dict[str, Any]]):
        """Loss dict in training mode, per-image outputs otherwise (see the class doc)."""
        if not self.training:
            return self.inference(batched_inputs)
        missing = [i for i, x in enumerate(batched_inputs) if "instances" not in x or "sem_seg" not in x]
        if missing:
            raise ValueError(
                f"PanopticFPN training needs 'instances' and 'sem_seg' in every input; inputs {missing} lack one. "
                "Train on a '*_panoptic_separated' dataset (records with 'annotations' and 'sem_seg_file_name') "
                "with a training DatasetMapper and MODEL.MASK_ON True."
            )
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        gt_sem_seg = self.pad_targets(batched_inputs, "sem_seg", self.sem_seg_head.ignore_value)
        _, sem_seg_losses = self.sem_seg_head(features, gt_sem_seg)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        losses = {k: v * self.instance_loss_weight for k, v in {**proposal_losses, **detector_losses}.items()}
        losses.update(sem_seg_losses)
        return losses

    def inference(self, batched_inputs: List[Dict[str, Any]], do_postprocess: bool = True):
        """
        Args:
            do_postprocess: return per-image outputs at each input's ``height``/``width`` (class doc);
                False returns ``(detections, sem_seg logits)`` on the padded input: a list of
                Instances and a float (N, C, H_pad, W_pad) tensor.
        """
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        sem_seg_results, _ = self.sem_seg_head(features)
        proposals, _ = self.proposal_generator(images, features, None)
        detector_results, _ = self.roi_heads(images, features, proposals, None)
        if not do_postprocess:
            return detector_results, sem_seg_results
        return [self._postprocess(sem_seg, detections, inputs, image_size)
                for sem_seg, detections, inputs, image_size
                in zip(sem_seg_results, detector_results, batched_inputs, images.image_sizes, strict=True)]

    def _postprocess(self, sem_seg: torch.Tensor, detections: Instances, inputs: Dict[str, Any],
                     image_size: Tuple[int, int]) -> Dict[str, Any]:
        height, width = requested_size(inputs, image_size)
        output: Dict[str, Any] = {"sem_seg": sem_seg_postprocess(sem_seg, image_size, height, width),
                                  "instances": detector_postprocess(detections, height, width)}
        if self.combine_on:
            output["panoptic_seg"] = combine_semantic_and_instance_outputs(
                output["instances"], output["sem_seg"], self.combine_overlap_thresh,
                self.combine_stuff_area_thresh, self.combine_instances_score_thresh)
        return output
