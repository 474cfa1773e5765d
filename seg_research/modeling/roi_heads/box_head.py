"""Box heads: pooled ROI features (R, C, S, S) -> one feature vector per ROI."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec, conv_norm_relu
from ...utils.registry import Registry

__all__ = ["ROI_BOX_HEAD_REGISTRY", "build_box_head", "FastRCNNConvFCHead", "linear_as_conv"]

ROI_BOX_HEAD_REGISTRY = Registry("ROI_BOX_HEAD")
ROI_BOX_HEAD_REGISTRY.__doc__ = """
Registry for box heads, called as ``obj(cfg, input_shape)`` with ``input_shape`` the
:class:`ShapeSpec` (channels, height, width) of the pooled ROI features.
"""


def linear_as_conv(x: torch.Tensor, fc: nn.Linear) -> torch.Tensor:
    """``fc(x.flatten(1))`` for (R, C, H, W) ``x`` (C·H·W = ``fc.in_features``), computed as a
    convolution whose kernel covers the whole (C, H, W) input: ``fc``'s weight viewed as
    (out_features, C, H, W), no copy of ``x`` or of the weight, in any memory format.

    The same sums as the matrix product; on the CPU oneDNN's convolution runs them, forward and
    both gradients, about twice as fast as the sgemm behind ``F.linear`` (box head ``fc1`` of
    protocol (b) in benchmarks/README.md: 2048 × 12544 × 1024 in 0.46 s instead of 0.92 s).
    Returns (R, out_features).
    """
    weight = fc.weight.view(fc.out_features, *x.shape[1:])
    return F.conv2d(x, weight, fc.bias).flatten(1)


@ROI_BOX_HEAD_REGISTRY.register()
class FastRCNNConvFCHead(nn.Sequential):
    """``conv1..convK`` (3×3 conv + norm + ReLU), flatten, ``fc1..fcM`` (Linear + ReLU).

    Input: float (R, C, S, S) pooled features. Output: (R, fc_dims[-1]) (or the conv output
    when there is no fc).
    """

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, conv_dims: Sequence[int], fc_dims: Sequence[int],
                 conv_norm: str = "") -> None:
        """
        Args:
            input_shape: channels, height and width of the pooled features.
            conv_dims: output channels of each conv.
            fc_dims: output size of each fully-connected layer.
            conv_norm: norm after each conv ("" for none).
        """
        super().__init__()
        if not conv_dims and not fc_dims:
            raise ValueError("FastRCNNConvFCHead needs at least one conv or fc layer (MODEL.ROI_BOX_HEAD.NUM_CONV/NUM_FC).")
        channels = input_shape.channels
        for k, dim in enumerate(conv_dims):
            self.add_module(f"conv{k + 1}", conv_norm_relu(channels, dim, norm=conv_norm))
            channels = dim
        self._output_size = (channels, input_shape.height, input_shape.width)
        if fc_dims:
            self.add_module("flatten", nn.Flatten())
            size = channels * input_shape.height * input_shape.width
            for k, dim in enumerate(fc_dims):
                fc = nn.Linear(size, dim)
                nn.init.kaiming_uniform_(fc.weight, a=1)
                nn.init.zeros_(fc.bias)
                self.add_module(f"fc{k + 1}", fc)
                self.add_module(f"fc_relu{k + 1}", nn.ReLU())
                size = dim
            self._output_size = (size,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, S, S) pooled features -> (R, fc_dims[-1]) (or the conv output without fc)."""
        modules = iter(self)
        for module in modules:
            if isinstance(module, nn.Flatten) and x.device.type == "cpu":
                x = linear_as_conv(x, next(modules))  # flatten + fc1 as one convolution (see linear_as_conv)
            else:
                x = module(x)
        return x

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> dict:
        head = cfg.MODEL.ROI_BOX_HEAD
        return {
            "input_shape": input_shape,
            "conv_dims": [head.CONV_DIM] * head.NUM_CONV,
            "fc_dims": [head.FC_DIM] * head.NUM_FC,
            "conv_norm": head.NORM,
        }

    @property
    def output_shape(self) -> ShapeSpec:
        """Channels (and height/width for a conv-only head) of the per-ROI output."""
        if len(self._output_size) == 1:
            return ShapeSpec(channels=self._output_size[0])
        return ShapeSpec(channels=self._output_size[0], height=self._output_size[1], width=self._output_size[2])


def build_box_head(cfg, input_shape: ShapeSpec) -> nn.Module:
    """Build ``cfg.MODEL.ROI_BOX_HEAD.NAME``."""
    name = cfg.MODEL.ROI_BOX_HEAD.NAME
    if name not in ROI_BOX_HEAD_REGISTRY:
        raise ConfigError(f"MODEL.ROI_BOX_HEAD.NAME '{name}' is not registered (Base-RCNN-FPN.yaml uses "
                          f"'FastRCNNConvFCHead'). Registered: {sorted(k for k, _ in ROI_BOX_HEAD_REGISTRY)}.")
    return ROI_BOX_HEAD_REGISTRY.get(name)(cfg, input_shape)
