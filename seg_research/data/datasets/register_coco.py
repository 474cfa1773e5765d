"""detectron2's older module for registering COCO-format datasets (same functions as ``coco`` / ``coco_panoptic``)."""
from .coco import register_coco_instances
from .coco_panoptic import register_coco_panoptic_separated

__all__ = ["register_coco_instances", "register_coco_panoptic_separated"]
