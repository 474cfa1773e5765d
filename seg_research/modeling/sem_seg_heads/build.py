"""SEM_SEG_HEADS registry and ``build_sem_seg_head``."""
from __future__ import annotations

from typing import Dict

from torch import nn

from ...config import ConfigError
from ...layers import ShapeSpec
from ...utils.registry import Registry

__all__ = ["SEM_SEG_HEADS_REGISTRY", "build_sem_seg_head"]

SEM_SEG_HEADS_REGISTRY = Registry("SEM_SEG_HEADS")
SEM_SEG_HEADS_REGISTRY.__doc__ = """
Registry for semantic segmentation heads. A registered class is called as
``cls(cfg, input_shape)`` with ``input_shape`` the backbone's ``output_shape()`` (feature name
-> :class:`ShapeSpec`). Its ``forward(features, targets=None)`` returns
``(logits (N, C, H, W) at the padded input size, {})`` in inference and ``(None, loss dict)``
in training, ``targets`` being int64 (N, H, W) class ids with ``ignore_value`` padding; it
exposes ``ignore_value`` so the meta-architecture pads targets with it.
"""


def build_sem_seg_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build ``cfg.MODEL.SEM_SEG_HEAD.NAME`` from the registry for backbone features ``input_shape``."""
    name = cfg.MODEL.SEM_SEG_HEAD.NAME
    if name not in SEM_SEG_HEADS_REGISTRY:
        raise ConfigError(
            f"MODEL.SEM_SEG_HEAD.NAME '{name}' is not registered. Registered: "
            f"{sorted(k for k, _ in SEM_SEG_HEADS_REGISTRY)}. A project must be imported before building its head."
        )
    return SEM_SEG_HEADS_REGISTRY.get(name)(cfg, input_shape)
