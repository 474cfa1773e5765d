"""Anchors for dense detection heads: per-level cell anchors shifted over each feature map's grid.

Coordinates are XYXY absolute pixels of the padded input image. Aspect ratio means
height / width, as in detectron2 and torchvision.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import nn

from ..config import ConfigError, configurable
from ..layers import ShapeSpec
from ..structures import Boxes
from ..utils.absent import ROTATED, absent_names
from ..utils.registry import Registry

__all__ = ["ANCHOR_GENERATOR_REGISTRY", "DefaultAnchorGenerator", "build_anchor_generator", "cell_anchors"]

ANCHOR_GENERATOR_REGISTRY = Registry("ANCHOR_GENERATOR")
ANCHOR_GENERATOR_REGISTRY.__doc__ = """
Registry for anchor generators, called as ``obj(cfg, input_shape)`` with ``input_shape`` the
list of :class:`ShapeSpec` of the feature maps the anchors are laid on.
"""


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float], round_cells: bool = False) -> torch.Tensor:
    """(len(sizes) * len(aspect_ratios), 4) XYXY anchors centred on 0, ordered (size, ratio):
    ``size / sqrt(ratio)`` wide and ``size * sqrt(ratio)`` high (area ``size**2``), as
    detectron2 builds them. ``round_cells`` rounds the corners to whole pixels, as torchvision does."""
    anchors = []
    for size in sizes:
        for ratio in aspect_ratios:
            width = math.sqrt(size**2 / ratio)
            height = ratio * width
            anchors.append([-width / 2.0, -height / 2.0, width / 2.0, height / 2.0])
    cells = torch.tensor(anchors, dtype=torch.float32)
    return cells.round() if round_cells else cells


def _broadcast(params: Sequence[Sequence[float]], num_levels: int, key: str) -> List[List[float]]:
    """One list of values per level: a single list is used for every level."""
    params = [list(p) for p in params]
    if len(params) == 1:
        return params * num_levels
    if len(params) != num_levels:
        raise ConfigError(
            f"{key} has {len(params)} lists but there are {num_levels} feature levels: give one list per level "
            f"(e.g. [[32], [64], [128], [256], [512]] for p2..p6) or a single list used for all levels."
        )
    return params


@ANCHOR_GENERATOR_REGISTRY.register()
class DefaultAnchorGenerator(nn.Module):
    """Anchors of every size x aspect ratio at every feature-map location of every level.

    Cell anchors come from :func:`cell_anchors` (detectron2's, or torchvision's rounded ones with
    ``round_cells``); location ``(i, j)`` of a level of stride ``s`` shifts them by
    ``((j + offset) * s, (i + offset) * s)``.
    """

    @configurable
    def __init__(
        self, *, sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[Sequence[float]], strides: Sequence[int],
        offset: float = 0.0, round_cells: bool = False,
    ) -> None:
        """
        Args:
            sizes: per level, anchor sizes (sqrt of the area) in pixels; one list is used for all levels.
            aspect_ratios: per level, height / width ratios; one list is used for all levels.
            strides: stride (input pixels per feature pixel) of each level.
            offset: where in a feature pixel the anchor centre lies, in [0, 1): 0 is its top-left
                corner (detectron2's and torchvision's default), 0.5 its centre.
            round_cells: round the cell anchors to whole pixels (torchvision's anchors; weights
                trained with torchvision need it, detectron2's must not have it).
        """
        super().__init__()
        if not 0.0 <= offset < 1.0:
            raise ValueError(f"Anchor offset must be in [0, 1), got {offset}.")
        sizes = _broadcast(sizes, len(strides), "MODEL.ANCHOR_GENERATOR.SIZES")
        aspect_ratios = _broadcast(aspect_ratios, len(strides), "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
        cells = [cell_anchors(s, r, round_cells) for s, r in zip(sizes, aspect_ratios, strict=True)]
        self.strides = [int(s) for s in strides]
        self.offset = offset
        self._num_cells = [len(c) for c in cells]
        for level, cell in enumerate(cells):
            self.register_buffer(f"cell_anchors_{level}", cell, persistent=False)

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]) -> dict:
        return {
            "sizes": cfg.MODEL.ANCHOR_GENERATOR.SIZES,
            "aspect_ratios": cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS,
            "strides": [s.stride for s in input_shape],
            "offset": cfg.MODEL.ANCHOR_GENERATOR.OFFSET,
            "round_cells": cfg.MODEL.ANCHOR_GENERATOR.ROUND_CELLS,
        }

    @property
    def num_anchors(self) -> List[int]:
        """Anchors per feature-map location (A), for each level."""
        return list(self._num_cells)

    def forward(self, features: List[torch.Tensor]) -> List[Boxes]:
        """
        Args:
            features: per level, a (N, C, H_l, W_l) feature map (only its size is used).

        Returns:
            per level, :class:`Boxes` of H_l * W_l * A_l anchors ordered (row, column, cell anchor),
            the same for every image of the batch.
        """
        return [Boxes(anchors) for anchors in self.grid_anchors(features)]

    def grid_anchors(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        """:meth:`forward`'s anchors as float (H_l * W_l * A_l, 4) tensors: what an exported graph
        records (``Boxes`` checks its coordinates with a data-dependent branch)."""
        anchors = []
        for level, (feature, stride) in enumerate(zip(features, self.strides, strict=True)):
            cell = getattr(self, f"cell_anchors_{level}")
            height, width = feature.shape[-2:]
            shift_x = (torch.arange(width, device=cell.device, dtype=torch.float32) + self.offset) * stride
            shift_y = (torch.arange(height, device=cell.device, dtype=torch.float32) + self.offset) * stride
            grid_y, grid_x = torch.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = torch.stack([grid_x, grid_y, grid_x, grid_y], dim=-1).reshape(-1, 1, 4)
            anchors.append((shifts + cell.view(1, -1, 4)).reshape(-1, 4))
        return anchors


def build_anchor_generator(cfg, input_shape: List[ShapeSpec]) -> nn.Module:
    """Build ``cfg.MODEL.ANCHOR_GENERATOR.NAME`` for feature maps of shapes ``input_shape``."""
    name = cfg.MODEL.ANCHOR_GENERATOR.NAME
    if name not in ANCHOR_GENERATOR_REGISTRY:
        raise ConfigError(f"MODEL.ANCHOR_GENERATOR.NAME '{name}' is not registered. Registered: "
                          f"{sorted(k for k, _ in ANCHOR_GENERATOR_REGISTRY)}.")
    return ANCHOR_GENERATOR_REGISTRY.get(name)(cfg, input_shape)


__getattr__ = absent_names(__name__, {
    "RotatedAnchorGenerator": ROTATED,
    "BufferList": "not provided; DefaultAnchorGenerator keeps its cell anchors as registered buffers.",
})
