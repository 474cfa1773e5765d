"""GeneralizedRCNN: backbone -> proposal generator -> ROI heads (Faster / Mask R-CNN)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...config import configurable
from ...data.detection_utils import convert_image_to_rgb
from ...structures import Instances
from ...utils.events import get_event_storage
from ...utils.visualizer import Visualizer
from ..backbone import Backbone, build_backbone
from ..image_input import ImageInputMixin, requested_size
from ..postprocessing import detector_postprocess
from ..proposal_generator import build_proposal_generator
from ..roi_heads import build_roi_heads
from .build import META_ARCH_REGISTRY

# detector_postprocess lives in ..postprocessing; importable from here as before.
__all__ = ["GeneralizedRCNN", "ProposalNetwork", "detector_postprocess"]


def _backbone_and_rpn(cfg) -> dict:
    """The constructor arguments GeneralizedRCNN and ProposalNetwork share, from ``cfg``."""
    backbone = build_backbone(cfg)
    return {
        "backbone": backbone,
        "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
        "pixel_mean": cfg.MODEL.PIXEL_MEAN,
        "pixel_std": cfg.MODEL.PIXEL_STD,
        "input_format": cfg.INPUT.FORMAT,
    }


def _gt_instances(model: nn.Module, batched_inputs: List[Dict[str, Any]]) -> List[Instances]:
    """Each input's ``instances`` on the model's device; a ValueError naming the inputs without any."""
    missing = [i for i, x in enumerate(batched_inputs) if "instances" not in x]
    if missing:
        raise ValueError(f"{type(model).__name__} training needs 'instances' in every input; inputs {missing} have "
                         "none. Build the loader with a training DatasetMapper (is_train=True).")
    return [x["instances"].to(model.device) for x in batched_inputs]


@META_ARCH_REGISTRY.register()
class GeneralizedRCNN(ImageInputMixin, nn.Module):
    """Faster R-CNN / Mask R-CNN.

    Input: list of dicts with ``image`` (uint8 or float (C, H, W), channels in ``input_format``
    order, 0-255), optional ``height``/``width`` (original size, default the image's) and, in
    training, ``instances`` (``gt_boxes`` XYXY absolute pixels of ``image``, ``gt_classes`` int64
    0..K-1, ``gt_masks`` with masks on).

    Output: training: the loss dict (``loss_rpn_cls``, ``loss_rpn_loc``, ``loss_cls``,
    ``loss_box_reg``[, ``loss_mask``]); inference: per image ``{"instances": Instances}`` at
    (``height``, ``width``) with ``pred_boxes``, ``scores``, ``pred_classes``[, ``pred_masks`` bool
    (D, height, width)].

    The padded batch is stored channels-last on the CPU (:attr:`channels_last_on_cpu`), so that the
    whole network runs in oneDNN's native layout.
    """

    channels_last_on_cpu = True

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        proposal_generator: nn.Module,
        roi_heads: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: Optional[str] = None,
        vis_period: int = 0,
    ) -> None:
        """
        Args:
            backbone, proposal_generator, roi_heads: the three stages.
            pixel_mean, pixel_std: per-channel normalization, 0-255 scale, in ``input_format`` order.
            input_format: channel order of the input images ("BGR", "RGB"), for documentation and
                for :meth:`visualize_training`.
            vis_period: every this many training iterations, put an image of the first input's GT
                boxes beside its top proposals into the event storage (TensorBoard); 0 never.
        """
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.input_format = input_format
        self.vis_period = vis_period
        if vis_period > 0 and input_format is None:
            raise ValueError("vis_period > 0 needs input_format (the channel order to draw the images in).")
        self.register_pixel_normalization(pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg) -> dict:
        ret = _backbone_and_rpn(cfg)
        return {**ret, "roi_heads": build_roi_heads(cfg, ret["backbone"].output_shape()), "vis_period": cfg.VIS_PERIOD}

    #: Proposals drawn by :meth:`visualize_training` (the best ones).
    num_vis_proposals = 20

    def visualize_training(self, batched_inputs: List[Dict[str, Any]], proposals: List[Instances]) -> None:
        """Put into the event storage one image: the first input with its GT boxes (left) and with
        its :attr:`num_vis_proposals` best proposals (right), both on the network input."""
        inputs, prop = batched_inputs[0], proposals[0]
        image = convert_image_to_rgb(inputs["image"].permute(1, 2, 0), self.input_format)
        gt = Visualizer(image).overlay_instances(boxes=inputs["instances"].gt_boxes).get_image()
        boxes = prop.proposal_boxes[: self.num_vis_proposals].tensor.detach().cpu().numpy()
        pred = Visualizer(image).overlay_instances(boxes=boxes).get_image()
        both = np.concatenate((gt, pred), axis=1).transpose(2, 0, 1)
        get_event_storage().put_image("Left: GT bounding boxes;  Right: Predicted proposals", torch.from_numpy(both))

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Loss dict in training mode, per-image outputs otherwise (see the class doc)."""
        if not self.training:
            return self.inference(batched_inputs)
        gt_instances = _gt_instances(self, batched_inputs)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        if self.vis_period > 0 and get_event_storage().iter % self.vis_period == 0:
            self.visualize_training(batched_inputs, proposals)
        return {**proposal_losses, **detector_losses}

    def inference(
        self, batched_inputs: List[Dict[str, torch.Tensor]], detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ) -> List:
        """
        Args:
            detected_instances: per image, known boxes (``pred_boxes``, ``pred_classes``) to only
                predict masks for; None runs the full detector.
            do_postprocess: rescale to each input's ``height``/``width`` and return
                ``[{"instances": ...}]``; False returns the raw Instances on the padded input.
        """
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        if detected_instances is None:
            proposals, _ = self.proposal_generator(images, features, None)
            results, _ = self.roi_heads(images, features, proposals, None)
        else:
            results = self.roi_heads.forward_with_given_boxes(features, [x.to(self.device) for x in detected_instances])
        if not do_postprocess:
            return results
        return [{"instances": detector_postprocess(result, *requested_size(inputs, image_size))}
                for result, inputs, image_size in zip(results, batched_inputs, images.image_sizes, strict=True)]


@META_ARCH_REGISTRY.register()
class ProposalNetwork(ImageInputMixin, nn.Module):
    """The RPN alone (detectron2's ``ProposalNetwork``, its ``rpn_R_50_*`` configs): backbone ->
    proposal generator.

    Input: as :class:`GeneralizedRCNN` (``instances`` with ``gt_boxes`` in training).

    Output: training: ``loss_rpn_cls``, ``loss_rpn_loc``; inference: per image
    ``{"proposals": Instances}`` at (``height``, ``width``) with ``proposal_boxes`` (XYXY pixels)
    and ``objectness_logits``, best first (at most ``MODEL.RPN.POST_NMS_TOPK_TEST``).
    """

    channels_last_on_cpu = True

    @configurable
    def __init__(self, *, backbone: Backbone, proposal_generator: nn.Module, pixel_mean: Sequence[float],
                 pixel_std: Sequence[float], input_format: Optional[str] = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.input_format = input_format
        self.register_pixel_normalization(pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return _backbone_and_rpn(cfg)

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Loss dict in training mode, per-image proposals otherwise (see the class doc)."""
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        gt_instances = _gt_instances(self, batched_inputs) if self.training else None
        proposals, losses = self.proposal_generator(images, features, gt_instances)
        if self.training:
            return losses
        return [{"proposals": detector_postprocess(result, *requested_size(inputs, image_size))}
                for result, inputs, image_size in zip(proposals, batched_inputs, images.image_sizes, strict=True)]
