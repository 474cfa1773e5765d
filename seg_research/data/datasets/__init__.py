"""Dataset loaders for the on-disk formats (COCO instances, COCO panoptic, semantic PNGs), Shapes, PH2 and MADS.

Importing this package registers the builtin datasets (see :mod:`.builtin`).
"""
from ...utils.absent import LVIS, absent_names
from .builtin import get_datasets_root, register_all_shapes, shapes_split_params
from .coco import load_coco_json, load_sem_seg, read_json, register_coco_instances
from .coco_export import convert_to_coco_json
from .coco_panoptic import (
    load_coco_panoptic_json,
    panoptic_metadata,
    register_coco_panoptic,
    register_coco_panoptic_separated,
)
from .mads import find_mads_folder, load_mads, mads_split_assignment, parse_mads_name, register_all_mads
from .pascal_voc import load_voc_instances, register_pascal_voc
from .paths import check_files_exist, resolve_under_root
from .ph2 import load_ph2, ph2_split_assignment, read_ph2_diagnoses, register_all_ph2
from .shapes import CATEGORIES as SHAPES_CATEGORIES
from .shapes import generate_shapes

__all__ = [
    "get_datasets_root", "register_all_shapes", "shapes_split_params",
    "load_coco_json", "load_sem_seg", "read_json", "register_coco_instances", "convert_to_coco_json",
    "load_coco_panoptic_json", "panoptic_metadata", "register_coco_panoptic", "register_coco_panoptic_separated",
    "check_files_exist", "resolve_under_root",
    "load_voc_instances", "register_pascal_voc",
    "load_ph2", "ph2_split_assignment", "read_ph2_diagnoses", "register_all_ph2",
    "load_mads", "find_mads_folder", "mads_split_assignment", "parse_mads_name", "register_all_mads",
    "SHAPES_CATEGORIES", "generate_shapes",
]

__getattr__ = absent_names(__name__, {name: LVIS for name in ("get_lvis_instances_meta", "load_lvis_json",
                                                               "register_lvis_instances")})
