"""A small from-scratch semantic segmenter: the engine's test model, not a library architecture.

Importing this module registers ``TinySemSegNet`` in ``META_ARCH_REGISTRY`` (and its test-time augmentation,
the semantic one), as a research project's package registers its modules; the configs beside it
(``tests/helpers/configs/``) name it. Tests import it; subprocesses run tools through ``run_tool.py``.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import configurable
from seg_research.layers import get_norm
from seg_research.modeling.image_input import ImageInputMixin, requested_size
from seg_research.modeling.meta_arch.build import META_ARCH_REGISTRY
from seg_research.modeling.postprocessing import sem_seg_postprocess
from seg_research.modeling.test_time_augmentation import TTA_WRAPPERS, SemanticSegmentorWithTTA

__all__ = ["TinySemSegNet"]


def _conv_norm_relu(cin: int, cout: int, stride: int, norm: str) -> nn.Sequential:
    norm_layer = get_norm(norm, cout)
    layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=norm_layer is None)]
    return nn.Sequential(*layers, *([norm_layer] if norm_layer is not None else []), nn.ReLU(inplace=True))


@META_ARCH_REGISTRY.register()
class TinySemSegNet(ImageInputMixin, nn.Module):
    """Encoder of ``len(widths)`` stride-2 conv-norm-ReLU stages, a 1×1 classifier on the
    concatenation of the last two stages (the deeper one upsampled), logits upsampled to
    the input size. Input/output follow the model I/O contract: ``sem_seg`` targets are
    int64 H×W with ``ignore_value``; inference returns ``sem_seg`` (C, height, width) logits.
    """

    @configurable
    def __init__(
        self,
        *,
        num_classes: int,
        widths: Sequence[int] = (16, 32, 64),
        norm: str = "BN",
        ignore_value: int = 255,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        size_divisibility: int = 8,
    ) -> None:
        super().__init__()
        stages, cin = [], 3
        for w in widths:
            stages.append(nn.Sequential(_conv_norm_relu(cin, w, 2, norm), _conv_norm_relu(w, w, 1, norm)))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.predictor = nn.Conv2d(widths[-1] + widths[-2], num_classes, 1)
        self.ignore_value = ignore_value
        self.size_divisibility = size_divisibility
        self.register_pixel_normalization(pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "widths": (cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM // 4, cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM // 2,
                       cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM),
            "norm": cfg.MODEL.SEM_SEG_HEAD.NORM,
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def padding_constraints(self) -> Dict[str, int]:
        """No backbone: the batch is padded to ``size_divisibility``."""
        return {"size_divisibility": self.size_divisibility}

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        images = self.preprocess_image(batched_inputs)
        features = []
        x = images.tensor
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        deep = F.interpolate(features[-1], size=features[-2].shape[-2:], mode="bilinear", align_corners=False)
        logits = self.predictor(torch.cat([features[-2], deep], dim=1))
        logits = F.interpolate(logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False)

        if self.training:
            targets = self.pad_targets(batched_inputs, "sem_seg", self.ignore_value)
            return {"loss_sem_seg": F.cross_entropy(logits, targets, ignore_index=self.ignore_value)}
        return [{"sem_seg": sem_seg_postprocess(logit, image_size, *requested_size(inputs, image_size))}
                for logit, inputs, image_size in zip(logits, batched_inputs, images.image_sizes, strict=True)]


TTA_WRAPPERS[TinySemSegNet] = SemanticSegmentorWithTTA
