"""Validation of dataset dicts, one function per record type, before any code indexes into them.

Every loader checks the records it produces, and the DatasetMapper checks each record it
maps (records can come from any registered loader), so malformed input ends in one
:class:`DataError` naming the file and the record, never in a ``KeyError`` or
``IndexError`` deep inside a transform, or in pycocotools crashing the process.

Record types (the dataset-dict contract of ``DESIGN.md``):

* image record: ``file_name`` (str), optional ``height``/``width`` (int > 0),
  ``annotations``, ``sem_seg_file_name``, ``pan_seg_file_name`` + ``segments_info``;
* instance annotation: ``bbox`` (4 finite numbers; XYXY_ABS or XYWH_ABS absolute pixels,
  no negative width/height), ``bbox_mode``, ``category_id`` (contiguous int >= 0),
  optional ``iscrowd`` (0/1) and ``segmentation`` (flat polygons of finite numbers, an
  RLE dict whose size is the image's, or an H x W array);
* panoptic segment: ``id`` (int >= 1), ``category_id`` (contiguous int >= 0), ``isthing``
  (bool), optional ``iscrowd`` (0/1).
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, Callable, Dict, Mapping, NoReturn, Optional, Sequence, Tuple

import numpy as np

from ..structures import BoxMode, check_rle
from .detection_utils import read_panoptic_ids
from .errors import DataError

__all__ = ["check_instance_annotation", "check_segments_info", "check_dataset_dict", "read_record_pan_seg"]

_ABSOLUTE_MODES = (BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
#: raises DataError(problem) with the location of the record being checked
_Fail = Callable[[str], NoReturn]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_finite_number(value: Any) -> bool:
    if not isinstance(value, (Real, np.number)) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _flat_values(values: Any) -> Optional[list]:
    """The entries of a flat list/tuple/1-d array, or None for anything else (nested lists included)."""
    if isinstance(values, np.ndarray):
        return values.tolist() if values.ndim == 1 else None
    if isinstance(values, (list, tuple)) and not any(isinstance(v, (list, tuple, dict, np.ndarray)) for v in values):
        return list(values)
    return None


def _is_flag(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) or (_is_int(value) and value in (0, 1))


def _check_bbox(anno: Mapping[str, Any], fail: _Fail) -> None:
    if "bbox" not in anno or "bbox_mode" not in anno:
        fail(f"an instance annotation needs 'bbox' and 'bbox_mode'; it has only {sorted(map(str, anno))}")
    mode = anno["bbox_mode"]
    if not _is_int(mode) or int(mode) not in [m.value for m in _ABSOLUTE_MODES]:
        fail(f"bbox_mode must be BoxMode.XYXY_ABS or BoxMode.XYWH_ABS (absolute pixels), got {mode!r}")
    box = anno["bbox"]
    values = _flat_values(box)
    if values is None or len(values) != 4 or not all(_is_finite_number(v) for v in values):
        fail(f"bbox must be 4 finite numbers, got {box!r}")
    x0, y0, a, b = (float(v) for v in values)
    width, height = (a, b) if BoxMode(int(mode)) == BoxMode.XYWH_ABS else (a - x0, b - y0)
    if width < 0 or height < 0:
        fail(f"bbox {values} ({BoxMode(int(mode)).name}) has a negative width or height")


def _check_polygons(segm: Sequence[Any], fail: _Fail) -> None:
    for j, polygon in enumerate(segm):
        values = _flat_values(polygon)
        if values is None:
            fail(f"polygon {j} of the segmentation is not a flat list [x0, y0, x1, y1, ...]: {polygon!r:.80}")
        if len(values) < 6 or len(values) % 2:
            fail(f"polygon {j} has {len(values)} coordinates; it needs an even number, at least 6 (3 points)")
        if not all(_is_finite_number(v) for v in values):
            fail(f"polygon {j} has coordinates that are not finite numbers: {polygon!r:.80}")


def _check_segmentation(segm: Any, image_size: Optional[Tuple[int, int]], fail: _Fail) -> None:
    if isinstance(segm, list):
        _check_polygons(segm, fail)
    elif isinstance(segm, dict):
        try:
            size = check_rle(segm)
        except ValueError as e:
            fail(str(e).rstrip("."))
        if image_size is not None and size != tuple(image_size):
            fail(f"the RLE segmentation has size (height, width) = {size} but its image is {tuple(image_size)}")
    elif isinstance(segm, np.ndarray):
        if segm.ndim != 2 or (image_size is not None and segm.shape != tuple(image_size)):
            fail(f"a mask segmentation must be an (height, width) = {image_size} array, got shape {segm.shape}")
    else:
        fail(f"segmentation must be a list of flat polygons, an RLE dict {{'size', 'counts'}} or an (H, W) array; "
             f"got {type(segm).__name__}")


def check_instance_annotation(anno: Any, *, image_size: Optional[Tuple[int, int]] = None,
                              file_name: Optional[str] = None, record: Any = None) -> None:
    """Check one entry of a dataset dict's ``annotations`` (module doc).

    Args:
        anno: the annotation.
        image_size: (height, width) of its image, when known: an RLE or array mask must have it.
        file_name, record: reported in the error (the json or image, and the record's id).

    Raises:
        DataError: saying which field is malformed, naming ``file_name`` and ``record``.
    """
    def fail(problem: str) -> NoReturn:
        raise DataError(f"Malformed instance annotation: {problem}. Fix or remove this annotation.",
                        file_name=file_name, record=record)

    if not isinstance(anno, dict):
        fail(f"expected a dict, got {type(anno).__name__}")
    _check_bbox(anno, fail)
    cid = anno.get("category_id")
    if not _is_int(cid) or cid < 0:
        fail(f"category_id must be a contiguous class id, an int >= 0, got {cid!r}")
    if not _is_flag(anno.get("iscrowd", 0)):
        fail(f"iscrowd must be 0 or 1, got {anno.get('iscrowd')!r}")
    if "segmentation" in anno:
        _check_segmentation(anno["segmentation"], image_size, fail)


def check_segments_info(segments_info: Any, *, file_name: Optional[str] = None, record: Any = None) -> None:
    """Check a panoptic record's ``segments_info`` (module doc); segment ids must be unique.

    Raises:
        DataError: naming ``file_name`` and ``record`` and the segment at fault.
    """
    def fail(problem: str) -> NoReturn:
        raise DataError(f"Malformed panoptic segments_info: {problem}. Fix the panoptic json.",
                        file_name=file_name, record=record)

    if not isinstance(segments_info, list):
        fail(f"expected a list of segments, got {type(segments_info).__name__}")
    seen = set()
    for k, seg in enumerate(segments_info):
        if not isinstance(seg, dict):
            fail(f"segment {k} is a {type(seg).__name__}, not a dict")
        sid, cid = seg.get("id"), seg.get("category_id")
        if not _is_int(sid) or sid < 1:
            fail(f"segment {k} has id {sid!r}; segment ids are ints >= 1 (0 is void)")
        if sid in seen:
            fail(f"segment id {sid} appears twice")
        seen.add(sid)
        if not _is_int(cid) or cid < 0:
            fail(f"segment {sid} has category_id {cid!r}; expected a contiguous class id, an int >= 0")
        if not isinstance(seg.get("isthing"), (bool, np.bool_)):
            fail(f"segment {sid} has isthing {seg.get('isthing')!r}; expected True or False")
        if not _is_flag(seg.get("iscrowd", 0)):
            fail(f"segment {sid} has iscrowd {seg.get('iscrowd')!r}; expected 0 or 1")


def _check_positive_int(d: Mapping[str, Any], key: str, fail: _Fail) -> None:
    if key in d and not (_is_int(d[key]) and d[key] > 0):
        fail(f"'{key}' must be an int > 0, got {d[key]!r}")


def check_dataset_dict(dataset_dict: Any) -> None:
    """Check one dataset dict (module doc) and every annotation and segment in it.

    Mask sizes are not compared with ``height``/``width`` here: the mapper compares both
    with the image it reads, which gives the more precise error (e.g. EXIF rotation).

    Raises:
        DataError: naming the record's ``file_name`` and ``image_id`` and what is malformed.
    """
    file_name = dataset_dict.get("file_name") if isinstance(dataset_dict, dict) else None
    record = dataset_dict.get("image_id") if isinstance(dataset_dict, dict) else None
    where = {"file_name": file_name if isinstance(file_name, str) else None, "record": record}

    def fail(problem: str) -> NoReturn:
        raise DataError(f"Malformed dataset dict: {problem}. Fix the dataset's loader or its annotation file.",
                        **where)

    if not isinstance(dataset_dict, dict):
        fail(f"expected a dict, got {type(dataset_dict).__name__}")
    for key in ("file_name", "sem_seg_file_name", "pan_seg_file_name"):
        if key in dataset_dict and not (isinstance(dataset_dict[key], str) and dataset_dict[key]):
            fail(f"'{key}' must be a non-empty path string, got {dataset_dict[key]!r}")
    if "file_name" not in dataset_dict:
        fail(f"'file_name' is missing (keys: {sorted(map(str, dataset_dict))})")
    _check_positive_int(dataset_dict, "height", fail)
    _check_positive_int(dataset_dict, "width", fail)
    annotations = dataset_dict.get("annotations", [])
    if not isinstance(annotations, list):
        fail(f"'annotations' must be a list of dicts, got {type(annotations).__name__}")
    for anno in annotations:  # mask sizes are checked against the image once it is read
        check_instance_annotation(anno, **where)
    if "segments_info" in dataset_dict:
        check_segments_info(dataset_dict["segments_info"], **where)


def read_record_pan_seg(dataset_dict: Dict[str, Any]) -> np.ndarray:
    """The segment ids of a panoptic record's PNG, checked against its ``segments_info``.

    Returns:
        int64 np.ndarray (H, W) of segment ids (0 = void), each either 0 or the ``id`` of
        an entry of ``dataset_dict["segments_info"]``.

    Raises:
        DataError: naming the PNG and the record when the PNG is unreadable or holds ids
            that ``segments_info`` does not describe.
    """
    png = dataset_dict["pan_seg_file_name"]
    ids = read_panoptic_ids(png)
    known = {seg["id"] for seg in dataset_dict.get("segments_info", [])}
    unknown = sorted(set(np.unique(ids).tolist()) - known - {0})
    if unknown:
        raise DataError(
            f"The panoptic PNG has segment ids {unknown[:10]}{' ...' if len(unknown) > 10 else ''} that are not in "
            f"the record's segments_info (ids {sorted(known)[:10]}). The PNG and the json disagree; regenerate one "
            f"of them from the other.",
            file_name=png, record=dataset_dict.get("image_id"))
    return ids
