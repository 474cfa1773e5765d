"""Loaders and registration for COCO panoptic annotations (json + PNG of segment ids).

A panoptic PNG stores, per pixel, the segment id ``R + 256 * G + 256**2 * B`` (0 = void);
the json's ``segments_info`` says which category each segment id is.

Metadata conventions (the keys each function needs are listed in its docstring; use
:func:`panoptic_metadata` to build them from the json's ``categories``):

* **standard** (``register_coco_panoptic``): ``thing_classes`` = the K thing names;
  ``stuff_classes`` = all K + S names, things first (so a thing's contiguous id is the
  same in both lists); ``thing_dataset_id_to_contiguous_id`` maps thing ids to 0..K-1;
  ``stuff_dataset_id_to_contiguous_id`` maps every category id (things and stuff) to
  0..K+S-1. Semantic labels use the ``stuff_classes`` ids.
* **separated** (``register_coco_panoptic_separated``, PanopticFPN): ``thing_classes``
  and ``thing_dataset_id_to_contiguous_id`` as above; ``stuff_classes`` =
  ``["things"] + stuff names``; ``stuff_dataset_id_to_contiguous_id`` maps stuff ids
  only to 1..S (label 0 is "any thing"). Semantic labels are in that 0..S space.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.data.record_checks import check_segments_info

from .coco import check_coco_images, load_coco_json, read_json
from .paths import check_files_exist, resolve_under_root

__all__ = ["panoptic_metadata", "load_coco_panoptic_json", "register_coco_panoptic",
           "register_coco_panoptic_separated"]

logger = logging.getLogger(__name__)

_THINGS_COLOR = [128, 128, 128]
_MAP_KEYS = ("thing_dataset_id_to_contiguous_id", "stuff_dataset_id_to_contiguous_id")
_CLASS_KEYS = ("thing_classes", "stuff_classes") + _MAP_KEYS


def panoptic_metadata(categories: Sequence[Mapping[str, Any]], separated: bool = False) -> Dict[str, Any]:
    """Class metadata for a panoptic dataset from its json ``categories``.

    Args:
        categories: ``[{id, name, isthing (0/1), color (optional RGB)}, ...]`` as in a
            COCO panoptic json.
        separated: build the separated convention instead of the standard one (module doc).

    Returns:
        ``thing_classes, stuff_classes, thing_dataset_id_to_contiguous_id,
        stuff_dataset_id_to_contiguous_id`` and, when every category has a ``color``,
        ``thing_colors, stuff_colors`` (the "things" entry of the separated convention is gray).
    """
    things = sorted((c for c in categories if c["isthing"]), key=lambda c: c["id"])
    stuff = sorted((c for c in categories if not c["isthing"]), key=lambda c: c["id"])
    if separated:
        stuff_list, first_stuff = stuff, 1
        stuff_names = ["things"] + [c["name"] for c in stuff]
    else:
        stuff_list, first_stuff = things + stuff, 0
        stuff_names = [c["name"] for c in stuff_list]
    meta: Dict[str, Any] = {
        "thing_classes": [c["name"] for c in things],
        "stuff_classes": stuff_names,
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(things)},
        "stuff_dataset_id_to_contiguous_id": {c["id"]: i + first_stuff for i, c in enumerate(stuff_list)},
    }
    if all("color" in c for c in categories):
        meta["thing_colors"] = [list(c["color"]) for c in things]
        meta["stuff_colors"] = ([_THINGS_COLOR] if separated else []) + [list(c["color"]) for c in stuff_list]
    return meta


def _require(metadata: Mapping[str, Any], keys: Sequence[str], who: str) -> None:
    missing = [k for k in keys if metadata.get(k) is None]
    if missing:
        raise ValueError(
            f"{who} needs the metadata keys {list(keys)}; missing {missing}. Build them from the panoptic "
            f"json's categories with seg_research.data.datasets.panoptic_metadata(categories)."
        )


def _check_separated(metadata: Mapping[str, Any]) -> None:
    stuff_ids = sorted(metadata["stuff_dataset_id_to_contiguous_id"].values())
    classes = list(metadata["stuff_classes"])
    if stuff_ids != list(range(1, len(classes))) or classes[:1] != ["things"]:
        raise ValueError(
            "register_coco_panoptic_separated needs the separated metadata convention: stuff_classes = "
            "['things'] + stuff names and stuff_dataset_id_to_contiguous_id mapping stuff ids to 1..S; got "
            f"stuff_classes={classes} and contiguous stuff ids {stuff_ids}. Build it with "
            "panoptic_metadata(categories, separated=True)."
        )


def panoptic_annotations(data: Dict[str, Any], json_file: str) -> Dict[Any, Dict[str, Any]]:
    """``{image_id: annotation}`` after checking each annotation's ``image_id`` (unique int or
    str), ``file_name`` (str) and ``segments_info`` (list of dicts with an int ``category_id``)."""
    def fail(problem: str, image_id: Any) -> None:
        raise DataError(f"Malformed panoptic annotation: {problem}. Fix the panoptic json (or re-export it).",
                        file_name=json_file, record=image_id)

    anns: Dict[Any, Dict[str, Any]] = {}
    for ann in data.get("annotations", []):
        image_id = ann.get("image_id")
        if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
            fail(f"image_id {image_id!r} is not an int or a string", None)
        if image_id in anns:
            fail("this image_id has two annotations; each image has exactly one", image_id)
        if not isinstance(ann.get("file_name"), str) or not ann["file_name"] or "\x00" in ann["file_name"]:
            fail(f"file_name {ann.get('file_name')!r} is not the path of a PNG", image_id)
        segments = ann.get("segments_info")
        if not isinstance(segments, list) or not all(isinstance(seg, dict) for seg in segments):
            fail(f"segments_info must be a list of dicts, got {segments!r:.80}", image_id)
        for seg in segments:
            if not isinstance(seg.get("category_id"), int) or isinstance(seg.get("category_id"), bool):
                fail(f"segment {seg.get('id')!r} has category_id {seg.get('category_id')!r}; expected an int", image_id)
        anns[image_id] = ann
    return anns


def convert_segment(seg: Dict[str, Any], meta: Mapping[str, Any], json_file: str, image_id: Any) -> Dict[str, Any]:
    thing_map = meta["thing_dataset_id_to_contiguous_id"]
    stuff_map = meta["stuff_dataset_id_to_contiguous_id"]
    cat = seg.get("category_id")
    if cat in thing_map:
        contiguous, isthing = thing_map[cat], True
    elif cat in stuff_map:
        contiguous, isthing = stuff_map[cat], False
    else:
        raise DataError(
            f"Segment {seg.get('id')!r} of image_id {image_id!r} has category_id {cat!r}, which is in neither "
            f"thing_dataset_id_to_contiguous_id nor stuff_dataset_id_to_contiguous_id of the metadata. Add the "
            f"category to the metadata (panoptic_metadata(categories)) or fix the json.",
            file_name=json_file, record=image_id,
        )
    return {"id": seg.get("id"), "category_id": contiguous, "iscrowd": seg.get("iscrowd", 0), "isthing": isthing,
            "area": seg.get("area"), "bbox": seg.get("bbox")}


def load_coco_panoptic_json(json_file: str, image_dir: str, gt_dir: str, meta: Mapping[str, Any],
                            allow_outside_root: bool = False) -> List[Dict[str, Any]]:
    """Load a COCO panoptic json as dataset dicts, one per image, sorted by ``image_id``.

    Args:
        json_file: the panoptic json (``images``, ``annotations`` with ``file_name`` of the
            PNG and ``segments_info``).
        image_dir: folder of the images (``images[].file_name`` are relative to it).
        gt_dir: folder of the panoptic PNGs (``annotations[].file_name`` are relative to it).
        meta: needs ``thing_dataset_id_to_contiguous_id`` and
            ``stuff_dataset_id_to_contiguous_id`` (standard or separated convention, see
            the module doc); a dict or a ``Metadata``.
        allow_outside_root: accept ``file_name`` values that leave ``image_dir`` / ``gt_dir``.

    Returns:
        list of dicts ``{file_name, height, width, image_id, pan_seg_file_name,
        segments_info: [{id, category_id (contiguous), iscrowd, isthing (bool), area,
        bbox (XYWH absolute pixels)}]}``.

    Raises:
        DataError: naming the json and the image id: malformed json (not UTF-8, syntax,
            wrong types or missing keys, duplicate ids, segments failing
            :func:`check_segments_info`), an unknown category, an image without a panoptic
            annotation (or the reverse), a path leaving its root, or images/PNGs missing on disk.
    """
    _require(meta, _MAP_KEYS, "load_coco_panoptic_json")
    data = read_json(json_file)
    images = check_coco_images(data, json_file)
    anns = panoptic_annotations(data, json_file)
    unmatched = sorted(images.keys() ^ anns.keys(), key=str)
    if unmatched:
        raise DataError(
            f"{len(unmatched)} image_id(s) appear in only one of 'images' and 'annotations', e.g. "
            f"{unmatched[:5]}. Each image needs exactly one panoptic annotation (its PNG and segments_info).",
            file_name=json_file,
        )
    records = []
    for image_id in sorted(images):
        img, ann = images[image_id], anns[image_id]
        segments_info = [convert_segment(s, meta, json_file, image_id) for s in ann["segments_info"]]
        check_segments_info(segments_info, file_name=json_file, record=image_id)
        records.append({
            "file_name": resolve_under_root(image_dir, img["file_name"], record=image_id,
                                            allow_outside=allow_outside_root),
            "height": img["height"],
            "width": img["width"],
            "image_id": image_id,
            "pan_seg_file_name": resolve_under_root(gt_dir, ann["file_name"], record=image_id,
                                                    allow_outside=allow_outside_root),
            "segments_info": segments_info,
        })
    check_files_exist([r["file_name"] for r in records] + [r["pan_seg_file_name"] for r in records],
                      "images and panoptic PNGs listed in the json",
                      f"Check image_root '{image_dir}' and panoptic_root '{gt_dir}'.", source=json_file)
    logger.info(f"Loaded {len(records)} images in COCO panoptic format from {json_file}")
    return records


def register_coco_panoptic(name: str, metadata: Dict[str, Any], image_root: str, panoptic_root: str,
                           panoptic_json: str, instances_json: Optional[str] = None,
                           allow_outside_root: bool = False) -> None:
    """Register ``name``: a lazy :func:`load_coco_panoptic_json` with standard-convention metadata.

    ``metadata`` needs ``thing_classes, stuff_classes, thing_dataset_id_to_contiguous_id,
    stuff_dataset_id_to_contiguous_id`` in the **standard** convention (module doc;
    ``panoptic_metadata(categories)``), optionally ``thing_colors, stuff_colors``.
    ``MetadataCatalog.get(name)`` also gets ``panoptic_root, image_root, panoptic_json,
    json_file`` (= ``instances_json``, may be None), ``evaluator_type="coco_panoptic_seg"``,
    ``ignore_label=255`` and ``label_divisor=1000``. Paths in the json must stay inside
    ``image_root`` / ``panoptic_root`` unless ``allow_outside_root``.
    """
    _require(metadata, _CLASS_KEYS, "register_coco_panoptic")
    DatasetCatalog.register(name, lambda: load_coco_panoptic_json(panoptic_json, image_root, panoptic_root, metadata,
                                                                  allow_outside_root=allow_outside_root))
    MetadataCatalog.get(name).set(
        panoptic_root=panoptic_root, image_root=image_root, panoptic_json=panoptic_json, json_file=instances_json,
        evaluator_type="coco_panoptic_seg", ignore_label=255, label_divisor=1000, **metadata,
    )


def load_separated(name: str, metadata: Mapping[str, Any], image_root: str, panoptic_root: str,
                    panoptic_json: str, sem_seg_root: str, instances_json: str,
                    allow_outside_root: bool) -> List[Dict[str, Any]]:
    """Instance records merged by ``file_name`` with panoptic and stuff-label fields."""
    instances = {r["file_name"]: r for r in load_coco_json(instances_json, image_root, name,
                                                           allow_outside_root=allow_outside_root)}
    panoptic = {r["file_name"]: r for r in load_coco_panoptic_json(panoptic_json, image_root, panoptic_root, metadata,
                                                                   allow_outside_root=allow_outside_root)}
    unmatched = sorted(instances.keys() ^ panoptic.keys())
    if unmatched:
        raise DataError(
            f"{len(unmatched)} image(s) appear in only one of the instances json '{instances_json}' and the "
            f"panoptic json, e.g. {unmatched[:5]}. Both must describe the same images.",
            file_name=panoptic_json,
        )
    records = []
    for file_name, inst in instances.items():
        pan = panoptic[file_name]
        png = os.path.relpath(pan["pan_seg_file_name"], panoptic_root)
        records.append({**inst, "pan_seg_file_name": pan["pan_seg_file_name"], "segments_info": pan["segments_info"],
                        "sem_seg_file_name": resolve_under_root(sem_seg_root, png, record=inst["image_id"],
                                                                allow_outside=allow_outside_root)})
    check_files_exist([r["sem_seg_file_name"] for r in records], "stuff label PNGs",
                      f"Each panoptic PNG needs a stuff label PNG of the same name under sem_seg_root "
                      f"'{sem_seg_root}'; generate them from the panoptic PNGs.", source=panoptic_json)
    return records


def register_coco_panoptic_separated(name: str, metadata: Dict[str, Any], image_root: str, panoptic_root: str,
                                     panoptic_json: str, sem_seg_root: str, instances_json: str,
                                     allow_outside_root: bool = False) -> None:
    """Register ``name + "_separated"``: instances, stuff labels and panoptic ground truth in one record.

    Each record is a :func:`load_coco_json` record of ``instances_json`` (``annotations``
    with contiguous thing ids) plus ``pan_seg_file_name`` and ``segments_info`` from
    ``panoptic_json`` and ``sem_seg_file_name`` = ``sem_seg_root/<name of the panoptic
    PNG>`` (uint8 stuff labels: 0 = things, 1..S = stuff, 255 = ignore).

    ``metadata`` needs ``thing_classes, stuff_classes, thing_dataset_id_to_contiguous_id,
    stuff_dataset_id_to_contiguous_id`` in the **separated** convention (module doc;
    ``panoptic_metadata(categories, separated=True)``), optionally colors. The metadata
    also gets ``panoptic_root, image_root, panoptic_json, sem_seg_root, json_file``
    (= ``instances_json``), ``evaluator_type="coco_panoptic_seg"``, ``ignore_label=255``
    and ``label_divisor=1000``. Paths in the jsons must stay inside their roots unless
    ``allow_outside_root``.
    """
    _require(metadata, _CLASS_KEYS, "register_coco_panoptic_separated")
    _check_separated(metadata)
    panoptic_name = name + "_separated"
    DatasetCatalog.register(panoptic_name, lambda: load_separated(
        panoptic_name, metadata, image_root, panoptic_root, panoptic_json, sem_seg_root, instances_json,
        allow_outside_root))
    MetadataCatalog.get(panoptic_name).set(
        panoptic_root=panoptic_root, image_root=image_root, panoptic_json=panoptic_json, sem_seg_root=sem_seg_root,
        json_file=instances_json, evaluator_type="coco_panoptic_seg", ignore_label=255, label_divisor=1000,
        **metadata,
    )
