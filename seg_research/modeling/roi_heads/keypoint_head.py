"""Keypoint heads: not provided (see KEYPOINTS's advice)."""
from ...utils.absent import KEYPOINTS, absent_names

__getattr__ = absent_names(__name__, {
    "BaseKeypointRCNNHead": KEYPOINTS,
    "KRCNNConvDeconvUpsampleHead": KEYPOINTS,
    "ROI_KEYPOINT_HEAD_REGISTRY": KEYPOINTS,
    "build_keypoint_head": KEYPOINTS,
})
