"""ROI heads (box and mask branches) and their registries."""
from .box_head import ROI_BOX_HEAD_REGISTRY, FastRCNNConvFCHead, build_box_head
from .fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from .mask_head import ROI_MASK_HEAD_REGISTRY, MaskRCNNConvUpsampleHead, build_mask_head
from .res5_roi_heads import Res5ROIHeads
from .roi_heads import ROI_HEADS_REGISTRY, ROIHeads, StandardROIHeads, build_roi_heads

__all__ = [
    "ROI_HEADS_REGISTRY", "build_roi_heads", "ROIHeads", "StandardROIHeads", "Res5ROIHeads",
    "ROI_BOX_HEAD_REGISTRY", "build_box_head", "FastRCNNConvFCHead", "FastRCNNOutputLayers", "fast_rcnn_inference",
    "ROI_MASK_HEAD_REGISTRY", "build_mask_head", "MaskRCNNConvUpsampleHead",
]
