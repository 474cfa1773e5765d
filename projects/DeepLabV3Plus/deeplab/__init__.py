"""DeepLabV3+ (Chen et al. 2018) for seg_research: ``import deeplab`` registers the semantic
segmentation head ``DeepLabV3PlusHead`` (ASPP + decoder with low-level feature fusion), used
by the library's ``SemanticSegmentor`` on the library's ResNet, dilated through
``MODEL.RESNETS.RES4_DILATION`` / ``RES5_DILATION``. Call :func:`add_deeplab_config` on a
config before merging a DeepLab config file.
"""
from .aspp import ASPP
from .config import add_deeplab_config
from .head import DeepLabV3PlusHead

__all__ = ["add_deeplab_config", "ASPP", "DeepLabV3PlusHead"]
