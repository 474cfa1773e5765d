"""Rotated RoIAlign: not provided (see ROTATED's advice)."""
from ..utils.absent import ROTATED, absent_names

__getattr__ = absent_names(__name__, {
    "ROIAlignRotated": ROTATED,
})
