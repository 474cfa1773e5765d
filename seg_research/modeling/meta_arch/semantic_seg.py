"""``SemanticSegmentor``: a backbone and a semantic segmentation head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec
from ..backbone import Backbone, build_backbone
from ..image_input import ImageInputMixin, requested_size
from ..postprocessing import sem_seg_postprocess
from ..sem_seg_heads import SEM_SEG_HEADS_REGISTRY, SemSegFPNHead, build_sem_seg_head
from .build import META_ARCH_REGISTRY

# SEM_SEG_HEADS_REGISTRY, SemSegFPNHead and build_sem_seg_head live in ..sem_seg_heads; detectron2
# defines them here, so they are importable from here too.
__all__ = ["SemanticSegmentor", "SEM_SEG_HEADS_REGISTRY", "SemSegFPNHead", "build_sem_seg_head"]


@META_ARCH_REGISTRY.register()
class SemanticSegmentor(ImageInputMixin, nn.Module):
    """Semantic segmentation: normalize the images, pad them into one batch (to the
    backbone's ``size_divisibility``), run the backbone and the ``SEM_SEG_HEAD``.

    Inputs (model I/O contract): a list of dicts with ``image`` (C, H, W) uint8/float in
    ``INPUT.FORMAT`` channel order, 0-255; in training ``sem_seg`` int64 (H, W) class ids
    with the head's ``ignore_value`` for unlabeled pixels; optionally ``height``/``width``,
    the original image size. Training returns the head's loss dict; inference a list of
    ``{"sem_seg": float (C, height, width) logits}``, cropped to the unpadded image and
    resized to the record's ``height``/``width`` (the input size when they are absent).
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        sem_seg_head: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        aux_head: Optional[nn.Module] = None,
    ) -> None:
        """
        Args:
            backbone: feature extractor; its ``size_divisibility`` sets the batch padding.
            sem_seg_head: a head following the SEM_SEG_HEADS interface
                (``forward(features, targets)`` and ``ignore_value``).
            pixel_mean, pixel_std: per-channel normalization, 0-255 scale, in the images' channel order.
            aux_head: optional auxiliary head (SEM_SEG_HEADS interface) on the same features, used in
                training only; its losses are added as ``loss_aux_*``.
        """
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.aux_head = aux_head
        self.register_pixel_normalization(pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Union[nn.Module, Sequence[float]]]:
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "sem_seg_head": build_sem_seg_head(cfg, backbone.output_shape()),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "aux_head": build_aux_head(cfg, backbone.output_shape()),
        }

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """See the class docstring for the inputs and outputs."""
        missing = [i for i, x in enumerate(batched_inputs) if "sem_seg" not in x]
        if self.training and missing:
            raise ValueError(
                f"SemanticSegmentor training needs 'sem_seg' in every input; inputs {missing} have none. "
                "Train on a dataset whose records have 'sem_seg_file_name' (e.g. a *_sem_seg dataset)."
            )
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)

        if self.training:
            targets = self.pad_targets(batched_inputs, "sem_seg", self.sem_seg_head.ignore_value)
            _, losses = self.sem_seg_head(features, targets)
            if self.aux_head is not None:
                _, aux_losses = self.aux_head(features, targets)
                losses.update({key.replace("loss_", "loss_aux_", 1): value for key, value in aux_losses.items()})
            return losses

        logits, _ = self.sem_seg_head(features)
        return [{"sem_seg": sem_seg_postprocess(logit, image_size, *requested_size(inputs, image_size))}
                for logit, inputs, image_size in zip(logits, batched_inputs, images.image_sizes, strict=True)]


def build_aux_head(cfg, input_shape: Dict[str, ShapeSpec]) -> Optional[SemSegFPNHead]:
    """The auxiliary head of ``MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES`` (None when empty): a
    :class:`SemSegFPNHead` on those backbone features with the main head's classes, convs, norm
    and losses, its loss weighted by ``AUX_LOSS_WEIGHT``; it puts no pixel accuracy event (the
    main head's ``sem_seg_head/pixel_accuracy`` is the one logged)."""
    head = cfg.MODEL.SEM_SEG_HEAD
    names = list(head.AUX_IN_FEATURES)
    if not names:
        return None
    missing = [name for name in names if name not in input_shape]
    if missing:
        raise ConfigError(f"MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES {names}: {missing} are not backbone outputs "
                          f"{list(input_shape)}; add them to the backbone's OUT_FEATURES.")
    args = SemSegFPNHead.from_config(cfg, input_shape)
    args.update(input_shape={name: input_shape[name] for name in names},
                common_stride=min(input_shape[name].stride for name in names), loss_weight=head.AUX_LOSS_WEIGHT,
                pixel_accuracy_event=None)
    return SemSegFPNHead(**args)
