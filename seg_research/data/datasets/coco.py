"""Loaders for COCO-format instance annotations and for folders of semantic label PNGs.

Both return detectron2-style dataset dicts (``list[dict]``, one per image):

* instances: ``file_name, height, width, image_id, annotations`` where each annotation
  is ``{bbox: [x, y, w, h] (XYWH, absolute pixels, as in the json), bbox_mode:
  BoxMode.XYWH_ABS, category_id: int (contiguous 0..K-1), segmentation: list of flat
  polygons [x0, y0, x1, y1, ...] or an RLE dict {size: [h, w], counts}, iscrowd: 0/1}``;
* semantic: ``file_name, sem_seg_file_name, height, width, image_id``.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from PIL import Image
from pycocotools.coco import COCO

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.structures import BoxMode
from seg_research.utils.file_io import PathManager

from .paths import check_files_exist, resolve_under_root

__all__ = ["read_json", "load_coco_json", "register_coco_instances", "load_sem_seg"]

logger = logging.getLogger(__name__)


def read_json(json_file: str) -> Any:
    """Parse ``json_file``; a syntax error becomes a :class:`DataError` with its line and column."""
    with PathManager.open(json_file, "r", encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"Malformed JSON: {e.msg} at line {e.lineno}, column {e.colno} (char {e.pos}). "
            f"The file is truncated or not JSON; re-download or re-export it.",
            file_name=json_file,
        ) from e


def _index_coco(data: Dict[str, Any], json_file: str) -> COCO:
    """Build pycocotools' index over already-parsed ``data`` (its prints silenced), checking ids."""
    repeated = [i for i, n in Counter(a.get("id") for a in data.get("annotations", [])).items() if n > 1]
    if repeated:
        dup = repeated[0]
        raise DataError(f"Annotation id {dup!r} appears more than once; annotation ids must be unique.",
                        file_name=json_file, record=dup)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    for ann in coco.anns.values():
        if ann.get("image_id") not in coco.imgs:
            raise DataError(f"Annotation {ann.get('id')!r} refers to image_id {ann.get('image_id')!r}, which is "
                            f"not listed in 'images'. Add the image or remove the annotation.",
                            file_name=json_file, record=ann.get("id"))
    return coco


def _contiguous_category_map(coco: COCO, json_file: str, dataset_name: Optional[str]) -> Dict[int, int]:
    """Map json category ids (sorted ascending) to 0..K-1; record it in the metadata of ``dataset_name``."""
    cat_ids = sorted(coco.getCatIds())
    id_map = {cat_id: i for i, cat_id in enumerate(cat_ids)}
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        known = meta.get("thing_dataset_id_to_contiguous_id")
        if known is not None and dict(known) != id_map:
            raise DataError(
                f"The categories of this json give the id mapping {id_map}, but the metadata of dataset "
                f"'{dataset_name}' already has thing_dataset_id_to_contiguous_id={dict(known)}. Make the "
                f"registered metadata match the json's categories.",
                file_name=json_file,
            )
        meta.set(thing_classes=[c["name"] for c in coco.loadCats(cat_ids)], thing_dataset_id_to_contiguous_id=id_map)
    return id_map


def _clean_segmentation(segm: Any) -> Tuple[Any, int]:
    """Drop polygons with fewer than 3 points or an odd number of coordinates.

    Returns ``(segmentation or None when no polygon is left, number of polygons dropped)``.
    RLE dicts (compressed or not) are returned unchanged.
    """
    if isinstance(segm, dict):
        return segm, 0
    valid = [p for p in segm if isinstance(p, list) and len(p) % 2 == 0 and len(p) >= 6]
    return (valid or None), len(segm) - len(valid)


def load_coco_json(json_file: str, image_root: str, dataset_name: Optional[str] = None,
                   extra_annotation_keys: Optional[Sequence[str]] = None,
                   allow_outside_root: bool = False) -> List[Dict[str, Any]]:
    """Load a COCO instances json as dataset dicts, one per image, sorted by ``image_id``.

    Category ids of the json are mapped to contiguous ids ``0..K-1`` in ascending id
    order. With ``dataset_name``, ``MetadataCatalog.get(dataset_name)`` gets
    ``thing_classes`` (names in that order) and ``thing_dataset_id_to_contiguous_id``.

    Images without annotations are kept with ``annotations: []`` (filtering them is the
    data-loader builder's job). Polygons with fewer than 3 points or an odd number of
    coordinates are dropped, and an annotation left with no polygon is removed; one
    warning reports the counts. RLE segmentations (compressed ``counts`` string, or
    uncompressed ``counts`` list) are kept as they are.

    Args:
        json_file: path of the COCO instances json.
        image_root: folder the json's ``images[].file_name`` are relative to.
        dataset_name: name whose metadata receives the class names and id mapping.
        extra_annotation_keys: annotation keys copied as-is besides ``bbox, category_id,
            segmentation, iscrowd``.
        allow_outside_root: accept ``file_name`` values that leave ``image_root``.

    Returns:
        list of dicts ``{file_name, height, width, image_id, annotations}`` (see module doc).

    Raises:
        DataError: malformed json, an annotation whose ``category_id`` is not in
            ``categories``, duplicate annotation ids, an annotation of an unknown image,
            an image path leaving ``image_root``, or image files missing on disk.
    """
    coco = _index_coco(read_json(json_file), json_file)
    id_map = _contiguous_category_map(coco, json_file, dataset_name)
    keys = ["bbox", "iscrowd"] + list(extra_annotation_keys or [])
    dropped_polygons = dropped_annotations = 0
    records = []
    for image_id in sorted(coco.imgs):
        img = coco.imgs[image_id]
        annotations = []
        for ann in coco.imgToAnns[image_id]:
            if ann.get("category_id") not in id_map:
                raise DataError(
                    f"Annotation {ann.get('id')!r} (image_id {image_id!r}) has category_id "
                    f"{ann.get('category_id')!r}, which is not in 'categories' (ids {sorted(id_map)}). "
                    f"Add the category to the json or fix the annotation.",
                    file_name=json_file, record=ann.get("id"),
                )
            obj = {k: ann[k] for k in keys if k in ann}
            obj.setdefault("iscrowd", 0)
            obj["bbox_mode"] = BoxMode.XYWH_ABS
            obj["category_id"] = id_map[ann["category_id"]]
            if "segmentation" in ann:
                segm, n_bad = _clean_segmentation(ann["segmentation"])
                dropped_polygons += n_bad
                if segm is None:
                    dropped_annotations += 1
                    continue
                obj["segmentation"] = segm
            annotations.append(obj)
        records.append({
            "file_name": resolve_under_root(image_root, img["file_name"], record=image_id,
                                            allow_outside=allow_outside_root),
            "height": img["height"],
            "width": img["width"],
            "image_id": image_id,
            "annotations": annotations,
        })
    if dropped_polygons or dropped_annotations:
        logger.warning(
            f"{json_file}: dropped {dropped_polygons} invalid polygon(s) (fewer than 3 points or an odd number "
            f"of coordinates); removed {dropped_annotations} annotation(s) left without any valid polygon."
        )
    check_files_exist([r["file_name"] for r in records], "images listed in the json",
                      f"Check that image_root '{image_root}' is the folder the json's file_name values "
                      f"are relative to.", source=json_file)
    logger.info(f"Loaded {len(records)} images in COCO format from {json_file}")
    return records


def register_coco_instances(name: str, metadata: Dict[str, Any], json_file: str, image_root: str) -> None:
    """Register a COCO instances dataset: a lazy :func:`load_coco_json` plus its metadata.

    ``MetadataCatalog.get(name)`` gets ``json_file, image_root, evaluator_type="coco"``
    and every key of ``metadata`` (may be ``{}``: ``thing_classes`` and
    ``thing_dataset_id_to_contiguous_id`` are filled from the json when it is loaded;
    optional ``thing_colors``: one RGB triple per class for visualisation).
    """
    DatasetCatalog.register(name, lambda: load_coco_json(json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata)


def _files_by_stem(root: str, ext: str) -> Dict[str, str]:
    """``{relative path without extension: full path}`` of every ``*.ext`` file under ``root`` (recursive)."""
    suffix = "." + ext.lstrip(".")
    found = {}
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith(suffix):
                full = os.path.join(folder, f)
                found[os.path.relpath(full, root)[: -len(suffix)]] = full
    return found


def load_sem_seg(gt_root: str, image_root: str, gt_ext: str = "png", image_ext: str = "jpg") -> List[Dict[str, Any]]:
    """Pair images and semantic label PNGs by their path relative to their root, without extension.

    ``image_root/a/b.jpg`` pairs with ``gt_root/a/b.png``. A label PNG holds one uint8
    class id per pixel (contiguous ids, 255 = ignore).

    Returns:
        list of dicts ``{file_name, sem_seg_file_name, height, width, image_id}``, sorted by
        relative path; ``height``/``width`` come from the label PNG header (not decoded)
        and ``image_id`` is the relative path without extension (``"a/b"``).

    Raises:
        DataError: a folder holds no file of its extension, or some files have no partner.
    """
    gts = _files_by_stem(gt_root, gt_ext)
    images = _files_by_stem(image_root, image_ext)
    if not gts or not images:
        empty, ext = (gt_root, gt_ext) if not gts else (image_root, image_ext)
        raise DataError(f"No '.{ext.lstrip('.')}' file found under '{empty}'. Check the folder and the extension.",
                        file_name=empty)
    unpaired = sorted(images.keys() ^ gts.keys())
    if unpaired:
        listed = ", ".join(f"'{images.get(k) or gts.get(k)}'" for k in unpaired[:5])
        raise DataError(
            f"{len(unpaired)} file(s) have no partner ({len(images)} images under '{image_root}', {len(gts)} "
            f"labels under '{gt_root}'), e.g. {listed}. Each image needs a label with the same relative path "
            f"and name; remove the extra files or fix the names.",
            file_name=gt_root,
        )
    records = []
    for stem in sorted(gts):
        with PathManager.open(gts[stem], "rb") as f:
            width, height = Image.open(f).size
        records.append({"file_name": images[stem], "sem_seg_file_name": gts[stem], "height": height,
                        "width": width, "image_id": stem})
    logger.info(f"Loaded {len(records)} images with semantic labels from {image_root} and {gt_root}")
    return records
