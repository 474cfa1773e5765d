"""``SemanticSegmentor``: a backbone and a semantic segmentation head."""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import torch
from torch import nn

from ...config import configurable
from ...structures import ImageList
from ..backbone import Backbone, build_backbone
from ..postprocessing import sem_seg_postprocess
from ..sem_seg_heads import build_sem_seg_head
from .build import META_ARCH_REGISTRY

__all__ = ["SemanticSegmentor"]


@META_ARCH_REGISTRY.register()
class SemanticSegmentor(nn.Module):
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
    ) -> None:
        """
        Args:
            backbone: feature extractor; its ``size_divisibility`` sets the batch padding.
            sem_seg_head: a head following the SEM_SEG_HEADS interface
                (``forward(features, targets)`` and ``ignore_value``).
            pixel_mean, pixel_std: per-channel normalization, 0-255 scale, in the images' channel order.
        """
        super().__init__()
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(f"pixel_mean {list(pixel_mean)} and pixel_std {list(pixel_std)} differ in length.")
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Union[nn.Module, Sequence[float]]]:
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "sem_seg_head": build_sem_seg_head(cfg, backbone.output_shape()),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """See the class docstring for the inputs and outputs."""
        missing = [i for i, x in enumerate(batched_inputs) if "sem_seg" not in x]
        if self.training and missing:
            raise ValueError(
                f"SemanticSegmentor training needs 'sem_seg' in every input; inputs {missing} have none. "
                "Train on a dataset whose records have 'sem_seg_file_name' (e.g. a *_sem_seg dataset)."
            )
        divisibility = self.backbone.size_divisibility
        images = ImageList.from_tensors(
            [(x["image"].to(self.device).float() - self.pixel_mean) / self.pixel_std for x in batched_inputs],
            divisibility,
        )
        features = self.backbone(images.tensor)

        if self.training:
            targets = ImageList.from_tensors(
                [x["sem_seg"].to(self.device) for x in batched_inputs], divisibility, self.sem_seg_head.ignore_value
            ).tensor
            _, losses = self.sem_seg_head(features, targets)
            return losses

        logits, _ = self.sem_seg_head(features)
        results = []
        for logit, x, image_size in zip(logits, batched_inputs, images.image_sizes):
            height, width = x.get("height", image_size[0]), x.get("width", image_size[1])
            results.append({"sem_seg": sem_seg_postprocess(logit, image_size, height, width)})
        return results
