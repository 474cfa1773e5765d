"""Backbones: the ``Backbone`` interface, the BACKBONE registry, ResNet and FPN."""
from ...utils.absent import absent_names
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

_TORCHVISION_STAGES = ("not provided: ResNet stages are torchvision's (torchvision.models.resnet.BasicBlock / "
                       "Bottleneck), wrapped by modeling.ResNet; backbone.resnet.make_res5_stage builds the C4 res5 head.")
__getattr__ = absent_names(__name__, {
    **{name: _TORCHVISION_STAGES for name in ("BasicStem", "BottleneckBlock", "ResNetBlockBase", "make_stage")},
    "RegNet": "RegNet backbones are not provided; wrap torchvision.models.regnet_* in a Backbone registered in "
              "BACKBONE_REGISTRY.",
})
