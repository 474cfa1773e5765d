"""ADE20K SceneParsing (the MIT Scene Parsing Benchmark, 150 classes), read from the released layout.

Layout (``ADEChallengeData2016.zip`` unpacked into ``$SEG_DATASETS``)::

    ADEChallengeData2016/
      images/training/ADE_train_00000001.jpg          20210 RGB images
      images/validation/ADE_val_00000001.jpg          2000
      annotations/training/ADE_train_00000001.png     uint8 labels: 0 "other" (not scored), 1..150
      annotations/validation/ADE_val_00000001.png
      objectInfo150.txt, sceneCategories.txt          (not read)

The label PNGs are read as released; each record carries ``sem_seg_label_map``
(:data:`ADE20K_LABEL_MAP`: 0 -> 255 = ignore, ``v`` -> ``v - 1``), applied where labels are
read (:func:`seg_research.data.detection_utils.read_record_sem_seg`, by the mapper and the
evaluator alike), so no converted copy (detectron2's ``annotations_detectron2/``) is needed.

Registered (:func:`register_all_ade20k`): detectron2's ``ade20k_sem_seg_{train,val}``,
``stuff_classes`` = the 150 names (contiguous id = released label - 1), ``ignore_label=255``,
``evaluator_type="sem_seg"``.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List

import numpy as np

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog

from .coco import load_sem_seg
from .paths import check_dirs_exist
from .voc2012_sem_seg import voc_colormap

__all__ = ["ADE20K_SEM_SEG_CLASSES", "ADE20K_LABEL_MAP", "load_ade20k_sem_seg", "register_all_ade20k"]

#: contiguous id i = released label i + 1 (the first names of objectInfo150.txt's rows)
ADE20K_SEM_SEG_CLASSES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road, route', 'bed', 'window', 'grass', 'cabinet',
    'sidewalk, pavement', 'person', 'earth, ground', 'door', 'table', 'mountain, mount', 'plant', 'curtain',
    'chair', 'car', 'water', 'painting, picture', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field',
    'armchair', 'seat', 'fence', 'desk', 'rock, stone', 'wardrobe, closet, press', 'lamp', 'tub', 'rail', 'cushion',
    'base, pedestal, stand', 'box', 'column, pillar', 'signboard, sign', 'chest of drawers, chest, bureau, dresser',
    'counter', 'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator, icebox', 'grandstand, covered stand',
    'path', 'stairs', 'runway', 'case, display case, showcase, vitrine',
    'pool table, billiard table, snooker table', 'pillow', 'screen door, screen', 'stairway, staircase', 'river',
    'bridge, span', 'bookcase', 'blind, screen', 'coffee table',
    'toilet, can, commode, crapper, pot, potty, stool, throne', 'flower', 'book', 'hill', 'bench', 'countertop',
    'stove', 'palm, palm tree', 'kitchen island', 'computer', 'swivel chair', 'boat', 'bar', 'arcade machine',
    'hovel, hut, hutch, shack, shanty', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier',
    'awning, sunshade, sunblind', 'street lamp', 'booth', 'tv', 'plane', 'dirt track', 'clothes', 'pole',
    'land, ground, soil', 'bannister, banister, balustrade, balusters, handrail',
    'escalator, moving staircase, moving stairway', 'ottoman, pouf, pouffe, puff, hassock', 'bottle',
    'buffet, counter, sideboard', 'poster, posting, placard, notice, bill, card', 'stage', 'van', 'ship',
    'fountain', 'conveyer belt, conveyor belt, conveyer, conveyor, transporter', 'canopy',
    'washer, automatic washer, washing machine', 'plaything, toy', 'pool', 'stool', 'barrel, cask',
    'basket, handbasket', 'falls', 'tent', 'bag', 'minibike, motorbike', 'cradle', 'oven', 'ball',
    'food, solid food', 'step, stair', 'tank, storage tank', 'trade name', 'microwave', 'pot', 'animal', 'bicycle',
    'lake', 'dishwasher', 'screen', 'blanket, cover', 'sculpture', 'hood, exhaust hood', 'sconce', 'vase',
    'traffic light', 'tray', 'trash can', 'fan', 'pier', 'crt screen', 'plate', 'monitor', 'bulletin board',
    'shower', 'radiator', 'glass, drinking glass', 'clock', 'flag',
)
#: released label value -> contiguous id (0 "other" and values above 150 -> 255 = ignore)
ADE20K_LABEL_MAP = np.full(256, 255, dtype=np.uint8)
ADE20K_LABEL_MAP[1:len(ADE20K_SEM_SEG_CLASSES) + 1] = np.arange(len(ADE20K_SEM_SEG_CLASSES))
ADE20K_LABEL_MAP.setflags(write=False)
_SPLITS = {"train": "training", "val": "validation"}
_HINT = ("Unpack ADEChallengeData2016.zip (the MIT Scene Parsing Benchmark) into $SEG_DATASETS (default ./datasets) "
         "so that $SEG_DATASETS/ADEChallengeData2016/{images,annotations}/{training,validation} exist "
         "(see datasets/README.md).")


def load_ade20k_sem_seg(ade_root: str, split: str) -> List[Dict[str, Any]]:
    """Dataset dicts of an ADE20K split.

    Args:
        ade_root: the ``ADEChallengeData2016`` folder.
        split: ``"train"`` (``training/``) or ``"val"`` (``validation/``).

    Returns:
        :func:`load_sem_seg` records (``file_name``, ``sem_seg_file_name``, ``height``,
        ``width``, ``image_id`` = file stem), sorted by name, each with
        ``sem_seg_label_map`` = :data:`ADE20K_LABEL_MAP`.

    Raises:
        ValueError: an unknown split.
        DataError: a missing folder (named) or an image without its label PNG.
    """
    if split not in _SPLITS:
        raise ValueError(f"load_ade20k_sem_seg: split must be one of {sorted(_SPLITS)}, got {split!r}.")
    image_root = os.path.join(ade_root, "images", _SPLITS[split])
    label_root = os.path.join(ade_root, "annotations", _SPLITS[split])
    check_dirs_exist([image_root, label_root], "ADE20K", _HINT)
    records = load_sem_seg(label_root, image_root, gt_ext="png", image_ext="jpg")
    for record in records:
        record["sem_seg_label_map"] = ADE20K_LABEL_MAP
    return records


def register_all_ade20k(datasets_root: str) -> None:
    """Register ``ade20k_sem_seg_{train,val}`` with files under ``datasets_root/ADEChallengeData2016``;
    nothing is read until a dataset is requested. ``stuff_colors`` are the VOC colour map's
    entries 1..150 (for drawing; ADE20K ships no palette file)."""
    ade_root = os.path.join(datasets_root, "ADEChallengeData2016")
    colors = voc_colormap(len(ADE20K_SEM_SEG_CLASSES) + 1)[1:]
    for split, folder in _SPLITS.items():
        name = f"ade20k_sem_seg_{split}"
        DatasetCatalog.register(name, functools.partial(load_ade20k_sem_seg, ade_root, split))
        MetadataCatalog.get(name).set(
            stuff_classes=list(ADE20K_SEM_SEG_CLASSES), stuff_colors=colors, ignore_label=255, evaluator_type="sem_seg",
            image_root=os.path.join(ade_root, "images", folder), sem_seg_root=os.path.join(ade_root, "annotations", folder))
