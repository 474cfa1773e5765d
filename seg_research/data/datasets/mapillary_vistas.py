"""Mapillary Vistas v1.2 (65 classes, 37 of them things), semantic and panoptic, read from the released layout.

Layout (``mapillary-vistas-dataset_public_v1.2.zip`` unpacked into ``$SEG_DATASETS/mapillary_vistas``)::

    mapillary_vistas/
      training/images/<key>.jpg                   18000 images (validation/: 2000)
      training/labels/<key>.png                   class index per pixel (palette PNG): 0..64, 65 = unlabeled
      training/instances/<key>.png                (not read)
      training/panoptic/panoptic_2018.json        COCO panoptic json: images (ids = keys), annotations,
      training/panoptic/<key>.png                 categories 1..65 (class index + 1); segment PNGs
      validation/...                              the same

Nothing to convert. Class ids follow Mask2Former's in-order convention
(:func:`~.panoptic_sem_seg.panoptic_metadata_in_order`): the contiguous id of a class is its index in
``config_v1.2.json`` (= panoptic category id - 1 = the value in ``labels/``), things and stuff
interleaved. The unlabeled value 65 is the ignore label (``ignore_label=65``, as upstream).

Registered (:func:`register_all_mapillary_vistas`), Mask2Former's names:
``mapillary_vistas_sem_seg_{train,val}`` (``evaluator_type="sem_seg"``, ``stuff_classes`` = the 65 readable
names) and ``mapillary_vistas_panoptic_{train,val}`` (``evaluator_type="mapillary_vistas_panoptic_seg"``,
``label_divisor=1000``; records carry ``sem_seg_file_name`` from ``labels/``; as upstream,
``thing_classes`` lists all 65 names, for its visualiser, while ``thing_dataset_id_to_contiguous_id`` holds
the 37 things).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog

from .coco import load_sem_seg
from .panoptic_sem_seg import load_panoptic_with_sem_seg, panoptic_metadata_in_order
from .paths import check_dirs_exist

__all__ = ["MAPILLARY_VISTAS_CATEGORIES", "MAPILLARY_VISTAS_IGNORE_LABEL", "load_mapillary_vistas_sem_seg",
           "load_mapillary_vistas_panoptic", "register_all_mapillary_vistas"]

#: (label name of config_v1.2.json, readable name, has instances, RGB colour) by class index 0..64
_CLASSES = (
    ("animal--bird", "Bird", 1, (165, 42, 42)),
    ("animal--ground-animal", "Ground Animal", 1, (0, 192, 0)),
    ("construction--barrier--curb", "Curb", 0, (196, 196, 196)),
    ("construction--barrier--fence", "Fence", 0, (190, 153, 153)),
    ("construction--barrier--guard-rail", "Guard Rail", 0, (180, 165, 180)),
    ("construction--barrier--other-barrier", "Barrier", 0, (90, 120, 150)),
    ("construction--barrier--wall", "Wall", 0, (102, 102, 156)),
    ("construction--flat--bike-lane", "Bike Lane", 0, (128, 64, 255)),
    ("construction--flat--crosswalk-plain", "Crosswalk - Plain", 1, (140, 140, 200)),
    ("construction--flat--curb-cut", "Curb Cut", 0, (170, 170, 170)),
    ("construction--flat--parking", "Parking", 0, (250, 170, 160)),
    ("construction--flat--pedestrian-area", "Pedestrian Area", 0, (96, 96, 96)),
    ("construction--flat--rail-track", "Rail Track", 0, (230, 150, 140)),
    ("construction--flat--road", "Road", 0, (128, 64, 128)),
    ("construction--flat--service-lane", "Service Lane", 0, (110, 110, 110)),
    ("construction--flat--sidewalk", "Sidewalk", 0, (244, 35, 232)),
    ("construction--structure--bridge", "Bridge", 0, (150, 100, 100)),
    ("construction--structure--building", "Building", 0, (70, 70, 70)),
    ("construction--structure--tunnel", "Tunnel", 0, (150, 120, 90)),
    ("human--person", "Person", 1, (220, 20, 60)),
    ("human--rider--bicyclist", "Bicyclist", 1, (255, 0, 0)),
    ("human--rider--motorcyclist", "Motorcyclist", 1, (255, 0, 100)),
    ("human--rider--other-rider", "Other Rider", 1, (255, 0, 200)),
    ("marking--crosswalk-zebra", "Lane Marking - Crosswalk", 1, (200, 128, 128)),
    ("marking--general", "Lane Marking - General", 0, (255, 255, 255)),
    ("nature--mountain", "Mountain", 0, (64, 170, 64)),
    ("nature--sand", "Sand", 0, (230, 160, 50)),
    ("nature--sky", "Sky", 0, (70, 130, 180)),
    ("nature--snow", "Snow", 0, (190, 255, 255)),
    ("nature--terrain", "Terrain", 0, (152, 251, 152)),
    ("nature--vegetation", "Vegetation", 0, (107, 142, 35)),
    ("nature--water", "Water", 0, (0, 170, 30)),
    ("object--banner", "Banner", 1, (255, 255, 128)),
    ("object--bench", "Bench", 1, (250, 0, 30)),
    ("object--bike-rack", "Bike Rack", 1, (100, 140, 180)),
    ("object--billboard", "Billboard", 1, (220, 220, 220)),
    ("object--catch-basin", "Catch Basin", 1, (220, 128, 128)),
    ("object--cctv-camera", "CCTV Camera", 1, (222, 40, 40)),
    ("object--fire-hydrant", "Fire Hydrant", 1, (100, 170, 30)),
    ("object--junction-box", "Junction Box", 1, (40, 40, 40)),
    ("object--mailbox", "Mailbox", 1, (33, 33, 33)),
    ("object--manhole", "Manhole", 1, (100, 128, 160)),
    ("object--phone-booth", "Phone Booth", 1, (142, 0, 0)),
    ("object--pothole", "Pothole", 0, (70, 100, 150)),
    ("object--street-light", "Street Light", 1, (210, 170, 100)),
    ("object--support--pole", "Pole", 1, (153, 153, 153)),
    ("object--support--traffic-sign-frame", "Traffic Sign Frame", 1, (128, 128, 128)),
    ("object--support--utility-pole", "Utility Pole", 1, (0, 0, 80)),
    ("object--traffic-light", "Traffic Light", 1, (250, 170, 30)),
    ("object--traffic-sign--back", "Traffic Sign (Back)", 1, (192, 192, 192)),
    ("object--traffic-sign--front", "Traffic Sign (Front)", 1, (220, 220, 0)),
    ("object--trash-can", "Trash Can", 1, (140, 140, 20)),
    ("object--vehicle--bicycle", "Bicycle", 1, (119, 11, 32)),
    ("object--vehicle--boat", "Boat", 1, (150, 0, 255)),
    ("object--vehicle--bus", "Bus", 1, (0, 60, 100)),
    ("object--vehicle--car", "Car", 1, (0, 0, 142)),
    ("object--vehicle--caravan", "Caravan", 1, (0, 0, 90)),
    ("object--vehicle--motorcycle", "Motorcycle", 1, (0, 0, 230)),
    ("object--vehicle--on-rails", "On Rails", 0, (0, 80, 100)),
    ("object--vehicle--other-vehicle", "Other Vehicle", 1, (128, 64, 64)),
    ("object--vehicle--trailer", "Trailer", 1, (0, 0, 110)),
    ("object--vehicle--truck", "Truck", 1, (0, 0, 70)),
    ("object--vehicle--wheeled-slow", "Wheeled Slow", 1, (0, 0, 192)),
    ("void--car-mount", "Car Mount", 0, (32, 32, 32)),
    ("void--ego-vehicle", "Ego Vehicle", 0, (120, 10, 10)),
)
#: the panoptic json's categories: id = class index + 1
MAPILLARY_VISTAS_CATEGORIES = tuple(
    {"id": i + 1, "name": readable, "supercategory": label, "isthing": isthing, "color": list(color)}
    for i, (label, readable, isthing, color) in enumerate(_CLASSES)
)
#: the "unlabeled" class index in labels/ (not scored)
MAPILLARY_VISTAS_IGNORE_LABEL = 65
_SPLITS = {"train": "training", "val": "validation"}
_HINT = ("Download Mapillary Vistas v1.2 (https://www.mapillary.com/dataset/vistas) and unpack it into "
         "$SEG_DATASETS/mapillary_vistas so that mapillary_vistas/{training,validation}/{images,labels,panoptic} "
         "exist (see datasets/README.md).")


def _folder(root: str, split: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"Mapillary Vistas: split must be one of {sorted(_SPLITS)}, got {split!r}.")
    return os.path.join(root, _SPLITS[split])


def load_mapillary_vistas_sem_seg(root: str, split: str) -> List[Dict[str, Any]]:
    """Semantic dataset dicts of a split: :func:`~.coco.load_sem_seg` records (``file_name``,
    ``sem_seg_file_name``, ``height``, ``width``, ``image_id`` = the image key) pairing ``images/*.jpg`` with
    ``labels/*.png``. ``root`` is the ``mapillary_vistas`` folder. Raises DataError naming a missing folder or
    an image without its label."""
    folder = _folder(root, split)
    images, labels = os.path.join(folder, "images"), os.path.join(folder, "labels")
    check_dirs_exist([images, labels], "Mapillary Vistas", _HINT)
    return load_sem_seg(labels, images, gt_ext="png", image_ext="jpg")


def load_mapillary_vistas_panoptic(root: str, split: str) -> List[Dict[str, Any]]:
    """Panoptic dataset dicts of a split (``panoptic/panoptic_2018.json``): ``{file_name, height, width,
    image_id, pan_seg_file_name, sem_seg_file_name, segments_info: [{id, category_id (class index), iscrowd,
    isthing, area, bbox}]}``, sorted by image id. Raises DataError naming a missing folder, json or file."""
    folder = _folder(root, split)
    panoptic = os.path.join(folder, "panoptic")
    return load_panoptic_with_sem_seg(os.path.join(panoptic, "panoptic_2018.json"), os.path.join(folder, "images"),
                                      panoptic, os.path.join(folder, "labels"),
                                      panoptic_metadata_in_order(MAPILLARY_VISTAS_CATEGORIES),
                                      "Mapillary Vistas panoptic", _HINT)


def register_all_mapillary_vistas(datasets_root: str) -> None:
    """Register ``mapillary_vistas_sem_seg_{train,val}`` and ``mapillary_vistas_panoptic_{train,val}`` (module
    doc) with files under ``datasets_root/mapillary_vistas``; nothing is read until a dataset is requested."""
    root = os.path.join(datasets_root, "mapillary_vistas")
    meta = panoptic_metadata_in_order(MAPILLARY_VISTAS_CATEGORIES)
    for split in _SPLITS:
        folder = _folder(root, split)
        paths = {"image_root": os.path.join(folder, "images"), "sem_seg_root": os.path.join(folder, "labels")}
        name = f"mapillary_vistas_sem_seg_{split}"
        DatasetCatalog.register(name, functools.partial(load_mapillary_vistas_sem_seg, root, split))
        MetadataCatalog.get(name).set(stuff_classes=meta["stuff_classes"], stuff_colors=meta["stuff_colors"],
                                      ignore_label=MAPILLARY_VISTAS_IGNORE_LABEL, evaluator_type="sem_seg", **paths)
        name = f"mapillary_vistas_panoptic_{split}"
        DatasetCatalog.register(name, functools.partial(load_mapillary_vistas_panoptic, root, split))
        MetadataCatalog.get(name).set(
            panoptic_root=os.path.join(folder, "panoptic"),
            panoptic_json=os.path.join(folder, "panoptic", "panoptic_2018.json"), json_file=None,
            evaluator_type="mapillary_vistas_panoptic_seg", ignore_label=MAPILLARY_VISTAS_IGNORE_LABEL,
            label_divisor=1000, **paths, **{**meta, "thing_classes": meta["stuff_classes"],
                                            "thing_colors": meta["stuff_colors"]})
