"""Small helpers both of Mask2Former's decoders use."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.layers import CONV_INITS

__all__ = ["xavier_conv", "activation_fn"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}


def xavier_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """``conv`` with detectron2's c2_xavier_fill: Kaiming-uniform (a=1) weights, zero bias."""
    CONV_INITS["xavier"](conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function named ``name``: "relu", "gelu" or "glu"."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation '{name}'; use one of {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]
