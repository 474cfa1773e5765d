"""Mask heads: pooled ROI features -> per-class M×M mask logits; training loss and inference."""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec, conv_norm_relu
from ...layers.deconv_predictor import deconv_relu_class_logits
from ...structures import Instances
from ...utils.absent import MASK_HEAD_BASE, absent_names
from ...utils.events import current_event_storage
from ...utils.registry import Registry

__all__ = ["ROI_MASK_HEAD_REGISTRY", "build_mask_head", "MaskRCNNConvUpsampleHead", "mask_rcnn_loss",
           "mask_rcnn_inference"]

ROI_MASK_HEAD_REGISTRY = Registry("ROI_MASK_HEAD")
ROI_MASK_HEAD_REGISTRY.__doc__ = """
Registry for mask heads, called as ``obj(cfg, input_shape)`` with ``input_shape`` the
:class:`ShapeSpec` of the pooled ROI features. ``forward(x, instances)`` returns
``{"loss_mask": ...}`` in training and the instances with ``pred_masks`` in inference.
"""


def _put_mask_stats(logits: torch.Tensor, gt_foreground: torch.Tensor) -> None:
    """Inside an ``EventStorage``, put detectron2's mask diagnostics over all M×M pixels of the
    foreground ROIs, a pixel being predicted foreground where its logit is > 0:

    - ``mask_rcnn/accuracy``: pixels whose prediction equals the target / all pixels;
    - ``mask_rcnn/false_positive``: pixels predicted foreground where the target is background /
      target-background pixels (denominator at least 1);
    - ``mask_rcnn/false_negative``: pixels predicted background where the target is foreground /
      target-foreground pixels (denominator at least 1).

    Args:
        logits: float (R, M, M) mask logits of each ROI's ground-truth class.
        gt_foreground: bool (R, M, M) targets (the loss's, thresholded at 0.5).
    """
    storage = current_event_storage()
    if storage is None:
        return
    pred = logits.detach() > 0
    wrong = pred != gt_foreground
    num_wrong, num_fg, num_fp, num_fn = torch.stack([  # one sync for the four counts
        wrong.count_nonzero(), gt_foreground.count_nonzero(), (wrong & ~gt_foreground).count_nonzero(),
        (wrong & gt_foreground).count_nonzero(),
    ]).tolist()
    num_pixels = wrong.numel()
    storage.put_scalar("mask_rcnn/accuracy", 1.0 - num_wrong / max(num_pixels, 1))
    storage.put_scalar("mask_rcnn/false_positive", num_fp / max(num_pixels - num_fg, 1))
    storage.put_scalar("mask_rcnn/false_negative", num_fn / max(num_fg, 1))


def mask_rcnn_loss(pred_mask_logits: torch.Tensor, instances: List[Instances]) -> torch.Tensor:
    """Per-pixel binary cross-entropy of each ROI's ground-truth-class mask (mean over pixels).

    Args:
        pred_mask_logits: float (R, K, M, M) for the foreground ROIs of ``instances``, in
            order; or (R, 1, M, M): class-agnostic masks, or only the logits of each ROI's
            ground-truth class (:meth:`MaskRCNNConvUpsampleHead.class_logits`).
        instances: per image, foreground ROIs with ``proposal_boxes``, ``gt_classes`` and
            ``gt_masks`` (PolygonMasks or BitMasks, the matched ground truth of each ROI).

    Returns:
        Scalar loss; 0 (with a gradient path) when there is no foreground ROI. Targets are the
        ground-truth masks cropped to each ROI and resampled to M×M
        (``gt_masks.crop_and_resize``), thresholded at 0.5. Inside an ``EventStorage`` (a
        trainer), with at least one foreground ROI, also puts ``mask_rcnn/accuracy``,
        ``mask_rcnn/false_positive`` and ``mask_rcnn/false_negative`` (see :func:`_put_mask_stats`).
    """
    mask_size = pred_mask_logits.shape[-1]
    if pred_mask_logits.shape[0] == 0:
        return pred_mask_logits.sum() * 0
    targets = torch.cat([
        p.gt_masks.crop_and_resize(p.proposal_boxes.tensor, mask_size).to(pred_mask_logits.device)
        for p in instances if len(p) > 0
    ])
    if pred_mask_logits.shape[1] == 1:
        logits = pred_mask_logits[:, 0]
    else:
        gt_classes = torch.cat([p.gt_classes for p in instances])
        logits = pred_mask_logits[torch.arange(len(gt_classes), device=gt_classes.device), gt_classes]
    gt_foreground = targets >= 0.5
    _put_mask_stats(logits, gt_foreground)
    return F.binary_cross_entropy_with_logits(logits, gt_foreground.to(logits.dtype), reduction="mean")


def mask_rcnn_inference(pred_mask_logits: torch.Tensor, pred_instances: List[Instances]) -> None:
    """Set ``pred_masks``: float (D, 1, M, M) probabilities of the predicted class, in [0, 1],
    on each image's Instances (boxes-relative; pasted into the image by ``detector_postprocess``).

    Args:
        pred_mask_logits: (D, K, M, M) (or (D, 1, M, M)) for all detections of all images, in order.
        pred_instances: per image, detections with ``pred_classes``.
    """
    if pred_mask_logits.shape[1] == 1:
        probs = pred_mask_logits.sigmoid()
    else:
        classes = torch.cat([p.pred_classes for p in pred_instances])
        probs = pred_mask_logits[torch.arange(len(classes), device=classes.device), classes][:, None].sigmoid()
    for probs_per_image, instances in zip(probs.split([len(p) for p in pred_instances]), pred_instances, strict=True):
        instances.pred_masks = probs_per_image


@ROI_MASK_HEAD_REGISTRY.register()
class MaskRCNNConvUpsampleHead(nn.Module):
    """``mask_fcn1..K`` (3×3 conv + norm + ReLU), ``deconv`` (2×2 stride-2 transposed conv + ReLU),
    ``predictor`` (1×1 conv to one logit map per class).

    Input: (R, C, S, S) pooled features. Logits: (R, num_classes, 2S, 2S).
    """

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, num_classes: int, conv_dims: Sequence[int], conv_norm: str = "",
                 loss_weight: float = 1.0) -> None:
        """
        Args:
            input_shape: channels of the pooled features.
            num_classes: masks predicted per ROI (K, or 1 for class-agnostic masks).
            conv_dims: output channels of each conv, then of the deconv (at least one entry).
            conv_norm: norm after each conv ("" for none).
            loss_weight: multiplies ``loss_mask``.
        """
        super().__init__()
        if len(conv_dims) < 1:
            raise ValueError("MaskRCNNConvUpsampleHead needs conv_dims with at least one entry (the deconv's channels).")
        channels = input_shape.channels
        for k, dim in enumerate(conv_dims[:-1]):
            self.add_module(f"mask_fcn{k + 1}", conv_norm_relu(channels, dim, norm=conv_norm))
            channels = dim
        self.deconv = nn.ConvTranspose2d(channels, conv_dims[-1], kernel_size=2, stride=2)
        self.predictor = nn.Conv2d(conv_dims[-1], num_classes, kernel_size=1)
        nn.init.kaiming_normal_(self.deconv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)
        self.num_convs = len(conv_dims) - 1
        self.loss_weight = loss_weight

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> dict:
        head = cfg.MODEL.ROI_MASK_HEAD
        return {
            "input_shape": input_shape,
            "num_classes": 1 if head.CLS_AGNOSTIC_MASK else cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "conv_dims": [head.CONV_DIM] * (head.NUM_CONV + 1),
            "conv_norm": head.NORM,
        }

    def upsampled(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, S, S) features -> (R, conv_dims[-1], 2S, 2S) features before the predictor."""
        return F.relu(self.deconv(self.convs(x)))

    def convs(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, S, S) features -> (R, conv_dims[-2], S, S) after the 3×3 convs."""
        for k in range(self.num_convs):
            x = getattr(self, f"mask_fcn{k + 1}")(x)
        return x

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, S, S) features -> (R, num_classes, 2S, 2S) mask logits."""
        return self.predictor(self.upsampled(x))

    def class_logits(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """(R, 1, 2S, 2S) logits of class ``classes[r]`` for each ROI r (int64 (R,)).

        The same numbers as ``self.layers(x)[range(R), classes][:, None]`` without computing the
        other K - 1 maps (their loss gradient is zero, and inference keeps only the predicted
        class): the deconv, ReLU and the predictor's filter of each ROI's class run fused
        (:func:`deconv_relu_class_logits`), so the (R, D, 2S, 2S) upsampled features are never stored.
        """
        x = self.convs(x)
        if self.predictor.out_channels == 1 or len(x) == 0:
            return self.predictor(F.relu(self.deconv(x)))
        logits = deconv_relu_class_logits(x, self.deconv.weight, self.deconv.bias,
                                          self.predictor.weight[classes, :, 0, 0], self.predictor.bias[classes])
        return logits[:, None]

    def forward(self, x: torch.Tensor, instances: List[Instances]) -> Union[Dict[str, torch.Tensor], List[Instances]]:
        """
        Args:
            x: (R, C, S, S) features of the ROIs of ``instances`` (all images, in order).
            instances: training: per image, foreground proposals (see :func:`mask_rcnn_loss`);
                inference: per image, detections with ``pred_classes``.
        """
        if self.training:
            logits = self.class_logits(x, torch.cat([p.gt_classes for p in instances]))
            return {"loss_mask": mask_rcnn_loss(logits, instances) * self.loss_weight}
        mask_rcnn_inference(self.class_logits(x, torch.cat([p.pred_classes for p in instances])), instances)
        return instances


def build_mask_head(cfg, input_shape: ShapeSpec) -> nn.Module:
    """Build ``cfg.MODEL.ROI_MASK_HEAD.NAME``."""
    name = cfg.MODEL.ROI_MASK_HEAD.NAME
    if name not in ROI_MASK_HEAD_REGISTRY:
        raise ConfigError(f"MODEL.ROI_MASK_HEAD.NAME '{name}' is not registered. Registered: "
                          f"{sorted(k for k, _ in ROI_MASK_HEAD_REGISTRY)}.")
    return ROI_MASK_HEAD_REGISTRY.get(name)(cfg, input_shape)


__getattr__ = absent_names(__name__, {
    "BaseMaskRCNNHead": MASK_HEAD_BASE,
})
