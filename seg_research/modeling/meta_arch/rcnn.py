"""GeneralizedRCNN: backbone -> proposal generator -> ROI heads (Faster / Mask R-CNN)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ...config import configurable
from ...layers.mask_ops import paste_masks_in_image
from ...structures import ImageList, Instances
from ..backbone import Backbone, build_backbone
from ..proposal_generator import build_proposal_generator
from ..roi_heads import build_roi_heads
from .build import META_ARCH_REGISTRY

__all__ = ["GeneralizedRCNN", "detector_postprocess"]


def detector_postprocess(results: Instances, output_height: int, output_width: int,
                         mask_threshold: float = 0.5) -> Instances:
    """Rescale detections from the network input size to the record's original size.

    Args:
        results: detections on an input of size ``results.image_size`` (before padding), with
            ``pred_boxes`` and optionally ``pred_masks`` (D, 1, M, M) box-relative probabilities.
        output_height, output_width: the original image size.
        mask_threshold: probability above which a pasted mask pixel is foreground.

    Returns:
        Instances of size (output_height, output_width): boxes scaled and clipped (empty ones
        dropped); ``pred_masks`` bool (D, output_height, output_width), pasted with
        :func:`~seg_research.layers.paste_masks_in_image` (exact box corners, as detectron2).
    """
    scale_x = output_width / results.image_size[1]
    scale_y = output_height / results.image_size[0]
    output = Instances((output_height, output_width), **results.get_fields())
    boxes = output.pred_boxes.clone()
    boxes.scale(scale_x, scale_y)
    boxes.clip(output.image_size)
    output.pred_boxes = boxes
    output = output[boxes.nonempty()]
    if output.has("pred_masks"):
        output.pred_masks = paste_masks_in_image(output.pred_masks, output.pred_boxes.tensor, output.image_size,
                                                 threshold=mask_threshold)
    return output


@META_ARCH_REGISTRY.register()
class GeneralizedRCNN(nn.Module):
    """Faster R-CNN / Mask R-CNN.

    Input: list of dicts with ``image`` (uint8 or float (C, H, W), channels in ``input_format``
    order, 0-255), optional ``height``/``width`` (original size, default the image's) and, in
    training, ``instances`` (``gt_boxes`` XYXY absolute pixels of ``image``, ``gt_classes`` int64
    0..K-1, ``gt_masks`` with masks on).

    Output: training: the loss dict (``loss_rpn_cls``, ``loss_rpn_loc``, ``loss_cls``,
    ``loss_box_reg``[, ``loss_mask``]); inference: per image ``{"instances": Instances}`` at
    (``height``, ``width``) with ``pred_boxes``, ``scores``, ``pred_classes``[, ``pred_masks`` bool
    (D, height, width)].
    """

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
    ) -> None:
        """
        Args:
            backbone, proposal_generator, roi_heads: the three stages.
            pixel_mean, pixel_std: per-channel normalization, 0-255 scale, in ``input_format`` order.
            input_format: channel order of the input images ("BGR", "RGB"), for documentation and tools.
        """
        super().__init__()
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(f"pixel_mean {list(pixel_mean)} and pixel_std {list(pixel_std)} differ in length.")
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.input_format = input_format
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "roi_heads": build_roi_heads(cfg, backbone.output_shape()),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "input_format": cfg.INPUT.FORMAT,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict[str, torch.Tensor]]) -> ImageList:
        """Normalize each image and pad the batch to the backbone's size divisibility.

        On the CPU the batch is stored channels-last, so that the whole network runs in that
        memory layout (oneDNN's native one: no layout conversion around each convolution, and
        the ROI poolers read the features without a transposing copy). Values are unchanged.
        """
        images = [(x["image"].to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, **self.backbone.padding_constraints)
        if self.device.type == "cpu" and images.tensor.dim() == 4:
            images.tensor = images.tensor.contiguous(memory_format=torch.channels_last)
        return images

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Loss dict in training mode, per-image outputs otherwise (see the class doc)."""
        if not self.training:
            return self.inference(batched_inputs)
        missing = [i for i, x in enumerate(batched_inputs) if "instances" not in x]
        if missing:
            raise ValueError(f"GeneralizedRCNN training needs 'instances' in every input; inputs {missing} have "
                             "none. Build the loader with a training DatasetMapper (is_train=True).")
        images = self.preprocess_image(batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        features = self.backbone(images.tensor)
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
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
        outputs = []
        for result, inputs, image_size in zip(results, batched_inputs, images.image_sizes):
            height, width = inputs.get("height", image_size[0]), inputs.get("width", image_size[1])
            outputs.append({"instances": detector_postprocess(result, height, width)})
        return outputs
