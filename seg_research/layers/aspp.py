"""ASPP: use torchvision's."""
from ..utils.absent import absent_names

__getattr__ = absent_names(__name__, {
    "ASPP": 'use torchvision.models.segmentation.deeplabv3.ASPP(in_channels, atrous_rates, out_channels).',
})
