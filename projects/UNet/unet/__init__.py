"""U-Net (Ronneberger et al. 2015) for seg_research: ``import unet`` registers

- the backbone ``UNetEncoder`` (contracting path, outputs ``enc1`` .. ``enc<DEPTH>``) and
- the semantic segmentation head ``UNetHead`` (expanding path with skip connections),

used by the library's ``SemanticSegmentor``. Call :func:`add_unet_config` on a config before
merging a U-Net config file.
"""
from .config import add_unet_config
from .encoder import UNetEncoder
from .head import UNetHead, UpBlock

__all__ = ["add_unet_config", "UNetEncoder", "UNetHead", "UpBlock"]
