"""Backbones: the ``Backbone`` interface, the BACKBONE registry, ResNet and FPN."""
from ...utils.absent import absent_names
from .backbone import Backbone
from .build import BACKBONE_REGISTRY, build_backbone
from .fpn import FPN, LastLevelMaxPool, build_resnet_fpn_backbone
from .resnet import TORCHVISION_STAGES_ADVICE, ResNet, build_resnet_backbone, convert_torchvision_resnet_state_dict

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

__getattr__ = absent_names(__name__, {
    **{name: TORCHVISION_STAGES_ADVICE for name in ("BasicStem", "BottleneckBlock", "ResNetBlockBase", "make_stage")},
    "RegNet": "RegNet backbones are not provided; wrap torchvision.models.regnet_* in a Backbone registered in "
              "BACKBONE_REGISTRY.",
})
