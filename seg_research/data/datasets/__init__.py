"""Dataset loaders for the on-disk formats (COCO instances, COCO panoptic, semantic PNGs) and Shapes.

Importing this package registers the builtin datasets (see :mod:`.builtin`).
"""
from .builtin import get_datasets_root, register_all_shapes, shapes_split_params
from .coco import load_coco_json, load_sem_seg, read_json, register_coco_instances
from .coco_panoptic import (
    load_coco_panoptic_json,
    panoptic_metadata,
    register_coco_panoptic,
    register_coco_panoptic_separated,
)
from .paths import check_files_exist, resolve_under_root
from .shapes import CATEGORIES as SHAPES_CATEGORIES
from .shapes import generate_shapes

__all__ = [
    "get_datasets_root", "register_all_shapes", "shapes_split_params",
    "load_coco_json", "load_sem_seg", "read_json", "register_coco_instances",
    "load_coco_panoptic_json", "panoptic_metadata", "register_coco_panoptic", "register_coco_panoptic_separated",
    "check_files_exist", "resolve_under_root",
    "SHAPES_CATEGORIES", "generate_shapes",
]
