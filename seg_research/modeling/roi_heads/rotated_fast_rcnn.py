"""Rotated Fast R-CNN heads: not provided (see ROTATED's advice)."""
from ...utils.absent import ROTATED, absent_names

__getattr__ = absent_names(__name__, {
    "RROIHeads": ROTATED,
    "RotatedFastRCNNOutputLayers": ROTATED,
    "fast_rcnn_inference_rotated": ROTATED,
    "fast_rcnn_inference_single_image_rotated": ROTATED,
})
