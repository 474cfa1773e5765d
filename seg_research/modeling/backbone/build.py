"""BACKBONE registry and ``build_backbone``."""
from __future__ import annotations

from typing import Optional

from ...config import ConfigError
from ...layers import ShapeSpec
from ...utils.registry import Registry
from .backbone import Backbone

__all__ = ["BACKBONE_REGISTRY", "build_backbone"]

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Registry for backbones. A registered object is called as ``obj(cfg, input_shape)`` with
``input_shape`` a :class:`ShapeSpec` of the input images, and must return a :class:`Backbone`.
"""


def build_backbone(cfg, input_shape: Optional[ShapeSpec] = None) -> Backbone:
    """Build ``cfg.MODEL.BACKBONE.NAME`` from the registry.

    Args:
        input_shape: the images' shape; defaults to ``ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))``.
    """
    if input_shape is None:
        input_shape = ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))
    name = cfg.MODEL.BACKBONE.NAME
    if name not in BACKBONE_REGISTRY:
        raise ConfigError(
            f"MODEL.BACKBONE.NAME '{name}' is not registered. Registered: {sorted(k for k, _ in BACKBONE_REGISTRY)}. "
            "A project must be imported before building its backbone."
        )
    backbone = BACKBONE_REGISTRY.get(name)(cfg, input_shape)
    if not isinstance(backbone, Backbone):
        raise TypeError(f"MODEL.BACKBONE.NAME '{name}' returned {type(backbone).__name__}, which is not a Backbone.")
    return backbone
