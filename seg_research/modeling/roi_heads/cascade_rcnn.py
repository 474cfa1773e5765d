"""Cascade R-CNN: not provided."""
from ...utils.absent import absent_names

__getattr__ = absent_names(__name__, {
    "CascadeROIHeads": "Cascade R-CNN is not provided; use StandardROIHeads (MODEL.ROI_HEADS.NAME 'StandardROIHeads') or register a subclass of it in ROI_HEADS_REGISTRY.",
})
