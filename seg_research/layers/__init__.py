"""Small building blocks shared by the models: shape specs, conv blocks, normalization layers, and the
ops detectron2 exports from ``detectron2.layers`` (RoIAlign, NMS, mask pasting, torch wrappers)."""
from ..utils.absent import absent_names
from .batch_norm import SyncBatchNorm2d
from .conv import CONV_INITS, conv_norm_relu
from .losses import ciou_loss, diou_loss
from .mask_ops import paste_masks_in_image
from .nms import batched_nms, nms  # the submodule first, then its functions under its name
from .norm import NORM_LAYERS, FrozenBatchNorm2d, convert_frozen_batchnorm, get_norm
from .roi_align import ROIAlign, roi_align
from .shape_spec import ShapeSpec
from .wrappers import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Linear,
    cat,
    cross_entropy,
    interpolate,
    nonzero_tuple,
    shapes_to_tensor,
)

#: detectron2's name for the all-process BatchNorm (``get_norm("SyncBN", C)`` builds it too).
NaiveSyncBatchNorm = SyncBatchNorm2d

__all__ = ["ShapeSpec", "CONV_INITS", "conv_norm_relu", "NORM_LAYERS", "FrozenBatchNorm2d", "convert_frozen_batchnorm", "get_norm",
           "paste_masks_in_image", "ROIAlign", "roi_align", "nms", "batched_nms", "ciou_loss", "diou_loss",
           "SyncBatchNorm2d", "NaiveSyncBatchNorm", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Linear", "cat",
           "cross_entropy", "interpolate", "nonzero_tuple", "shapes_to_tensor"]

_ROTATED = "rotated boxes are not supported (seg_research models predict axis-aligned XYXY boxes)."
__getattr__ = absent_names(__name__, {
    "DeformConv": "use torchvision.ops.DeformConv2d (forward(input, offset)).",
    "ModulatedDeformConv": "use torchvision.ops.DeformConv2d, whose forward(input, offset, mask) is the modulated form.",
    "CycleBatchNormList": "not provided; use get_norm('BN' | 'SyncBN' | 'GN' | 'FrozenBN', channels).",
    "CNNBlockBase": "not provided; backbones here are torchvision ResNets wrapped by modeling.ResNet "
                    "(freeze stages with MODEL.BACKBONE.FREEZE_AT).",
    "DepthwiseSeparableConv2d": "not provided; build it from Conv2d(..., groups=in_channels) followed by a 1x1 Conv2d.",
    "ASPP": "use torchvision.models.segmentation.deeplabv3.ASPP(in_channels, atrous_rates, out_channels).",
    "ROIAlignRotated": _ROTATED,
    "roi_align_rotated": _ROTATED,
    "nms_rotated": _ROTATED,
    "batched_nms_rotated": _ROTATED,
})
