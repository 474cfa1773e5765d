"""Backbones: the ``Backbone`` interface, the BACKBONE registry, ResNet and FPN."""
from .backbone import Backbone
from .build import BACKBONE_REGISTRY, build_backbone
from .fpn import FPN, LastLevelMaxPool, build_resnet_fpn_backbone
from .resnet import ResNet, build_resnet_backbone, convert_torchvision_resnet_state_dict

__all__ = [
    "Backbone",
    "BACKBONE_REGISTRY",
    "build_backbone",
    "FPN",
    "LastLevelMaxPool",
    "build_resnet_fpn_backbone",
    "ResNet",
    "build_resnet_backbone",
    "convert_torchvision_resnet_state_dict",
]
