"""Atrous Spatial Pyramid Pooling (Chen et al. 2017, DeepLabV3)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seg_research.layers import conv_norm_relu

__all__ = ["ASPP"]


class ASPP(nn.Module):
    """Parallel branches on one feature map, concatenated and projected:

    - a 1×1 conv-norm-ReLU;
    - one 3×3 conv-norm-ReLU per atrous rate in ``dilations``;
    - image pooling: global average pool, 1×1 conv-norm-ReLU, broadcast back to H×W;

    then a 1×1 conv-norm-ReLU from ``(2 + len(dilations)) * out_channels`` to
    ``out_channels`` channels and dropout.

    Unlike torchvision's ``ASPP`` (which hard-codes ``BatchNorm2d``), the norm is configurable:
    with "BN" the pooling branch normalizes N values per channel, so training needs more than
    one image per process; use "GN" or "SyncBN" for one image per GPU.
    """

    def __init__(
        self, in_channels: int, out_channels: int, dilations: Sequence[int], *, norm: str = "BN", dropout: float = 0.1
    ) -> None:
        """
        Args:
            in_channels: C of the input feature.
            out_channels: channels of every branch and of the output.
            dilations: atrous rates of the 3×3 branches, e.g. (6, 12, 18) at output stride 16,
                (12, 24, 36) at 8 (the paper's).
            norm: norm after each conv ("" for none).
            dropout: dropout probability after the projection.
        """
        super().__init__()
        if not dilations or any(d < 1 for d in dilations):
            raise ValueError(
                f"ASPP needs positive atrous rates (MODEL.SEM_SEG_HEAD.ASPP_DILATIONS), got {list(dilations)}."
            )
        self.branches = nn.ModuleList(
            [conv_norm_relu(in_channels, out_channels, 1, norm=norm)]
            + [conv_norm_relu(in_channels, out_channels, 3, norm=norm, dilation=d) for d in dilations]
        )
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_norm_relu(in_channels, out_channels, 1, norm=norm))
        self.project = nn.Sequential(
            conv_norm_relu((len(dilations) + 2) * out_channels, out_channels, 1, norm=norm), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W)."""
        pooled = self.pooling(x).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))
