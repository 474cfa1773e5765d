#!/usr/bin/env python
"""Derive the stuff label PNGs that PanopticFPN's semantic branch trains on (the ``_separated``
datasets' ``sem_seg_file_name``) from COCO panoptic annotations.

Per pixel of each panoptic PNG: a segment of a thing category (crowd included) -> 0, a segment
of a stuff category -> its contiguous stuff id 1..S (stuff categories sorted by id, as
``panoptic_metadata(categories, separated=True)["stuff_dataset_id_to_contiguous_id"]``), void
(id 0) or an id missing from ``segments_info`` -> 255. Output: one uint8 single-channel PNG per
panoptic PNG, same file name.

COCO 2017 (``$SEG_DATASETS/coco/annotations/panoptic_{train,val}2017.json`` and
``panoptic_{train,val}2017/`` -> ``panoptic_stuff_{train,val}2017/``)::

    python datasets/prepare_panoptic_fpn.py [--coco-dir DIR] [--splits train val] [--workers 2]

Any dataset in COCO panoptic format::

    python datasets/prepare_panoptic_fpn.py --panoptic-json J --panoptic-root P --output O
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from seg_research.data.datasets.builtin import get_datasets_root
from seg_research.data.datasets.coco import read_json
from seg_research.data.datasets.coco_panoptic import panoptic_metadata
from seg_research.data.detection_utils import read_panoptic_ids
from seg_research.data.errors import DataError
from seg_research.utils.file_io import atomic_write_bytes

__all__ = ["stuff_labels_by_category", "stuff_label_map", "separate_stuff", "main"]

THINGS_LABEL, VOID_LABEL = 0, 255
#: (panoptic PNG, output PNG, segment ids, their labels) of one image.
_Job = Tuple[str, str, List[int], List[int]]


def stuff_labels_by_category(categories: Sequence[Mapping[str, Any]]) -> Dict[int, int]:
    """Dataset category id -> stuff label: 0 for things, 1..S for stuff categories by increasing id.

    Args:
        categories: a COCO panoptic json's ``categories`` (``[{id, name, isthing}, ...]``).
    """
    stuff = panoptic_metadata(categories, separated=True)["stuff_dataset_id_to_contiguous_id"]
    if len(stuff) >= VOID_LABEL:
        raise ValueError(f"{len(stuff)} stuff categories do not fit uint8 labels 1..254 (255 is void).")
    return {int(c["id"]): (THINGS_LABEL if c["isthing"] else stuff[c["id"]]) for c in categories}


def stuff_label_map(segment_map: np.ndarray, segment_ids: Sequence[int], labels: Sequence[int]) -> np.ndarray:
    """Relabel a panoptic segment-id map.

    Args:
        segment_map: (H, W) integer segment ids (``read_panoptic_ids``), 0 = void.
        segment_ids: ids of the image's segments; ``labels``: the stuff label of each.

    Returns:
        uint8 (H, W): the label of each pixel's segment, 255 for void and unlisted ids.
    """
    label_of = dict(zip((int(i) for i in segment_ids), labels, strict=True))
    present, inverse = np.unique(segment_map, return_inverse=True)
    lookup = np.array([label_of.get(int(i), VOID_LABEL) if i else VOID_LABEL for i in present], dtype=np.uint8)
    return lookup[inverse].reshape(segment_map.shape)


def _convert(job: _Job) -> None:
    png, output, segment_ids, labels = job
    ok, encoded = cv2.imencode(".png", stuff_label_map(read_panoptic_ids(png), segment_ids, labels))
    if not ok:
        raise OSError(f"OpenCV could not encode the stuff label PNG '{output}'.")
    atomic_write_bytes(output, encoded.tobytes())


def _jobs(panoptic_json: str, panoptic_root: str, output_root: str) -> List[_Job]:
    data = read_json(panoptic_json)
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise DataError("Not a COCO panoptic json: it has no 'categories' list. Pass the panoptic json "
                        "(panoptic_{train,val}2017.json), not the instances json.", file_name=panoptic_json)
    label_of = stuff_labels_by_category(data["categories"])
    jobs = []
    for ann in data.get("annotations", []):
        segments = ann.get("segments_info", [])
        unknown = sorted({s.get("category_id") for s in segments} - label_of.keys(), key=str)
        if unknown:
            raise DataError(f"segments_info has category_id(s) {unknown}, which are not in the json's categories. "
                            f"Fix the json.", file_name=panoptic_json, record=ann.get("image_id"))
        jobs.append((os.path.join(panoptic_root, ann["file_name"]), os.path.join(output_root, ann["file_name"]),
                     [int(s["id"]) for s in segments], [label_of[s["category_id"]] for s in segments]))
    return jobs


def separate_stuff(panoptic_json: str, panoptic_root: str, output_root: str, workers: int = 2) -> int:
    """Write the stuff label PNG of every annotation of ``panoptic_json`` into ``output_root``.

    Args:
        panoptic_json: COCO panoptic json (``categories``, ``annotations[].file_name`` and
            ``segments_info``).
        panoptic_root: folder of its PNGs.
        output_root: where the uint8 PNGs go (created; same relative file names).
        workers: processes converting images (0: in this process).

    Returns:
        the number of PNGs written.

    Raises:
        DataError: a malformed json, a segment of an unknown category, a missing or unreadable PNG.
    """
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}.")
    jobs = _jobs(panoptic_json, panoptic_root, output_root)
    os.makedirs(output_root, exist_ok=True)
    progress = tqdm(total=len(jobs), desc=os.path.basename(output_root), unit="img")
    with progress:
        if workers == 0 or len(jobs) <= 1:
            for job in jobs:
                _convert(job)
                progress.update()
        else:
            with multiprocessing.Pool(min(workers, len(jobs))) as pool:
                for _ in pool.imap_unordered(_convert, jobs, chunksize=8):
                    progress.update()
    return len(jobs)


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coco-dir", default=None,
                        help="COCO root with annotations/ and panoptic_{split}2017/ (default: $SEG_DATASETS/coco)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], help="COCO splits to convert")
    parser.add_argument("--panoptic-json", help="convert this panoptic json instead of COCO's")
    parser.add_argument("--panoptic-root", help="folder of the PNGs of --panoptic-json")
    parser.add_argument("--output", help="output folder for --panoptic-json")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: none); default 2")
    args = parser.parse_args(argv)
    custom = [args.panoptic_json, args.panoptic_root, args.output]
    if any(custom) and not all(custom):
        parser.error("--panoptic-json, --panoptic-root and --output go together.")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse_args(argv)
    if args.panoptic_json:
        conversions = [(args.panoptic_json, args.panoptic_root, args.output)]
    else:
        coco = args.coco_dir or os.path.join(get_datasets_root(), "coco")
        conversions = [(os.path.join(coco, "annotations", f"panoptic_{split}2017.json"),
                        os.path.join(coco, f"panoptic_{split}2017"), os.path.join(coco, f"panoptic_stuff_{split}2017"))
                       for split in args.splits]
    for panoptic_json, panoptic_root, output in conversions:
        count = separate_stuff(panoptic_json, panoptic_root, output, workers=args.workers)
        print(f"Wrote {count} stuff label PNGs to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
