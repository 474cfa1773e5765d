"""Non-maximum suppression at detectron2's ``layers.nms`` path: torchvision's ``nms`` and ``batched_nms``."""
from torchvision.ops import batched_nms, nms

from ..utils.absent import ROTATED, absent_names

__all__ = ["batched_nms", "nms"]

__getattr__ = absent_names(__name__, {"nms_rotated": ROTATED, "batched_nms_rotated": ROTATED})
