from .meta_arch import META_ARCH_REGISTRY, build_model

__all__ = ["META_ARCH_REGISTRY", "build_model"]
from ..layers import ShapeSpec
from .backbone import BACKBONE_REGISTRY, Backbone, build_backbone

__all__ += ["BACKBONE_REGISTRY", "build_backbone", "Backbone", "ShapeSpec"]
