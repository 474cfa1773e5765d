"""Rotated-box COCO evaluation: not provided (see ROTATED's advice)."""
from ..utils.absent import ROTATED, absent_names

__getattr__ = absent_names(__name__, {
    "RotatedCOCOEvaluator": ROTATED,
    "RotatedCOCOeval": ROTATED,
})
