"""ROI heads (box and mask branches) and their registries."""
from ...utils.absent import CASCADE, KEYPOINTS, MASK_HEAD_BASE, ROTATED, absent_names
from .box_head import ROI_BOX_HEAD_REGISTRY, FastRCNNConvFCHead, build_box_head
from .fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from .mask_head import ROI_MASK_HEAD_REGISTRY, MaskRCNNConvUpsampleHead, build_mask_head
from .res5_roi_heads import Res5ROIHeads
from .roi_heads import (
    ROI_HEADS_REGISTRY,
    ROIHeads,
    StandardROIHeads,
    build_roi_heads,
    select_foreground_proposals,
)

__all__ = [
    "ROI_HEADS_REGISTRY", "build_roi_heads", "ROIHeads", "StandardROIHeads", "Res5ROIHeads", "select_foreground_proposals",
    "ROI_BOX_HEAD_REGISTRY", "build_box_head", "FastRCNNConvFCHead", "FastRCNNOutputLayers", "fast_rcnn_inference",
    "ROI_MASK_HEAD_REGISTRY", "build_mask_head", "MaskRCNNConvUpsampleHead",
]

__getattr__ = absent_names(__name__, {
    **{name: KEYPOINTS for name in ("ROI_KEYPOINT_HEAD_REGISTRY", "BaseKeypointRCNNHead", "KRCNNConvDeconvUpsampleHead",
                                    "build_keypoint_head")},
    "RROIHeads": ROTATED,
    "CascadeROIHeads": CASCADE,
    "BaseMaskRCNNHead": MASK_HEAD_BASE,
})
