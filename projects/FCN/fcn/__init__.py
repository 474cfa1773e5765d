"""FCN (Long, Shelhamer & Darrell 2015) for seg_research: ``import fcn`` registers the semantic
segmentation head ``FCNHead`` (FCN-32s / 16s / 8s by its input features), used by the library's
``SemanticSegmentor`` on its ResNet. Call :func:`add_fcn_config` on a config before merging an
FCN config file."""
from .config import add_fcn_config
from .head import FCNHead, bilinear_upsampling_weight

__all__ = ["add_fcn_config", "FCNHead", "bilinear_upsampling_weight"]
