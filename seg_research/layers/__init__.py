"""Small building blocks shared by the models: shape specs and normalization layers."""
from .norm import NORM_LAYERS, FrozenBatchNorm2d, convert_frozen_batchnorm, get_norm
from .shape_spec import ShapeSpec

__all__ = ["ShapeSpec", "NORM_LAYERS", "FrozenBatchNorm2d", "convert_frozen_batchnorm", "get_norm"]
