"""Feature Pyramid Network on top of a bottom-up backbone.

Written here rather than wrapping ``torchvision.ops.FeaturePyramidNetwork``, which names
outputs after its inputs, has no "avg" fusion, and no stride bookkeeping for
``output_shape()``. Each conv is a ``torchvision.ops.misc.Conv2dNormActivation`` (conv, then
the norm when there is one, no activation; bias only without norm), the same block torchvision's
FPN uses, so the parameter layout is::

    fpn_lateral{s}.0.weight / .bias      1×1 lateral conv of stage s (s = log2(stride))
    fpn_lateral{s}.1.*                   its norm (only with a norm)
    fpn_output{s}.0.weight / .bias       3×3 output conv producing p{s}
    fpn_output{s}.1.*
    bottom_up.*                          the bottom-up backbone

torchvision's ``maskrcnn_resnet50_fpn`` maps as ``backbone.fpn.inner_blocks.{i}.0 ->
fpn_lateral{i+2}.0``, ``backbone.fpn.layer_blocks.{i}.0 -> fpn_output{i+2}.0``; detectron2's
as ``fpn_lateral{s}.weight -> fpn_lateral{s}.0.weight``, ``fpn_lateral{s}.norm.* -> fpn_lateral{s}.1.*``.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec, conv_norm_relu
from ...utils.absent import ONE_STAGE, absent_names
from .backbone import Backbone
from .build import BACKBONE_REGISTRY
from .resnet import ResNet

__all__ = ["FPN", "LastLevelMaxPool", "build_resnet_fpn_backbone"]

__getattr__ = absent_names(__name__, {"build_retinanet_resnet_fpn_backbone": ONE_STAGE})

_FUSE_TYPES = ("sum", "avg")


class LastLevelMaxPool(nn.Module):
    """Top block adding one level: ``p6 = max_pool2d(p5, kernel_size=1, stride=2)``, i.e. every
    second pixel of p5, (N, C, ceil(H5 / 2), ceil(W5 / 2)).

    Top-block interface used by :class:`FPN`: ``num_levels`` (levels added, each at twice the
    previous stride), ``in_feature`` (an FPN output or bottom-up feature name it reads), and
    ``forward(x) -> list of num_levels tensors``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.num_levels = 1
        self.in_feature = "p5"

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [F.max_pool2d(x, kernel_size=1, stride=2, padding=0)]


class FPN(Backbone):
    """FPN: outputs ``p{s}`` (s = log2 of the stride) for each of ``in_features``, plus the
    levels added by ``top_block``; all have ``out_channels`` channels.

    For the coarsest input: ``p = output(lateral(c))``; for the others, from coarse to fine:
    ``m = lateral(c) + nearest_upsample(m_coarser)`` (divided by 2 when ``fuse_type="avg"``),
    ``p = output(m)``. The upsampling goes to the lateral's exact size, which is 2× when the
    input is padded to ``size_divisibility`` (the stride of the last in_feature).
    """

    @configurable
    def __init__(
        self,
        *,
        bottom_up: Backbone,
        in_features: Sequence[str],
        out_channels: int,
        norm: str = "",
        top_block: Optional[nn.Module] = None,
        fuse_type: str = "sum",
    ) -> None:
        """
        Args:
            bottom_up: backbone whose outputs include ``in_features``.
            in_features: bottom-up feature names, by increasing stride; each stride must be a
                power of 2 and twice the previous one (e.g. ["res2", "res3", "res4", "res5"]).
            out_channels: channels of every output.
            norm: norm after each conv ("" for none; see :func:`get_norm`).
            top_block: module adding coarser levels (e.g. :class:`LastLevelMaxPool`), or None.
            fuse_type: "sum" or "avg" of the lateral and upsampled top-down maps.
        """
        super().__init__()
        input_shapes = bottom_up.output_shape()
        missing = [name for name in in_features if name not in input_shapes]
        if not in_features or missing:
            raise ValueError(
                f"FPN in_features {list(in_features)} must be a non-empty subset of the bottom-up outputs "
                f"{list(input_shapes)}. With build_resnet_fpn_backbone, MODEL.RESNETS.OUT_FEATURES must "
                "include every name in MODEL.FPN.IN_FEATURES."
            )
        if fuse_type not in _FUSE_TYPES:
            raise ValueError(f"FPN fuse_type must be one of {_FUSE_TYPES}, got '{fuse_type}'.")
        strides = [input_shapes[name].stride for name in in_features]
        if any(s & (s - 1) for s in strides) or any(b != 2 * a for a, b in zip(strides, strides[1:], strict=False)):
            raise ValueError(
                f"FPN in_features {list(in_features)} have strides {strides}; each must be a power of 2 and "
                "twice the previous one (a dilated res5 has the stride of res4: remove res5 from them, or set "
                "MODEL.RESNETS.RES5_DILATION 1)."
            )

        self.bottom_up = bottom_up
        self.in_features = list(in_features)
        self.fuse_type = fuse_type
        self.top_block = top_block
        stages = [int(math.log2(s)) for s in strides]
        self._in_stages = list(zip(in_features, stages, strict=True))
        for name, stage in self._in_stages:
            lateral = conv_norm_relu(input_shapes[name].channels, out_channels, 1, norm=norm, relu=False, init="xavier")
            output = conv_norm_relu(out_channels, out_channels, 3, norm=norm, relu=False, init="xavier")
            self.add_module(f"fpn_lateral{stage}", lateral)
            self.add_module(f"fpn_output{stage}", output)
        self._out_feature_strides = {f"p{s}": 2**s for s in stages}
        if top_block is not None:
            if top_block.in_feature not in self._out_feature_strides and top_block.in_feature not in input_shapes:
                raise ValueError(
                    f"FPN top_block reads '{top_block.in_feature}', which is neither an FPN output "
                    f"{list(self._out_feature_strides)} nor a bottom-up output {list(input_shapes)}."
                )
            for s in range(stages[-1] + 1, stages[-1] + 1 + top_block.num_levels):
                self._out_feature_strides[f"p{s}"] = 2**s
        self._out_features = list(self._out_feature_strides)
        self._out_feature_channels = {name: out_channels for name in self._out_features}
        self._size_divisibility = strides[-1]

    @classmethod
    def from_config(cls, cfg, bottom_up: Backbone) -> dict:
        if not cfg.MODEL.FPN.IN_FEATURES:
            raise ConfigError(
                'MODEL.FPN.IN_FEATURES is empty: set it, e.g. ["res2", "res3", "res4", "res5"] '
                "(and MODEL.RESNETS.OUT_FEATURES to the same list)."
            )
        return {
            "bottom_up": bottom_up,
            "in_features": list(cfg.MODEL.FPN.IN_FEATURES),
            "out_channels": cfg.MODEL.FPN.OUT_CHANNELS,
            "norm": cfg.MODEL.FPN.NORM,
            "top_block": LastLevelMaxPool(),
            "fuse_type": cfg.MODEL.FPN.FUSE_TYPE,
        }

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args:
            x: float32 (N, C, H, W) images, H and W multiples of ``size_divisibility``.

        Returns:
            "p{s}" -> (N, out_channels, H / 2**s, W / 2**s), finest first.
        """
        bottom_up_features = self.bottom_up(x)
        results: List[torch.Tensor] = []
        merged: Optional[torch.Tensor] = None
        for name, stage in reversed(self._in_stages):
            lateral = getattr(self, f"fpn_lateral{stage}")(bottom_up_features[name])
            if merged is not None:
                lateral = lateral + F.interpolate(merged, size=lateral.shape[-2:], mode="nearest")
                if self.fuse_type == "avg":
                    lateral = lateral / 2
            merged = lateral
            results.insert(0, getattr(self, f"fpn_output{stage}")(merged))
        # _out_features ends with the top block's levels, which are added below
        outputs = dict(zip(self._out_features[:len(self._in_stages)], results, strict=True))
        if self.top_block is not None:
            source = outputs.get(self.top_block.in_feature)
            if source is None:
                source = bottom_up_features[self.top_block.in_feature]
            outputs.update(zip(self._out_features[len(results):], self.top_block(source), strict=True))
        return outputs


@BACKBONE_REGISTRY.register()
def build_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """:class:`ResNet` (``MODEL.RESNETS.*``) + :class:`FPN` (``MODEL.FPN.*``) with a
    :class:`LastLevelMaxPool` top block: p2..p6 for IN_FEATURES res2..res5."""
    return FPN(cfg, bottom_up=ResNet(cfg, input_shape=input_shape))
