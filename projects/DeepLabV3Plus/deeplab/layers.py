"""DeepLab's building block: a (dilated) conv with optional norm, then ReLU."""
from __future__ import annotations

import functools

from torchvision.ops.misc import Conv2dNormActivation

from seg_research.layers import get_norm

__all__ = ["conv_norm_relu"]


def conv_norm_relu(
    in_channels: int, out_channels: int, kernel_size: int, norm: str, dilation: int = 1
) -> Conv2dNormActivation:
    """``kernel_size`` conv with ``dilation`` and same-size padding ((N, in_channels, H, W) ->
    (N, out_channels, H, W)), ``norm`` (see :func:`seg_research.layers.get_norm`; "" for none,
    the conv then has a bias), ReLU."""
    return Conv2dNormActivation(
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        dilation=dilation,
        norm_layer=functools.partial(get_norm, norm) if norm else None,
    )
