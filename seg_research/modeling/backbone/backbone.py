"""``Backbone``: the interface every backbone (ResNet, FPN, a project's own) implements."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Dict, List

import torch
from torch import nn

from ...layers import ShapeSpec

__all__ = ["Backbone"]


class Backbone(nn.Module, metaclass=ABCMeta):
    """A network mapping a batch of images to named feature maps.

    Subclasses implement ``forward`` and set, in ``__init__``:

    - ``_out_features``: list of output names, in the order of increasing stride;
    - ``_out_feature_channels``: name -> channels C;
    - ``_out_feature_strides``: name -> stride (input pixels per feature pixel).

    ``output_shape()`` is derived from them.
    """

    _out_features: List[str]
    _out_feature_channels: Dict[str, int]
    _out_feature_strides: Dict[str, int]

    @abstractmethod
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args:
            x: float32 images (N, C, H, W), already normalized by the meta-architecture.

        Returns:
            name -> feature map (N, C_name, ~H / stride_name, ~W / stride_name).
        """

    @property
    def size_divisibility(self) -> int:
        """Input H and W must be multiples of this for the outputs to align (0: no constraint).
        The meta-architecture pads its ``ImageList`` to it."""
        return 0

    @property
    def padding_constraints(self) -> Dict[str, int]:
        """Keyword arguments for ``ImageList.from_tensors`` that make padded inputs valid for
        this backbone: ``ImageList.from_tensors(images, **backbone.padding_constraints)``."""
        return {"size_divisibility": self.size_divisibility}

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """name -> ``ShapeSpec(channels, stride)`` for every output feature."""
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }
