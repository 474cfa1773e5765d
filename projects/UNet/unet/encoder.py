"""The U-Net's contracting path (Ronneberger et al. 2015) as a :class:`Backbone`."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from seg_research.config import configurable
from seg_research.layers import ShapeSpec, conv_norm_relu
from seg_research.modeling import BACKBONE_REGISTRY, Backbone

__all__ = ["UNetEncoder"]


@BACKBONE_REGISTRY.register()
class UNetEncoder(Backbone):
    """``depth`` levels of two 3×3 conv-norm-ReLU, a 2×2 max-pool (stride 2) between levels.

    Level ``i`` (1-based) has ``base_channels * 2**(i-1)`` channels at stride ``2**(i-1)``
    and is output as ``"enc<i>"``: the paper's encoder is ``depth=5, base_channels=64``
    (64 .. 1024 channels). Convs are padded ("same" size) instead of the paper's unpadded
    convs, so no cropping is needed and outputs align with the input.
    Input: float32 (N, in_channels, H, W); outputs ``enc<i>``: (N, C_i, ceil(H / 2**(i-1)),
    ceil(W / 2**(i-1))) (max-pools round up).
    """

    @configurable
    def __init__(self, *, depth: int = 5, base_channels: int = 64, norm: str = "BN", in_channels: int = 3) -> None:
        """
        Args:
            depth: number of levels (>= 2), i.e. ``depth - 1`` max-pools.
            base_channels: channels of the first level, doubled at each following level.
            norm: norm after each conv: "" (none, the paper), "BN", "SyncBN", "GN" (see
                :func:`seg_research.layers.get_norm`).
            in_channels: C of the input images.
        """
        super().__init__()
        if depth < 2:
            raise ValueError(f"A U-Net needs at least 2 levels (MODEL.UNET.DEPTH), got {depth}.")
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.levels = nn.ModuleDict()
        self._out_features, self._out_feature_channels, self._out_feature_strides = [], {}, {}
        channels = in_channels
        for i in range(depth):
            name, out_channels = f"enc{i + 1}", base_channels * 2**i
            self.levels[name] = nn.Sequential(
                conv_norm_relu(channels, out_channels, norm=norm), conv_norm_relu(out_channels, out_channels, norm=norm)
            )
            self._out_features.append(name)
            self._out_feature_channels[name] = out_channels
            self._out_feature_strides[name] = 2**i
            channels = out_channels

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[ShapeSpec] = None) -> dict:
        channels = input_shape.channels if input_shape is not None and input_shape.channels else None
        return {
            "depth": cfg.MODEL.UNET.DEPTH,
            "base_channels": cfg.MODEL.UNET.BASE_CHANNELS,
            "norm": cfg.MODEL.UNET.NORM,
            "in_channels": channels or len(cfg.MODEL.PIXEL_MEAN),
        }

    @property
    def size_divisibility(self) -> int:
        """Inputs padded to a multiple of the deepest stride pool without rounding."""
        return self._out_feature_strides[self._out_features[-1]]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """See the class docstring for shapes."""
        outputs = {}
        for i, (name, level) in enumerate(self.levels.items()):
            x = level(x if i == 0 else self.pool(x))
            outputs[name] = x
        return outputs
