"""ADE20K panoptic and instance segmentation (Mask2Former's ``ade20k_panoptic_*`` / ``ade20k_instance_*``).

ADE20K's instance annotations (``annotations_instance.tar`` of the Scene Parsing benchmark,
http://sceneparsing.csail.mit.edu/) combined with the semantic labels give panoptic ground truth for the
150 classes (100 of them things). :func:`prepare_ade20k_panoptic` (``datasets/prepare_ade20k_panoptic.py``)
writes them into the ADE20K folder from the two downloads, as Mask2Former's
``datasets/prepare_ade20k_pan_seg.py`` and ``prepare_ade20k_ins_seg.py`` do (whose outputs load as well); this
module reads that layout::

    ADEChallengeData2016/
      images/{training,validation}/ADE_*.jpg
      annotations/{training,validation}/ADE_*.png        released labels (0 other, 1..150): semantic labels
      annotations_instance/{training,validation}/ADE_*.png   the instance download: R = instance class 1..100,
                                                         G = instance number (0: none); read when preparing
      ade20k_panoptic_{train,val}.json                   COCO panoptic json: image ids "ADE_train_00000001",
      ade20k_panoptic_{train,val}/ADE_*.png              categories 0..149 (ADE150 label - 1), segment PNGs
      ade20k_instance_{train,val}.json                   COCO instances json (RLE masks), the 100 thing ids

Class ids follow Mask2Former's in-order convention (:func:`~.panoptic_sem_seg.panoptic_metadata_in_order`):
contiguous id = ADE150 label - 1 for all 150 classes, so thing ids are not 0..99 in the panoptic datasets;
the instance datasets number their 100 things 0..99 (in id order). The semantic labels are read from
``annotations/`` with :data:`~.ade20k.ADE20K_LABEL_MAP` (0 -> 255, v -> v - 1), so upstream's converted
copy ``annotations_detectron2/`` is not needed.

Registered (:func:`register_all_ade20k_panoptic`): ``ade20k_panoptic_{train,val}``
(``evaluator_type="ade20k_panoptic_seg"``, ``ignore_label=255``, ``label_divisor=1000``, ``json_file`` = the
instance json) and ``ade20k_instance_{train,val}`` (``evaluator_type="coco"``).
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.data.image_io import read_image_size, read_sem_seg, write_panoptic_ids
from seg_research.utils.file_io import atomic_write_json

from .ade20k import ADE20K_LABEL_MAP, ADE20K_SEM_SEG_CLASSES
from .coco import load_coco_json
from .panoptic_sem_seg import load_panoptic_with_sem_seg, panoptic_metadata_in_order
from .paths import check_dirs_exist

__all__ = ["ADE20K_THING_IDS", "ADE20K_INSTANCE_CLASSES", "ADE20K_PALETTE", "ADE20K_PANOPTIC_CATEGORIES",
           "load_ade20k_panoptic", "load_ade20k_instance", "prepare_ade20k_panoptic", "register_all_ade20k_panoptic"]

logger = logging.getLogger(__name__)

#: the 100 ADE20K classes with instance annotations, by 0-based ADE150 id; instance class k (the R value of
#: ``annotations_instance/`` PNGs, 1..100) is ``ADE20K_THING_IDS[k - 1]`` (the benchmark's category mapping)
ADE20K_THING_IDS = (
    7, 8, 10, 12, 14, 15, 18, 19, 20, 22, 23, 24, 27, 30, 31, 32, 33, 35, 36, 37, 38, 39, 41, 42, 43, 44, 45, 47,
    49, 50, 53, 55, 56, 57, 58, 62, 64, 65, 66, 67, 69, 70, 71, 72, 73, 74, 75, 76, 78, 80, 81, 82, 83, 85, 86, 87,
    88, 89, 90, 92, 93, 95, 97, 98, 102, 103, 104, 107, 108, 110, 111, 112, 115, 116, 118, 119, 120, 121, 123, 124,
    125, 126, 127, 129, 130, 132, 133, 134, 135, 136, 137, 138, 139, 142, 143, 144, 146, 147, 148, 149,
)
#: their names in the instance json (``ade20k_instance_{train,val}.json``), in id order
ADE20K_INSTANCE_CLASSES = (
    'bed', 'windowpane', 'cabinet', 'person', 'door', 'table', 'curtain', 'chair', 'car', 'painting', 'sofa',
    'shelf', 'mirror', 'armchair', 'seat', 'fence', 'desk', 'wardrobe', 'lamp', 'bathtub', 'railing', 'cushion',
    'box', 'column', 'signboard', 'chest of drawers', 'counter', 'sink', 'fireplace', 'refrigerator', 'stairs',
    'case', 'pool table', 'pillow', 'screen door', 'bookcase', 'coffee table', 'toilet', 'flower', 'book', 'bench',
    'countertop', 'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat', 'arcade machine', 'bus',
    'towel', 'light', 'truck', 'chandelier', 'awning', 'streetlight', 'booth', 'television receiver', 'airplane',
    'apparel', 'pole', 'bannister', 'ottoman', 'bottle', 'van', 'ship', 'fountain', 'washer', 'plaything', 'stool',
    'barrel', 'basket', 'bag', 'minibike', 'oven', 'ball', 'food', 'step', 'trade name', 'microwave', 'pot',
    'animal', 'bicycle', 'dishwasher', 'screen', 'sculpture', 'hood', 'sconce', 'vase', 'traffic light', 'tray',
    'ashcan', 'fan', 'plate', 'monitor', 'bulletin board', 'radiator', 'glass', 'clock', 'flag',
)
#: Mask2Former's RGB colour of each ADE150 class (the palette of its ADE20K tools)
ADE20K_PALETTE = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80), (140, 140, 140),
    (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70), (8,
    255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230,
    250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92),
    (112, 9, 255), (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255), (224,
    255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20), (255, 8, 41), (255, 5, 153),
    (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140), (250, 10, 15), (20, 255, 0), (31,
    255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255),
    (31, 0, 255), (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133), (255, 0,
    0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0), (0, 82, 255), (0, 255, 41), (0,
    255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153), (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0,
    102), (255, 173, 0), (255, 0, 20), (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0,
    255, 194), (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255), (0, 255, 163),
    (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255), (163, 255, 0), (255, 235, 0), (8, 184,
    170), (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112),
    (92, 255, 0), (0, 224, 255), (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255,
    0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255), (255, 0,
    122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255), (255, 255, 0), (0, 153, 255),
    (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0,
    255), (0, 255, 184), (0, 92, 255), (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0),
    (92, 0, 255),
)

#: the panoptic json's 150 categories: id = ADE150 label - 1
ADE20K_PANOPTIC_CATEGORIES = tuple(
    {"id": i, "name": name, "isthing": int(i in ADE20K_THING_IDS), "color": list(ADE20K_PALETTE[i])}
    for i, name in enumerate(ADE20K_SEM_SEG_CLASSES)
)
_SPLITS = {"train": "training", "val": "validation"}
_HINT = ("Unpack ADEChallengeData2016.zip into $SEG_DATASETS and annotations_instance.tar "
         "(http://sceneparsing.csail.mit.edu/) inside ADEChallengeData2016/, then run "
         "python datasets/prepare_ade20k_panoptic.py, which writes ade20k_panoptic_{train,val}[.json] and "
         "ade20k_instance_{train,val}.json there (Mask2Former's prepare_ade20k_pan_seg.py / prepare_ade20k_ins_seg.py "
         "outputs load too; see datasets/README.md).")


def _paths(ade_root: str, split: str) -> Dict[str, str]:
    if split not in _SPLITS:
        raise ValueError(f"ADE20K: split must be one of {sorted(_SPLITS)}, got {split!r}.")
    return {"image_root": os.path.join(ade_root, "images", _SPLITS[split]),
            "sem_seg_root": os.path.join(ade_root, "annotations", _SPLITS[split]),
            "panoptic_root": os.path.join(ade_root, f"ade20k_panoptic_{split}"),
            "panoptic_json": os.path.join(ade_root, f"ade20k_panoptic_{split}.json"),
            "json_file": os.path.join(ade_root, f"ade20k_instance_{split}.json")}


def load_ade20k_panoptic(ade_root: str, split: str) -> List[Dict[str, Any]]:
    """Panoptic dataset dicts of an ADE20K split (module doc).

    Args:
        ade_root: the ``ADEChallengeData2016`` folder.
        split: ``"train"`` or ``"val"``.

    Returns:
        dicts ``{file_name, height, width, image_id, pan_seg_file_name, sem_seg_file_name,
        sem_seg_label_map, segments_info: [{id, category_id (ADE150 label - 1), iscrowd, isthing, area,
        bbox}]}``, sorted by image id.

    Raises:
        DataError: a missing folder or json (named, with what to unpack and run), a malformed json, or
            images / PNGs missing on disk.
    """
    p = _paths(ade_root, split)
    return load_panoptic_with_sem_seg(p["panoptic_json"], p["image_root"], p["panoptic_root"], p["sem_seg_root"],
                                      panoptic_metadata_in_order(ADE20K_PANOPTIC_CATEGORIES), "ADE20K panoptic",
                                      _HINT, sem_seg_label_map=ADE20K_LABEL_MAP)


def load_ade20k_instance(ade_root: str, split: str, dataset_name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Instance dataset dicts of an ADE20K split: :func:`~.coco.load_coco_json` of
    ``ade20k_instance_<split>.json`` (category ids = :data:`ADE20K_THING_IDS`, mapped to 0..99), images
    under ``images/<training|validation>``. With ``dataset_name``, its metadata is checked against the json's
    categories. Raises DataError for a missing folder or json (named, with what to unpack and run)."""
    p = _paths(ade_root, split)
    check_dirs_exist([p["image_root"]], "ADE20K instance", _HINT)
    if not os.path.isfile(p["json_file"]):
        raise DataError(f"ADE20K instance json not found. {_HINT}", file_name=p["json_file"])
    return load_coco_json(p["json_file"], p["image_root"], dataset_name)


def _bbox(mask: np.ndarray) -> List[int]:
    """XYWH box (absolute pixels, inclusive extent) of a non-empty boolean mask."""
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def _convert_image(semantic_png: str, instance_png: str) -> Tuple[np.ndarray, List[Dict[str, Any]], List[Dict]]:
    """Panoptic ids, panoptic ``segments_info`` and instance annotations (without ids) of one image.

    Stuff classes present in the semantic labels become one segment each (in class order); each
    instance number of the instance PNG becomes a thing segment (in number order), painted over the stuff,
    as Mask2Former's scripts do. Thing-class pixels outside every instance and label 0 stay void (0).
    """
    labels = ADE20K_LABEL_MAP[read_sem_seg(semantic_png)]
    instance = np.asarray(Image.open(instance_png).convert("RGB"))
    if instance.shape[:2] != labels.shape:
        raise DataError(f"The instance PNG is {instance.shape[:2]} but the semantic labels are {labels.shape}; "
                        f"both must be the image's size.", file_name=instance_png)
    ids = np.zeros(labels.shape, np.int64)
    segments: List[Tuple[int, bool]] = []  # (category, isthing) of segment id k + 1
    for category in np.unique(labels).tolist():
        if category != 255 and category not in ADE20K_THING_IDS:
            segments.append((category, False))
            ids[labels == category] = len(segments)
    for number in np.unique(instance[..., 1]).tolist():
        if number == 0:
            continue
        mask = instance[..., 1] == number
        classes = np.unique(instance[..., 0][mask]).tolist()
        if len(classes) != 1 or not 1 <= classes[0] <= len(ADE20K_THING_IDS):
            raise DataError(f"Instance {number} has instance classes {classes} (R channel); expected one value in "
                            f"1..{len(ADE20K_THING_IDS)}. Use the PNGs of annotations_instance.tar as released.",
                            file_name=instance_png)
        segments.append((ADE20K_THING_IDS[classes[0] - 1], True))
        ids[mask] = len(segments)
    segments_info, instances = [], []
    for segment_id, (category, isthing) in enumerate(segments, start=1):
        mask = ids == segment_id
        if not mask.any():  # a stuff class entirely covered by instances
            continue
        segments_info.append({"id": segment_id, "category_id": category, "area": int(mask.sum()),
                              "bbox": _bbox(mask), "iscrowd": 0})
        if isthing:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            instances.append({"category_id": category, "segmentation": rle, "area": int(mask.sum()),
                              "bbox": _bbox(mask), "iscrowd": 0})
    return ids, segments_info, instances


def prepare_ade20k_panoptic(ade_root: str, split: str) -> int:
    """Write ``ade20k_panoptic_<split>.json``, ``ade20k_panoptic_<split>/`` and ``ade20k_instance_<split>.json``
    (module doc) from ``images/``, ``annotations/`` and ``annotations_instance/`` of ``ade_root``.

    Segment ids are numbered 1, 2, ... per image (Mask2Former's scripts draw random ones; the
    evaluation matches segments by overlap, not by id). Images are listed in name order, with their
    file stem as id. Files are written atomically.

    Returns:
        the number of images converted.

    Raises:
        DataError: a missing folder (named, with what to unpack where), an image without its semantic or
            instance PNG, or an instance PNG that is not the released format.
    """
    p = _paths(ade_root, split)
    instance_root = os.path.join(ade_root, "annotations_instance", _SPLITS[split])
    check_dirs_exist([p["image_root"], p["sem_seg_root"], instance_root], "ADE20K panoptic (prepare)", _HINT)
    stems = sorted(f[: -len(".jpg")] for f in os.listdir(p["image_root"]) if f.endswith(".jpg"))
    for folder, what in ((p["sem_seg_root"], "semantic label"), (instance_root, "instance")):
        missing = [s for s in stems if not os.path.isfile(os.path.join(folder, s + ".png"))]
        if missing:
            raise DataError(f"{len(missing)} of {len(stems)} images have no {what} PNG under '{folder}', e.g. "
                            f"{missing[:5]}. {_HINT}", file_name=os.path.join(folder, missing[0] + ".png"))
    os.makedirs(p["panoptic_root"], exist_ok=True)
    images, panoptic, instances = [], [], []
    for stem in stems:
        height, width = read_image_size(os.path.join(p["image_root"], stem + ".jpg"))
        ids, segments_info, objects = _convert_image(os.path.join(p["sem_seg_root"], stem + ".png"),
                                                     os.path.join(instance_root, stem + ".png"))
        if ids.shape != (height, width):
            raise DataError(f"The labels are {ids.shape} but the image is {(height, width)}.",
                            file_name=os.path.join(p["sem_seg_root"], stem + ".png"))
        write_panoptic_ids(os.path.join(p["panoptic_root"], stem + ".png"), ids)
        images.append({"id": stem, "file_name": stem + ".jpg", "height": height, "width": width})
        panoptic.append({"image_id": stem, "file_name": stem + ".png", "segments_info": segments_info})
        first = len(instances) + 1
        instances.extend({"id": first + k, "image_id": stem, **obj} for k, obj in enumerate(objects))
    atomic_write_json(p["panoptic_json"], {"images": images, "annotations": panoptic,
                                           "categories": [dict(c) for c in ADE20K_PANOPTIC_CATEGORIES]})
    atomic_write_json(p["json_file"], {"images": images, "annotations": instances, "categories": [
        {"id": k, "name": name} for k, name in zip(ADE20K_THING_IDS, ADE20K_INSTANCE_CLASSES, strict=True)]})
    logger.info(f"Wrote {p['panoptic_json']} and {p['json_file']} ({len(images)} images)")
    return len(images)


def register_all_ade20k_panoptic(datasets_root: str) -> None:
    """Register ``ade20k_panoptic_{train,val}`` and ``ade20k_instance_{train,val}`` (module doc) with files
    under ``datasets_root/ADEChallengeData2016``; nothing is read until a dataset is requested."""
    ade_root = os.path.join(datasets_root, "ADEChallengeData2016")
    panoptic_meta = panoptic_metadata_in_order(ADE20K_PANOPTIC_CATEGORIES)
    instance_meta = {"thing_classes": list(ADE20K_INSTANCE_CLASSES),
                     "thing_dataset_id_to_contiguous_id": {k: i for i, k in enumerate(ADE20K_THING_IDS)}}
    for split in _SPLITS:
        p = _paths(ade_root, split)
        name = f"ade20k_panoptic_{split}"
        DatasetCatalog.register(name, functools.partial(load_ade20k_panoptic, ade_root, split))
        MetadataCatalog.get(name).set(evaluator_type="ade20k_panoptic_seg", ignore_label=255, label_divisor=1000,
                                      **p, **panoptic_meta)
        name = f"ade20k_instance_{split}"
        DatasetCatalog.register(name, functools.partial(load_ade20k_instance, ade_root, split, name))
        MetadataCatalog.get(name).set(evaluator_type="coco", json_file=p["json_file"], image_root=p["image_root"],
                                      **instance_meta)
