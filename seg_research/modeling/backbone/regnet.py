"""RegNet backbones: not provided; torchvision has RegNets."""
from ...utils.absent import absent_names

__getattr__ = absent_names(__name__, {
    "AnyNet": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
    "RegNet": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
    "ResBasicBlock": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
    "ResBottleneckBlock": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
    "ResStem": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
    "SimpleStem": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
    "VanillaBlock": 'RegNet backbones are not provided; wrap torchvision.models.regnet_y_* / regnet_x_* in a Backbone registered in BACKBONE_REGISTRY (output_shape() with strides and channels).',
})
