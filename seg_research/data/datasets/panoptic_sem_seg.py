"""COCO-format panoptic datasets whose records also carry semantic labels (Mask2Former's registrations:
COCO ``*_panoptic_with_sem_seg``, ADE20K panoptic, Mapillary Vistas panoptic).

Each record is a :func:`~.coco_panoptic.load_coco_panoptic_json` record plus ``sem_seg_file_name``:
the label PNG named like the record's panoptic PNG under a semantic root, so that one dataset feeds the
panoptic, instance and semantic evaluation of one model.

:func:`write_semantic_from_panoptic` makes such label PNGs from a COCO panoptic json and its PNGs
(``datasets/prepare_coco_semantic_from_panoptic.py`` for COCO's ``panoptic_semseg_*2017``).

Class ids follow Mask2Former's **in-order** convention (:func:`panoptic_metadata_in_order`): the
contiguous id of a category is its position in the dataset's category list, things and stuff alike,
so the semantic labels, the segments' ``category_id`` and the official checkpoints' classifier rows
agree. For COCO (things listed first) this equals the library's standard convention; for ADE20K and
Mapillary Vistas (things and stuff interleaved) it does not, and thing ids are then not 0..K-1.
"""
from __future__ import annotations

import io
import multiprocessing
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from seg_research.data.errors import DataError
from seg_research.data.image_io import read_panoptic_ids
from seg_research.utils.file_io import atomic_write_bytes

from .coco import read_json
from .coco_panoptic import load_coco_panoptic_json, panoptic_annotations
from .paths import check_dirs_exist, check_files_exist, resolve_under_root

__all__ = ["panoptic_metadata_in_order", "load_panoptic_with_sem_seg", "semantic_labels",
           "write_semantic_from_panoptic"]

#: (panoptic PNG, output PNG, segment ids, the label of each) of one image
_Job = Tuple[str, str, List[int], List[int]]


def panoptic_metadata_in_order(categories: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Class metadata where a category's contiguous id is its position in ``categories``.

    Args:
        categories: ``[{id, name, isthing (0/1), color (optional RGB)}, ...]`` in the dataset's order.

    Returns:
        ``stuff_classes`` (every name, in order), ``thing_classes`` (the things' names, in order),
        ``stuff_dataset_id_to_contiguous_id`` (every id -> its position),
        ``thing_dataset_id_to_contiguous_id`` (the things' ids -> their positions in the whole list)
        and, when every category has a ``color``, ``stuff_colors`` / ``thing_colors``.
    """
    meta: Dict[str, Any] = {
        "thing_classes": [c["name"] for c in categories if c["isthing"]],
        "stuff_classes": [c["name"] for c in categories],
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(categories) if c["isthing"]},
        "stuff_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(categories)},
    }
    if all("color" in c for c in categories):
        meta["thing_colors"] = [list(c["color"]) for c in categories if c["isthing"]]
        meta["stuff_colors"] = [list(c["color"]) for c in categories]
    return meta


def load_panoptic_with_sem_seg(panoptic_json: str, image_root: str, panoptic_root: str, sem_seg_root: str,
                               meta: Mapping[str, Any], what: str, hint: str,
                               sem_seg_label_map: Optional[np.ndarray] = None) -> List[Dict[str, Any]]:
    """Panoptic records with the semantic label PNG of each image.

    Args:
        panoptic_json, image_root, panoptic_root: as :func:`~.coco_panoptic.load_coco_panoptic_json`.
        sem_seg_root: folder of the label PNGs; ``<panoptic PNG name>`` (same relative path) is the
            record's ``sem_seg_file_name``.
        meta: ``thing_dataset_id_to_contiguous_id`` and ``stuff_dataset_id_to_contiguous_id``.
        what: the dataset, for messages (``"ADE20K panoptic"``).
        hint: where the files come from and where to put them, appended to errors.
        sem_seg_label_map: set as each record's ``sem_seg_label_map`` (labels stored with the dataset's
            own values, mapped where they are read), or None when the PNGs hold contiguous ids.

    Returns:
        dicts ``{file_name, height, width, image_id, pan_seg_file_name, sem_seg_file_name,
        segments_info}`` (+ ``sem_seg_label_map``), sorted by ``image_id``.

    Raises:
        DataError: a missing folder or json, or missing label PNGs (named, with ``hint``), and every
            error of :func:`~.coco_panoptic.load_coco_panoptic_json`.
    """
    check_dirs_exist([image_root, panoptic_root, sem_seg_root], what, hint)
    if not os.path.isfile(panoptic_json):
        raise DataError(f"{what}: panoptic json not found. {hint}", file_name=panoptic_json)
    records = load_coco_panoptic_json(panoptic_json, image_root, panoptic_root, meta)
    for record in records:
        png = os.path.relpath(record["pan_seg_file_name"], panoptic_root)
        record["sem_seg_file_name"] = resolve_under_root(sem_seg_root, png, record=record["image_id"])
        if sem_seg_label_map is not None:
            record["sem_seg_label_map"] = sem_seg_label_map
    check_files_exist([r["sem_seg_file_name"] for r in records], f"{what} semantic label PNGs",
                      f"Each panoptic PNG needs a label PNG of the same name under '{sem_seg_root}'. {hint}",
                      source=panoptic_json)
    return records


def semantic_labels(segment_ids_map: np.ndarray, segment_ids: Sequence[int], labels: Sequence[int]) -> np.ndarray:
    """Per-pixel class labels of a panoptic segment-id map.

    Args:
        segment_ids_map: (H, W) integer segment ids (:func:`~seg_research.data.image_io.read_panoptic_ids`), 0 void.
        segment_ids: the image's segment ids; ``labels``: the class label (0..254) of each.

    Returns:
        uint8 (H, W): each pixel's segment label, 255 for void and for ids not in ``segment_ids``.
    """
    label_of = dict(zip((int(i) for i in segment_ids), (int(v) for v in labels), strict=True))
    present, inverse = np.unique(segment_ids_map, return_inverse=True)
    lookup = np.array([label_of.get(int(i), 255) if i else 255 for i in present], dtype=np.uint8)
    return lookup[inverse].reshape(segment_ids_map.shape)


def _write_labels(job: _Job) -> None:
    png, output, segment_ids, labels = job
    buffer = io.BytesIO()
    Image.fromarray(semantic_labels(read_panoptic_ids(png), segment_ids, labels)).save(buffer, format="PNG")
    atomic_write_bytes(output, buffer.getvalue())


def write_semantic_from_panoptic(panoptic_json: str, panoptic_root: str, output_root: str,
                                 label_of_category: Mapping[int, int], workers: int = 2) -> int:
    """Write one uint8 label PNG per panoptic PNG of ``panoptic_json`` (same file name, under ``output_root``):
    each pixel gets the label of its segment's category (``label_of_category``), 255 where void.

    For COCO's ``panoptic_semseg_*2017`` (Mask2Former's semantic labels of the panoptic datasets) the labels are
    the standard convention's ids, ``panoptic_metadata(categories)["stuff_dataset_id_to_contiguous_id"]``:
    the 133 classes, things first, as Mask2Former's ``prepare_coco_semantic_annos_from_panoptic_annos.py``.

    Args:
        workers: processes converting images (0: in this process).

    Returns:
        the number of PNGs written.

    Raises:
        DataError: a malformed json, a segment whose category has no label, a missing or unreadable PNG.
    """
    data = read_json(panoptic_json)
    if not isinstance(data, dict):
        raise DataError("Not a COCO panoptic json (expected an object with 'annotations').", file_name=panoptic_json)
    jobs: List[_Job] = []
    for image_id, ann in panoptic_annotations(data, panoptic_json).items():
        segments = ann["segments_info"]
        unknown = sorted({s["category_id"] for s in segments} - set(label_of_category))
        if unknown:
            raise DataError(f"segments_info has category_id(s) {unknown} without a label. Fix the json or the labels.",
                            file_name=panoptic_json, record=image_id)
        jobs.append((resolve_under_root(panoptic_root, ann["file_name"], record=image_id),
                     resolve_under_root(output_root, ann["file_name"], record=image_id),
                     [int(s["id"]) for s in segments], [int(label_of_category[s["category_id"]]) for s in segments]))
    check_files_exist([job[0] for job in jobs], "panoptic PNGs listed in the json",
                      f"Check the panoptic PNG folder '{panoptic_root}'.", source=panoptic_json)
    os.makedirs(output_root, exist_ok=True)
    if workers <= 0 or len(jobs) <= 1:
        for job in jobs:
            _write_labels(job)
    else:
        with multiprocessing.Pool(min(workers, len(jobs))) as pool:
            for _ in pool.imap_unordered(_write_labels, jobs, chunksize=16):
                pass
    return len(jobs)
