"""mmdetection wrappers: not provided (see MMDET's advice)."""
from ..utils.absent import MMDET, absent_names

__getattr__ = absent_names(__name__, {
    "MMDetBackbone": MMDET,
    "MMDetDetector": MMDET,
})
