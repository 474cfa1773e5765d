"""Semantic datasets Mask2Former registers in converted layouts: COCO-Stuff-10k (171 classes) and ADE20K-full
(847 classes). Neither is used by a shipped config; both are read in the layout that the MaskFormer /
Mask2Former preparation scripts write, since the releases store labels as MATLAB files
(COCO-Stuff-10k ``annotations/*.mat``) or per-object masks (ADE20K-full) that a loader cannot read directly.

COCO-Stuff-10k (``cocostuff-10k-v1.1.zip`` unpacked into ``$SEG_DATASETS/coco/coco_stuff_10k``, then
MaskFormer's ``datasets/prepare_coco_stuff_10k_sem_seg.py``)::

    coco/coco_stuff_10k/
      images/, annotations/*.mat, imageLists/{train,test}.txt     the release (read by the script)
      images_detectron2/{train,test}/<name>.jpg                   9000 / 1000 images
      annotations_detectron2/{train,test}/<name>.png              uint8 labels, 255 = unlabeled

ADE20K-full (``ADE20K_2021_17_01.zip`` unpacked into ``$SEG_DATASETS``, then MaskFormer's
``datasets/prepare_ade20k_full_sem_seg.py``)::

    ADE20K_2021_17_01/
      images/, index_ade20k.pkl, objects.txt                      the release (read by the script)
      images_detectron2/{training,validation}/<name>.jpg          25574 / 2000 images
      annotations_detectron2/{training,validation}/<name>.tif     16-bit labels 0..846, 65535 = unlabeled

Registered (:func:`register_all_mask2former_sem_seg`): ``coco_2017_{train,test}_stuff_10k_sem_seg``
(``ignore_label=255``) and ``ade20k_full_sem_seg_{train,val}`` (``ignore_label=65535``), all
``evaluator_type="sem_seg"``, records as :func:`~.coco.load_sem_seg`.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Sequence, Tuple

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog

from .ade20k_full_categories import ADE20K_FULL_CATEGORIES
from .coco import load_sem_seg
from .paths import check_dirs_exist

__all__ = ["COCO_STUFF_CATEGORIES", "load_coco_stuff_10k", "load_ade20k_full", "register_all_mask2former_sem_seg"]

#: COCO-Stuff's 171 classes (80 things, 91 stuff) as (dataset id, name), in contiguous label order 0..170
COCO_STUFF_CATEGORIES = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
    (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
    (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"),
    (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"),
    (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"),
    (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"),
    (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"), (72, "tv"),
    (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"), (77, "cell phone"), (78, "microwave"),
    (79, "oven"), (80, "toaster"), (81, "sink"), (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"),
    (87, "scissors"), (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"), (92, "banner"), (93, "blanket"),
    (94, "branch"), (95, "bridge"), (96, "building-other"), (97, "bush"), (98, "cabinet"), (99, "cage"),
    (100, "cardboard"), (101, "carpet"), (102, "ceiling-other"), (103, "ceiling-tile"), (104, "cloth"),
    (105, "clothes"), (106, "clouds"), (107, "counter"), (108, "cupboard"), (109, "curtain"), (110, "desk-stuff"),
    (111, "dirt"), (112, "door-stuff"), (113, "fence"), (114, "floor-marble"), (115, "floor-other"),
    (116, "floor-stone"), (117, "floor-tile"), (118, "floor-wood"), (119, "flower"), (120, "fog"),
    (121, "food-other"), (122, "fruit"), (123, "furniture-other"), (124, "grass"), (125, "gravel"),
    (126, "ground-other"), (127, "hill"), (128, "house"), (129, "leaves"), (130, "light"), (131, "mat"),
    (132, "metal"), (133, "mirror-stuff"), (134, "moss"), (135, "mountain"), (136, "mud"), (137, "napkin"),
    (138, "net"), (139, "paper"), (140, "pavement"), (141, "pillow"), (142, "plant-other"), (143, "plastic"),
    (144, "platform"), (145, "playingfield"), (146, "railing"), (147, "railroad"), (148, "river"), (149, "road"),
    (150, "rock"), (151, "roof"), (152, "rug"), (153, "salad"), (154, "sand"), (155, "sea"), (156, "shelf"),
    (157, "sky-other"), (158, "skyscraper"), (159, "snow"), (160, "solid-other"), (161, "stairs"), (162, "stone"),
    (163, "straw"), (164, "structural-other"), (165, "table"), (166, "tent"), (167, "textile-other"),
    (168, "towel"), (169, "tree"), (170, "vegetable"), (171, "wall-brick"), (172, "wall-concrete"),
    (173, "wall-other"), (174, "wall-panel"), (175, "wall-stone"), (176, "wall-tile"), (177, "wall-wood"),
    (178, "water-other"), (179, "waterdrops"), (180, "window-blind"), (181, "window-other"), (182, "wood"),
)
_COCO_STUFF_HINT = ("Unpack cocostuff-10k-v1.1.zip into $SEG_DATASETS/coco/coco_stuff_10k and convert it with "
                    "MaskFormer's datasets/prepare_coco_stuff_10k_sem_seg.py (DETECTRON2_DATASETS=$SEG_DATASETS), "
                    "which writes images_detectron2/ and annotations_detectron2/ (see datasets/README.md).")
_ADE_FULL_HINT = ("Unpack ADE20K_2021_17_01.zip (https://groups.csail.mit.edu/vision/datasets/ADE20K/) into "
                  "$SEG_DATASETS and convert it with MaskFormer's datasets/prepare_ade20k_full_sem_seg.py "
                  "(DETECTRON2_DATASETS=$SEG_DATASETS), which writes images_detectron2/ and annotations_detectron2/ "
                  "(see datasets/README.md).")
_ADE_SPLITS = {"train": "training", "val": "validation"}


def _load(image_root: str, label_root: str, gt_ext: str, what: str, hint: str) -> List[Dict[str, Any]]:
    check_dirs_exist([image_root, label_root], what, hint)
    return load_sem_seg(label_root, image_root, gt_ext=gt_ext, image_ext="jpg")


def load_coco_stuff_10k(root: str, split: str) -> List[Dict[str, Any]]:
    """Records of COCO-Stuff-10k's ``split`` (``"train"`` or ``"test"``) under ``root`` =
    ``coco/coco_stuff_10k`` (module doc). Raises DataError naming a missing folder or an unpaired file."""
    if split not in ("train", "test"):
        raise ValueError(f"COCO-Stuff-10k: split must be 'train' or 'test', got {split!r}.")
    return _load(os.path.join(root, "images_detectron2", split), os.path.join(root, "annotations_detectron2", split),
                 "png", "COCO-Stuff-10k", _COCO_STUFF_HINT)


def load_ade20k_full(root: str, split: str) -> List[Dict[str, Any]]:
    """Records of ADE20K-full's ``split`` (``"train"`` or ``"val"``) under ``root`` = ``ADE20K_2021_17_01``
    (module doc): 16-bit TIFF labels. Raises DataError naming a missing folder or an unpaired file."""
    if split not in _ADE_SPLITS:
        raise ValueError(f"ADE20K-full: split must be one of {sorted(_ADE_SPLITS)}, got {split!r}.")
    folder = _ADE_SPLITS[split]
    return _load(os.path.join(root, "images_detectron2", folder), os.path.join(root, "annotations_detectron2", folder),
                 "tif", "ADE20K-full", _ADE_FULL_HINT)


def _register_sem_seg(name: str, load: Callable[[], List[Dict[str, Any]]], root: str, folder: str, ignore_label: int,
                      categories: Sequence[Tuple[int, str]]) -> None:
    """Register ``name`` (lazy ``load``) with the metadata of a converted layout under ``root``:
    ``images_detectron2/<folder>`` and ``annotations_detectron2/<folder>``, classes ``categories`` (id, name)."""
    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        image_root=os.path.join(root, "images_detectron2", folder),
        sem_seg_root=os.path.join(root, "annotations_detectron2", folder), evaluator_type="sem_seg",
        ignore_label=ignore_label, stuff_classes=[n for _, n in categories],
        stuff_dataset_id_to_contiguous_id={k: i for i, (k, _) in enumerate(categories)})


def register_all_mask2former_sem_seg(datasets_root: str) -> None:
    """Register ``coco_2017_{train,test}_stuff_10k_sem_seg`` and ``ade20k_full_sem_seg_{train,val}`` (module
    doc); nothing is read until a dataset is requested."""
    root = os.path.join(datasets_root, "coco", "coco_stuff_10k")
    for split in ("train", "test"):
        _register_sem_seg(f"coco_2017_{split}_stuff_10k_sem_seg", functools.partial(load_coco_stuff_10k, root, split),
                          root, split, 255, COCO_STUFF_CATEGORIES)
    root = os.path.join(datasets_root, "ADE20K_2021_17_01")
    for split, folder in _ADE_SPLITS.items():
        _register_sem_seg(f"ade20k_full_sem_seg_{split}", functools.partial(load_ade20k_full, root, split),
                          root, folder, 65535, ADE20K_FULL_CATEGORIES)
