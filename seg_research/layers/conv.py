"""The conv-norm(-ReLU) block every head and neck is made of."""
from __future__ import annotations

import functools

from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .norm import get_norm

__all__ = ["CONV_INITS", "conv_norm_relu"]

#: Weight initialisations by name (detectron2's ``c2_msra_fill`` and ``c2_xavier_fill``); biases start at 0.
CONV_INITS = {
    "msra": lambda weight: nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu"),
    "xavier": lambda weight: nn.init.kaiming_uniform_(weight, a=1),
}


def conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int = 3, *, norm: str = "", dilation: int = 1,
                   relu: bool = True, init: str = "msra") -> Conv2dNormActivation:
    """``kernel_size`` conv with ``dilation`` and same-size padding ((N, in_channels, H, W) ->
    (N, out_channels, H, W)), then ``norm`` (see :func:`get_norm`; "" for none: the conv then has a
    bias) and ReLU (``relu=False``: none). ``init`` names the weight initialisation in
    :data:`CONV_INITS`: "msra" (before a ReLU) or "xavier"."""
    if init not in CONV_INITS:
        raise ValueError(f"Unknown conv init '{init}'; use one of {sorted(CONV_INITS)}.")
    block = Conv2dNormActivation(
        in_channels, out_channels, kernel_size=kernel_size, dilation=dilation,
        norm_layer=functools.partial(get_norm, norm) if norm else None,
        activation_layer=nn.ReLU if relu else None,
    )
    conv = block[0]
    CONV_INITS[init](conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return block
