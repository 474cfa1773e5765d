"""The U-Net's building block: a 3×3 conv with optional norm, then ReLU."""
from __future__ import annotations

import functools

from torchvision.ops.misc import Conv2dNormActivation

from seg_research.layers import get_norm

__all__ = ["conv3x3_norm_relu"]


def conv3x3_norm_relu(in_channels: int, out_channels: int, norm: str) -> Conv2dNormActivation:
    """3×3 conv (padding 1: (N, in_channels, H, W) -> (N, out_channels, H, W)), ``norm`` (see
    :func:`seg_research.layers.get_norm`; "" for none, as in the paper: the conv then has a
    bias), ReLU."""
    return Conv2dNormActivation(
        in_channels, out_channels, kernel_size=3, norm_layer=functools.partial(get_norm, norm) if norm else None
    )
