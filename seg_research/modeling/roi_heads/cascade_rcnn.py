"""Cascade R-CNN: not provided."""
from ...utils.absent import CASCADE, absent_names

__getattr__ = absent_names(__name__, {
    "CascadeROIHeads": CASCADE,
})
