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
from typing import Any, Dict, List, NoReturn, Optional, Sequence, Tuple

from pycocotools.coco import COCO

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.detection_utils import read_image_size
from seg_research.data.errors import DataError
from seg_research.data.record_checks import check_instance_annotation
from seg_research.structures import BoxMode
from seg_research.utils.file_io import PathManager

from .coco_export import convert_to_coco_json
from .paths import check_files_exist, resolve_under_root

__all__ = ["read_json", "check_coco_images", "load_coco_json", "register_coco_instances", "load_sem_seg",
           "convert_to_coco_json"]

logger = logging.getLogger(__name__)


def read_json(json_file: str) -> Any:
    """Parse ``json_file`` (UTF-8); a syntax or encoding error becomes a :class:`DataError` saying where."""
    with PathManager.open(json_file, "rb") as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"The file is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); JSON must be "
                        f"UTF-8. Re-export it, or convert it with e.g. iconv.", file_name=json_file) from e
    except json.JSONDecodeError as e:
        raise DataError(
            f"Malformed JSON: {e.msg} at line {e.lineno}, column {e.colno} (char {e.pos}). "
            f"The file is truncated or not JSON; re-download or re-export it.",
            file_name=json_file,
        ) from e
    except RecursionError as e:
        raise DataError("The JSON is nested too deeply to parse; it is not an annotation file.",
                        file_name=json_file) from e


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(json_file: str, problem: str, record: Any = None) -> NoReturn:
    raise DataError(f"Malformed annotation file: {problem}. Fix the json (or re-export it).",
                    file_name=json_file, record=record)


def check_coco_images(data: Any, json_file: str) -> Dict[Any, Dict[str, Any]]:
    """Check the top level of a COCO (instances or panoptic) json and its ``images``.

    ``data`` must be a dict whose ``images`` (and, if present, ``annotations`` and
    ``categories``) are lists of dicts; each image needs a unique ``id`` (int or str), a
    ``file_name`` that is a usable path, and ``height``/``width`` ints > 0.

    Returns:
        ``{image id: image dict}``.

    Raises:
        DataError: naming ``json_file`` and the image at fault.
    """
    if not isinstance(data, dict):
        _fail(json_file, f"the top level is a {type(data).__name__}, expected a dict with 'images', 'annotations' "
                         f"and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key, []), list) or not all(isinstance(x, dict) for x in data.get(key, [])):
            _fail(json_file, f"'{key}' must be a list of dicts")
    images: Dict[Any, Dict[str, Any]] = {}
    for img in data.get("images", []):
        image_id = img.get("id")
        if not (_is_int(image_id) or isinstance(image_id, str)):
            _fail(json_file, f"an image has id {image_id!r}; ids must be ints or strings", record=image_id)
        if image_id in images:
            _fail(json_file, f"image id {image_id!r} appears twice in 'images'", record=image_id)
        images[image_id] = img
        name = img.get("file_name")
        if not isinstance(name, str) or not name or "\x00" in name:
            _fail(json_file, f"image file_name {name!r} is not a path", record=image_id)
        try:
            os.fsencode(name)
        except UnicodeError:
            _fail(json_file, f"image file_name {name!r} cannot be encoded as a file-system path (invalid "
                             f"unicode); fix its encoding", record=image_id)
        for key in ("height", "width"):
            if not (_is_int(img.get(key)) and img[key] > 0):
                _fail(json_file, f"image {key} must be an int > 0, got {img.get(key)!r}", record=image_id)
    if len({type(image_id) for image_id in images}) > 1:
        _fail(json_file, "image ids mix ints and strings; use one type for all ids")
    return images


def _check_instances_json(data: Any, json_file: str) -> None:
    """Check what pycocotools indexes: category ``id``/``name``; annotation ``id``, ``image_id``, ``category_id``."""
    check_coco_images(data, json_file)
    category_ids = set()
    for cat in data.get("categories", []):
        if not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            _fail(json_file, f"a category needs an int 'id' and a str 'name', got {cat!r:.120}")
        if cat["id"] in category_ids:
            _fail(json_file, f"category id {cat['id']} appears twice in 'categories'")
        category_ids.add(cat["id"])
    for ann in data.get("annotations", []):
        for key in ("id", "image_id"):
            if not (_is_int(ann.get(key)) or isinstance(ann.get(key), str)):
                _fail(json_file, f"an annotation has {key} {ann.get(key)!r}; expected an int or a string",
                      record=ann.get("id") if key != "id" else None)
        if not _is_int(ann.get("category_id")):
            _fail(json_file, f"annotation category_id must be an int, got {ann.get('category_id')!r}",
                  record=ann["id"])


def index_coco(data: Dict[str, Any], json_file: str) -> COCO:
    """Build pycocotools' index over already-parsed ``data`` (its prints silenced), checking ids."""
    _check_instances_json(data, json_file)
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
    cat_ids = sorted(coco.cats)  # the index: empty when the json lists no categories (getCatIds raises KeyError)
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
    Anything but a list (RLE dicts, compressed or not, and malformed values) is returned
    unchanged, for :func:`check_instance_annotation`.
    """
    if not isinstance(segm, list):
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
        DataError: naming the json and the image or annotation id: malformed json (not
            UTF-8, syntax, wrong types or missing keys, :func:`check_coco_images`), an
            annotation that fails :func:`check_instance_annotation` (bbox not 4 finite
            numbers or with a negative side, malformed polygon values or RLE, an RLE whose
            size is not its image's), an annotation whose ``category_id`` is not in
            ``categories``, duplicate image/category/annotation ids, an annotation of an
            unknown image, an image path leaving ``image_root``, or image files missing on disk.
    """
    coco = index_coco(read_json(json_file), json_file)
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
            check_instance_annotation(obj, image_size=(img["height"], img["width"]), file_name=json_file,
                                      record=ann["id"])
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


def register_coco_instances(name: str, metadata: Dict[str, Any], json_file: str, image_root: str,
                            allow_outside_root: bool = False) -> None:
    """Register a COCO instances dataset: a lazy :func:`load_coco_json` plus its metadata.

    The json's ``file_name`` values must stay inside ``image_root`` unless
    ``allow_outside_root`` (``../x.jpg`` and absolute paths are then accepted).

    ``MetadataCatalog.get(name)`` gets ``json_file, image_root, evaluator_type="coco"``
    and every key of ``metadata`` (may be ``{}``: ``thing_classes`` and
    ``thing_dataset_id_to_contiguous_id`` are filled from the json when it is loaded;
    optional ``thing_colors``: one RGB triple per class for visualisation).
    """
    DatasetCatalog.register(name, lambda: load_coco_json(json_file, image_root, name,
                                                         allow_outside_root=allow_outside_root))
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
        DataError: a folder holds no file of its extension, some files have no partner, or a
            label PNG is empty or not an image.
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
        height, width = read_image_size(gts[stem])
        records.append({"file_name": images[stem], "sem_seg_file_name": gts[stem], "height": height,
                        "width": width, "image_id": stem})
    logger.info(f"Loaded {len(records)} images with semantic labels from {image_root} and {gt_root}")
    return records
