"""PASCAL VOC 2012 semantic segmentation (and SBD's augmented labels), read from the released layout.

Layout (``VOCtrainval_11-May-2012.tar`` unpacked into ``$SEG_DATASETS``)::

    VOCdevkit/VOC2012/
      JPEGImages/2007_000032.jpg                      RGB images (about 500x375)
      SegmentationClass/2007_000032.png               palette PNGs: index 0 background, 1..20 the
                                                      classes, 255 object borders / difficult (ignored)
      ImageSets/Segmentation/{train,val,trainval}.txt one image id per line (1464 / 1449 / 2913)
      SegmentationClassAug/2007_000032.png            optional: SBD's labels (grayscale, same values),
      ImageSets/SegmentationAug/train_aug.txt         the 10582-image "train_aug" list of DeepLab

A palette PNG stores the class index per pixel (the palette only colours it), so the labels
are read as stored. ``train_aug.txt`` lines are either an id or DeepLab's
``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png``; the id is the first path's stem.

Registered (:func:`register_all_voc2012_sem_seg`): ``voc_2012_sem_seg_{train,val,trainval}``
and ``voc_2012_sem_seg_train_aug``; ``evaluator_type="sem_seg"``, ``ignore_label=255``.
(detectron2's ``voc_2012_{train,val}`` are the *detection* splits.)
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Dict, List, Tuple

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.detection_utils import read_image_size
from seg_research.data.errors import DataError
from seg_research.utils.file_io import PathManager

from .paths import check_dirs_exist, check_files_exist

__all__ = ["VOC_SEM_SEG_CLASSES", "VOC_SEM_SEG_SPLITS", "voc_colormap", "read_voc_image_ids", "load_voc_sem_seg",
           "register_all_voc2012_sem_seg"]

logger = logging.getLogger(__name__)

#: contiguous class id = the index stored in the label PNGs
VOC_SEM_SEG_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
#: split -> (image list relative to VOC2012/, label folder)
VOC_SEM_SEG_SPLITS: Dict[str, Tuple[str, str]] = {
    "train": ("ImageSets/Segmentation/train.txt", "SegmentationClass"),
    "val": ("ImageSets/Segmentation/val.txt", "SegmentationClass"),
    "trainval": ("ImageSets/Segmentation/trainval.txt", "SegmentationClass"),
    "train_aug": ("ImageSets/SegmentationAug/train_aug.txt", "SegmentationClassAug"),
}
_HINT = ("Unpack VOCtrainval_11-May-2012.tar into $SEG_DATASETS (default ./datasets) so that "
         "$SEG_DATASETS/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation} exist; for train_aug "
         "add SBD's SegmentationClassAug/ and ImageSets/SegmentationAug/train_aug.txt (see datasets/README.md).")


def voc_colormap(num: int = 256) -> List[List[int]]:
    """The VOC devkit's colour map: entry ``i`` spreads the bits of ``i`` over R, G, B from the
    most significant bit down (``[0, 0, 0]``, ``[128, 0, 0]``, ``[0, 128, 0]``, ...).

    Returns:
        ``num`` RGB triples (0..255); the palette of the released PNGs.
    """
    colors = []
    for index in range(num):
        rgb, value = [0, 0, 0], index
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << bit
            value >>= 3
        colors.append(rgb)
    return colors


def read_voc_image_ids(list_file: str) -> List[str]:
    """Image ids of a VOC split list (module doc), in the file's order.

    Raises:
        DataError: naming the file when it is missing, empty or repeats an id.
    """
    if not PathManager.isfile(list_file):
        raise DataError(f"VOC split list not found. {_HINT}", file_name=list_file)
    with PathManager.open(list_file, "r", encoding="utf-8") as f:
        ids = [os.path.splitext(os.path.basename(line.split()[0]))[0] for line in f if line.strip()]
    if not ids:
        raise DataError(f"VOC split list has no image id. {_HINT}", file_name=list_file)
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DataError(f"VOC split list repeats image ids {repeated}. Restore it from the release.", file_name=list_file)
    return ids


def load_voc_sem_seg(voc_root: str, split: str) -> List[Dict[str, Any]]:
    """Dataset dicts of a VOC 2012 segmentation split.

    Args:
        voc_root: the ``VOCdevkit/VOC2012`` folder.
        split: a key of :data:`VOC_SEM_SEG_SPLITS`.

    Returns:
        dicts ``{file_name (JPEGImages/<id>.jpg), sem_seg_file_name, height, width, image_id}``
        in the list's order; ``height``/``width`` from the label PNG header.

    Raises:
        ValueError: an unknown split.
        DataError: a missing folder, list, image or label PNG (named).
    """
    if split not in VOC_SEM_SEG_SPLITS:
        raise ValueError(f"load_voc_sem_seg: split must be one of {sorted(VOC_SEM_SEG_SPLITS)}, got {split!r}.")
    list_name, label_dir = VOC_SEM_SEG_SPLITS[split]
    image_root, label_root = os.path.join(voc_root, "JPEGImages"), os.path.join(voc_root, label_dir)
    check_dirs_exist([image_root, label_root], "PASCAL VOC 2012 segmentation", _HINT)
    list_file = os.path.join(voc_root, list_name)
    ids = read_voc_image_ids(list_file)
    images = [os.path.join(image_root, f"{i}.jpg") for i in ids]
    labels = [os.path.join(label_root, f"{i}.png") for i in ids]
    check_files_exist(images, "VOC images of the split list", f"Each listed id needs JPEGImages/<id>.jpg. {_HINT}",
                      source=list_file)
    check_files_exist(labels, "VOC label PNGs of the split list", f"Each listed id needs {label_dir}/<id>.png. {_HINT}",
                      source=list_file)
    records = []
    for image_id, image, label in zip(ids, images, labels, strict=True):
        height, width = read_image_size(label)
        records.append({"file_name": image, "sem_seg_file_name": label, "height": height, "width": width,
                        "image_id": image_id})
    logger.info(f"Loaded {len(records)} PASCAL VOC 2012 segmentation images (split {split}) from {voc_root}")
    return records


def register_all_voc2012_sem_seg(datasets_root: str) -> None:
    """Register ``voc_2012_sem_seg_<split>`` for each of :data:`VOC_SEM_SEG_SPLITS`, files under
    ``datasets_root/VOCdevkit/VOC2012``; nothing is read until a dataset is requested."""
    voc_root = os.path.join(datasets_root, "VOCdevkit", "VOC2012")
    colors = voc_colormap(len(VOC_SEM_SEG_CLASSES))
    for split, (_, label_dir) in VOC_SEM_SEG_SPLITS.items():
        name = f"voc_2012_sem_seg_{split}"
        DatasetCatalog.register(name, functools.partial(load_voc_sem_seg, voc_root, split))
        MetadataCatalog.get(name).set(
            stuff_classes=list(VOC_SEM_SEG_CLASSES), stuff_colors=colors, ignore_label=255, evaluator_type="sem_seg",
            image_root=os.path.join(voc_root, "JPEGImages"), sem_seg_root=os.path.join(voc_root, label_dir))
