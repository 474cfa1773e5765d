"""Small building blocks shared by the models: shape specs, conv blocks and normalization layers."""
from .conv import CONV_INITS, conv_norm_relu
from .mask_ops import paste_masks_in_image
from .norm import NORM_LAYERS, FrozenBatchNorm2d, convert_frozen_batchnorm, get_norm
from .shape_spec import ShapeSpec

__all__ = ["ShapeSpec", "CONV_INITS", "conv_norm_relu", "NORM_LAYERS", "FrozenBatchNorm2d", "convert_frozen_batchnorm", "get_norm",
           "paste_masks_in_image"]
