"""Box regression losses at detectron2's ``layers.losses`` path: torchvision's, same arguments
``(boxes1, boxes2, reduction="none", eps=1e-7)`` on XYXY boxes."""
from torchvision.ops import complete_box_iou_loss as ciou_loss
from torchvision.ops import distance_box_iou_loss as diou_loss

__all__ = ["ciou_loss", "diou_loss"]
