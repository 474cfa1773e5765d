"""COCO-format panoptic datasets whose records also carry semantic labels (Mask2Former's registrations:
COCO ``*_panoptic_with_sem_seg``, ADE20K panoptic, Mapillary Vistas panoptic).

Each record is a :func:`~.coco_panoptic.load_coco_panoptic_json` record plus ``sem_seg_file_name``:
the label PNG named like the record's panoptic PNG under a semantic root, so that one dataset feeds the
panoptic, instance and semantic evaluation of one model.

Class ids follow Mask2Former's **in-order** convention (:func:`panoptic_metadata_in_order`): the
contiguous id of a category is its position in the dataset's category list, things and stuff alike,
so the semantic labels, the segments' ``category_id`` and the official checkpoints' classifier rows
agree. For COCO (things listed first) this equals the library's standard convention; for ADE20K and
Mapillary Vistas (things and stuff interleaved) it does not, and thing ids are then not 0..K-1.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from seg_research.data.errors import DataError

from .coco_panoptic import load_coco_panoptic_json
from .paths import check_dirs_exist, check_files_exist, resolve_under_root

__all__ = ["panoptic_metadata_in_order", "load_panoptic_with_sem_seg"]


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
