"""detectron2's CNN building blocks: not provided (backbones are torchvision's)."""
from ..utils.absent import absent_names

__getattr__ = absent_names(__name__, {
    "CNNBlockBase": 'not provided; backbones here are torchvision ResNets wrapped by modeling.ResNet (freeze stages with MODEL.BACKBONE.FREEZE_AT).',
    "DepthwiseSeparableConv2d": 'not provided; build it from layers.Conv2d(..., groups=in_channels) followed by a 1x1 layers.Conv2d.',
})
