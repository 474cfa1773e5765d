"""Keypoint structures: not provided (see KEYPOINTS's advice)."""
from ..utils.absent import KEYPOINTS, absent_names

__getattr__ = absent_names(__name__, {
    "Keypoints": KEYPOINTS,
    "heatmaps_to_keypoints": KEYPOINTS,
})
