"""Deformable convolution: use torchvision's."""
from ..utils.absent import absent_names

__getattr__ = absent_names(__name__, {
    "DeformConv": 'use torchvision.ops.DeformConv2d (forward(input, offset)).',
    "ModulatedDeformConv": 'use torchvision.ops.DeformConv2d, whose forward(input, offset, mask) is the modulated form.',
})
