"""Cityscapes fine annotations (semantic and instance), read from the released layout.

Layout (``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` unpacked into
``$SEG_DATASETS/cityscapes``)::

    cityscapes/
      leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   2048x1024 RGB
      gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png    uint8 label ids (0..33)
                                                        ..._gtFine_instanceIds.png int32: label id, or
                                                        label id * 1000 + k for instance k
                                                        ..._gtFine_color.png, ..._polygons.json (not read)

2975 / 500 / 1525 images. Label ids go to train ids through cityscapesscripts' label table
(``cityscapesscripts.helpers.labels``): 19 scored classes 0..18, every other id 255 = ignore.
The semantic records point at the released ``labelIds.png`` and carry ``sem_seg_label_map``
(:data:`CITYSCAPES_LABEL_MAP`), applied where labels are read (mapper and evaluator), so
cityscapesscripts' ``createTrainIdLabelImgs`` need not be run.

Instances come from ``instanceIds.png``: one annotation per id of a class with instances
that is scored (``hasInstances`` and not ``ignoreInEval``: the 8 thing classes), ``iscrowd``
1 for a class's pixels without an instance number (id < 1000, a "group" region).

Registered (:func:`register_all_cityscapes`): detectron2's ``cityscapes_fine_sem_seg_{train,val,test}``
(``evaluator_type="cityscapes_sem_seg"``) and ``cityscapes_fine_instance_seg_{train,val,test}``
(``"cityscapes_instance"``); metadata ``thing_classes`` (8), ``stuff_classes`` (19), colours,
``ignore_label=255``, ``image_dir``, ``gt_dir``. The panoptic datasets are in :mod:`.cityscapes_panoptic`.
"""
from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from cityscapesscripts.helpers.labels import labels
from PIL import Image

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.detection_utils import read_image_size
from seg_research.data.errors import DataError
from seg_research.structures import BoxMode
from seg_research.utils.file_io import PathManager

from .mask_annotations import rle_box_area
from .paths import check_dirs_exist, check_files_exist

__all__ = ["CITYSCAPES_SEM_SEG_CLASSES", "CITYSCAPES_SEM_SEG_COLORS", "CITYSCAPES_THING_CLASSES",
           "CITYSCAPES_THING_COLORS", "CITYSCAPES_LABEL_MAP", "CITYSCAPES_HINT", "cityscapes_files",
           "load_cityscapes_semantic", "instance_annotations", "load_cityscapes_instances", "register_all_cityscapes"]

logger = logging.getLogger(__name__)

_SCORED = sorted((label for label in labels if 0 <= label.trainId < 255), key=lambda label: label.trainId)
#: contiguous semantic id = cityscapes train id
CITYSCAPES_SEM_SEG_CLASSES = tuple(label.name for label in _SCORED)
CITYSCAPES_SEM_SEG_COLORS = tuple(list(label.color) for label in _SCORED)
_THINGS = [label for label in _SCORED if label.hasInstances]
#: contiguous thing id = position here (train id order)
CITYSCAPES_THING_CLASSES = tuple(label.name for label in _THINGS)
CITYSCAPES_THING_COLORS = tuple(list(label.color) for label in _THINGS)
#: label id (as in labelIds.png) -> train id, 255 = ignore
CITYSCAPES_LABEL_MAP = np.full(256, 255, dtype=np.uint8)
for _label in labels:
    if 0 <= _label.id < 256 and 0 <= _label.trainId < 255:
        CITYSCAPES_LABEL_MAP[_label.id] = _label.trainId
CITYSCAPES_LABEL_MAP.setflags(write=False)
_THING_ID = {label.id: i for i, label in enumerate(_THINGS)}
_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_HINT = ("Unpack leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip (cityscapes-dataset.com) into "
                   "$SEG_DATASETS/cityscapes (default ./datasets/cityscapes) so that cityscapes/leftImg8bit/<split>/ "
                   "and cityscapes/gtFine/<split>/ exist (see datasets/README.md).")


def cityscapes_files(image_dir: str, gt_dir: str, gt_suffixes: Tuple[str, ...]) -> List[Tuple[str, str, List[str]]]:
    """``(image id, image file, [gt file per suffix])`` of every image of a split, sorted by id.

    Args:
        image_dir: ``leftImg8bit/<split>`` (one folder per city).
        gt_dir: ``gtFine/<split>``.
        gt_suffixes: e.g. ``("_gtFine_labelIds.png",)``: the gt file is ``<city>/<id><suffix>``.

    Raises:
        DataError: a missing folder, a split without images, or gt files missing (named).
    """
    check_dirs_exist([image_dir, gt_dir], "Cityscapes", CITYSCAPES_HINT)
    files = []
    for city in sorted(PathManager.ls(image_dir)):
        for name in sorted(PathManager.ls(os.path.join(image_dir, city))):
            if name.endswith(_IMAGE_SUFFIX):
                image_id = name[: -len(_IMAGE_SUFFIX)]
                files.append((image_id, os.path.join(image_dir, city, name),
                              [os.path.join(gt_dir, city, image_id + suffix) for suffix in gt_suffixes]))
    if not files:
        raise DataError(f"No '<city>/*{_IMAGE_SUFFIX}' image under the folder. {CITYSCAPES_HINT}", file_name=image_dir)
    check_files_exist([gt for _, _, gts in files for gt in gts], "Cityscapes ground-truth files",
                      f"Each image <city>/<id>{_IMAGE_SUFFIX} needs gtFine/<split>/<city>/<id>{{{', '.join(gt_suffixes)}}}. "
                      f"{CITYSCAPES_HINT}", source=gt_dir)
    return files


def _map(fn: Callable[[Any], Any], items: List[Any], num_workers: int) -> List[Any]:
    if num_workers <= 1 or len(items) < 4 * num_workers:
        return [fn(item) for item in items]
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
        return pool.map(fn, items, chunksize=8)


def load_cityscapes_semantic(image_dir: str, gt_dir: str) -> List[Dict[str, Any]]:
    """Semantic dataset dicts of a Cityscapes split (module doc).

    Returns:
        dicts ``{file_name, image_id (<city>_<seq>_<frame>), height, width,
        sem_seg_file_name (..._gtFine_labelIds.png), sem_seg_label_map}``, sorted by id;
        ``height``/``width`` from the label PNG header.
    """
    records = []
    for image_id, image, (label_ids,) in cityscapes_files(image_dir, gt_dir, ("_gtFine_labelIds.png",)):
        height, width = read_image_size(label_ids)
        records.append({"file_name": image, "image_id": image_id, "height": height, "width": width,
                        "sem_seg_file_name": label_ids, "sem_seg_label_map": CITYSCAPES_LABEL_MAP})
    logger.info(f"Loaded {len(records)} Cityscapes images with semantic labels from {gt_dir}")
    return records


def instance_annotations(instance_ids_file: str) -> Tuple[Tuple[int, int], List[Dict[str, Any]]]:
    """``((height, width), annotations)`` of one ``instanceIds.png`` (module doc): per thing segment,
    ``{category_id (0..7), iscrowd, bbox (XYWH absolute, tight), bbox_mode, segmentation
    (compressed RLE), area}``, in increasing segment id."""
    with PathManager.open(instance_ids_file, "rb") as f:
        ids = np.asarray(Image.open(f))
    if ids.ndim != 2:
        raise DataError(f"A Cityscapes instanceIds PNG is single-channel (16-bit ids), got shape {ids.shape}.",
                        file_name=instance_ids_file)
    annotations = []
    for segment in np.unique(ids):
        label_id = int(segment) // 1000 if segment >= 1000 else int(segment)
        if label_id not in _THING_ID:
            continue
        rle, bbox, area = rle_box_area(ids == segment)
        annotations.append({"category_id": _THING_ID[label_id], "iscrowd": int(segment < 1000), "bbox": bbox,
                            "bbox_mode": BoxMode.XYWH_ABS, "segmentation": rle, "area": area})
    return ids.shape, annotations


def load_cityscapes_instances(image_dir: str, gt_dir: str, num_workers: int = 0) -> List[Dict[str, Any]]:
    """Instance dataset dicts of a Cityscapes split (module doc).

    Args:
        image_dir, gt_dir: ``leftImg8bit/<split>``, ``gtFine/<split>``.
        num_workers: processes decoding the ``instanceIds.png`` files (0: this process).

    Returns:
        dicts ``{file_name, image_id, height, width, annotations}`` (:func:`instance_annotations`),
        sorted by id; images without any thing are kept (empty ``annotations``).
    """
    files = cityscapes_files(image_dir, gt_dir, ("_gtFine_instanceIds.png",))
    parsed = _map(instance_annotations, [gts[0] for _, _, gts in files], num_workers)
    records = [{"file_name": image, "image_id": image_id, "height": shape[0], "width": shape[1],
                "annotations": annotations}
               for (image_id, image, _), (shape, annotations) in zip(files, parsed, strict=True)]
    logger.info(f"Loaded {len(records)} Cityscapes images with instances from {gt_dir}")
    return records


def register_all_cityscapes(datasets_root: str) -> None:
    """Register ``cityscapes_fine_{sem_seg,instance_seg}_{train,val,test}`` (module doc) with files
    under ``datasets_root/cityscapes``; nothing is read until a dataset is requested."""
    root = os.path.join(datasets_root, "cityscapes")
    meta = dict(thing_classes=list(CITYSCAPES_THING_CLASSES), thing_colors=[list(c) for c in CITYSCAPES_THING_COLORS],
                stuff_classes=list(CITYSCAPES_SEM_SEG_CLASSES), stuff_colors=[list(c) for c in CITYSCAPES_SEM_SEG_COLORS],
                ignore_label=255)
    workers = min(8, os.cpu_count() or 1)
    for split in ("train", "val", "test"):
        image_dir = os.path.join(root, "leftImg8bit", split)
        gt_dir = os.path.join(root, "gtFine", split)
        name = f"cityscapes_fine_sem_seg_{split}"
        DatasetCatalog.register(name, functools.partial(load_cityscapes_semantic, image_dir, gt_dir))
        MetadataCatalog.get(name).set(image_dir=image_dir, gt_dir=gt_dir, evaluator_type="cityscapes_sem_seg", **meta)
        name = f"cityscapes_fine_instance_seg_{split}"
        DatasetCatalog.register(name, functools.partial(load_cityscapes_instances, image_dir, gt_dir, workers))
        MetadataCatalog.get(name).set(image_dir=image_dir, gt_dir=gt_dir, evaluator_type="cityscapes_instance",
                                      **meta)
