"""Panoptic quality (PQ, SQ, RQ) with the COCO panoptic definition, vectorised: per-image statistics,
their sum over images (in process or in a pool) and :func:`pq_compute` on COCO panoptic files.

Definition (as the reference COCO panoptic API, ``panopticapi.evaluation.pq_compute``): per image,
a ground-truth and a predicted segment of the same category match when their IoU is > 0.5, where
the union leaves out the predicted segment's pixels on void (ground-truth id 0):
``union = area_pred + area_gt - intersection - void_intersection_pred``. IoU > 0.5 makes matches
unique. Unmatched non-crowd ground truth segments are false negatives (FN); unmatched crowd ones
are not counted. An unmatched prediction is a false positive (FP) unless more than half of its
area lies on void plus the crowd segment of its category (when an image lists several crowd
segments of one category, the last one listed, as the reference). Per category,
``PQ = sum(IoU of matches) / (TP + FP/2 + FN/2)``, ``SQ = sum(IoU) / TP`` (0 without TP),
``RQ = TP / (TP + FP/2 + FN/2)``; categories with ``TP + FP + FN = 0`` are left out of the
averages over All, Things and Stuff. Ground-truth areas are counted in the PNG (the reference
reads them from the json's ``area``, the same number in consistent ground truth).

Each image gives a ``(num_categories, 4)`` float64 array of ``(TP, FP, FN, sum of IoU)`` per
category (rows in the order of the ground-truth json's ``categories``); images and ranks are
combined by summing these arrays. The evaluator that writes predictions in this format is
:class:`~.panoptic_evaluation.COCOPanopticEvaluator`.
"""
from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tabulate import tabulate

from ..data.datasets.coco import read_json
from ..data.detection_utils import read_panoptic_ids
from ..utils.errors import DataError

__all__ = ["pq_compute", "panoptic_problem", "pq_from_stats", "image_pq_stats", "PanopticCategories", "VOID"]

logger = logging.getLogger(__name__)

VOID = 0
#: Segment ids of COCO panoptic PNGs are < 256**3.
MAX_SEGMENT_ID = 256**3 - 1
_TP, _FP, _FN, _IOU = range(4)
_CHUNKS_PER_WORKER = 4
# Workers run numpy/Pillow code only, so they are forked (as torch's DataLoader workers): a spawned
# worker would first spend seconds importing torch and seg_research.
_MP_CONTEXT = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


@dataclass(frozen=True)
class PanopticCategories:
    """The categories of a COCO panoptic json, in its order (the rows of the statistics arrays).

    Attributes:
        ids: dataset category ids.
        names: category names.
        isthing: bool per category.
    """

    ids: Tuple[int, ...]
    names: Tuple[str, ...]
    isthing: Tuple[bool, ...]

    @classmethod
    def from_json(cls, categories: Sequence[Mapping[str, Any]]) -> "PanopticCategories":
        """From a json's ``categories``: ``[{id, name, isthing (0/1)}, ...]``."""
        return cls(tuple(int(c["id"]) for c in categories), tuple(str(c["name"]) for c in categories),
                   tuple(bool(c["isthing"]) for c in categories))

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def _index(self) -> Dict[int, int]:
        return {c: i for i, c in enumerate(self.ids)}

    def rows(self, category_ids: Sequence[int], what: str, file_name: Optional[str], image_id: Any) -> np.ndarray:
        """int64 row index of each dataset category id; DataError for an id not in the json."""
        index = self._index
        unknown = sorted({c for c in category_ids if c not in index})
        if unknown:
            raise DataError(f"{what} has category_id(s) {unknown}, not among the ground truth json's categories "
                            f"{list(self.ids)}. Use the dataset's category ids (map contiguous ids back with the "
                            f"metadata's *_dataset_id_to_contiguous_id).", file_name=file_name, record=image_id)
        return np.array([index[c] for c in category_ids], dtype=np.int64).reshape(-1)


def segment_ids(segments: Sequence[Mapping[str, Any]], what: str, file_name: Optional[str],
                 image_id: Any) -> np.ndarray:
    ids = np.array([int(s["id"]) for s in segments], dtype=np.int64).reshape(-1)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{what} lists segment id(s) {unique[counts > 1].tolist()} more than once; each segment "
                        f"needs its own id.", file_name=file_name, record=image_id)
    return ids


class _SegmentIndex:
    """Maps segment ids (``[0, 2**24)``) to small indices with one gather from a lookup table.

    The table (int64, 2**24 entries, allocated zeroed once per process) holds the listed ids'
    indices of one image while it is mapped and is reset afterwards; untouched pages of a zeroed
    allocation stay unmapped, so it costs a few pages of memory, and the mapping is O(pixels)
    where sorting the pixel ids (``np.unique``) was O(pixels · log pixels).
    """

    _table: Optional[np.ndarray] = None

    @classmethod
    def indices(cls, ids: np.ndarray, listed: np.ndarray, scale: int = 1) -> np.ndarray:
        """int64 array like ``ids`` (values in ``[0, 2**24)``): ``scale * (k + 1)`` where ``ids == listed[k]``,
        ``scale * (len(listed) + 1)`` on void (0) unless 0 is listed, 0 on ids not listed."""
        if cls._table is None:
            cls._table = np.zeros(MAX_SEGMENT_ID + 1, dtype=np.int64)
        table = cls._table
        listed = listed[(listed >= 0) & (listed <= MAX_SEGMENT_ID)]
        table[VOID] = (len(listed) + 1) * scale
        table[listed] = np.arange(1, len(listed) + 1, dtype=np.int64) * scale
        try:
            return table[ids]
        finally:
            table[listed] = 0
            table[VOID] = 0


def _check_ids(ids: np.ndarray, what: str, file_name: Optional[str], image_id: Any) -> None:
    if not ids.size:
        return
    # One pass: seen as unsigned, negative ids are above MAX_SEGMENT_ID too.
    unsigned = ids.view(np.dtype(f"u{ids.dtype.itemsize}")) if np.issubdtype(ids.dtype, np.signedinteger) else ids
    if unsigned.max() > MAX_SEGMENT_ID:
        raise DataError(f"{what} has segment ids outside [0, 2**24) (min {ids.min()}, max {ids.max()}); COCO panoptic "
                        f"PNGs store R + 256 G + 256^2 B.", file_name=file_name, record=image_id)


def image_pq_stats(gt_ids: np.ndarray, gt_segments: Sequence[Mapping[str, Any]], pred_ids: np.ndarray,
                   pred_segments: Sequence[Mapping[str, Any]], categories: PanopticCategories, *,
                   gt_file: Optional[str] = None, pred_file: Optional[str] = None,
                   image_id: Any = None) -> np.ndarray:
    """PQ statistics of one image (definition in the module doc).

    Args:
        gt_ids: (H, W) integer segment ids of the ground truth in ``[0, 2**24)`` (as a COCO panoptic
            PNG stores them), 0 = void; pixels whose id is not in ``gt_segments`` belong to no
            segment (and are not void), as in the reference.
        gt_segments: ``[{id, category_id (dataset id), iscrowd (0/1, default 0)}]``.
        pred_ids: (H, W) integer segment ids of the prediction in ``[0, 2**24)``, 0 = void.
        pred_segments: ``[{id, category_id (dataset id)}]``; every listed segment must have pixels
            and every nonzero id of ``pred_ids`` must be listed.
        categories: the ground truth json's categories (the rows of the result).
        gt_file, pred_file, image_id: named in errors.

    Returns:
        float64 np.ndarray (len(categories), 4): TP, FP, FN and the sum of the matches' IoU per category.

    Raises:
        DataError: different sizes, ids outside ``[0, 2**24)``, an unlisted predicted id, a listed
            segment without pixels, repeated segment ids, or a category not in ``categories``.
    """
    if gt_ids.shape != pred_ids.shape:
        raise DataError(f"Prediction {pred_file or ''} has size {tuple(pred_ids.shape)} but the ground truth has "
                        f"{tuple(gt_ids.shape)}; predict at the image's original height and width.",
                        file_name=gt_file, record=image_id)
    _check_ids(gt_ids, "Ground truth", gt_file, image_id)
    _check_ids(pred_ids, "Prediction", pred_file, image_id)
    num_cats = len(categories)
    g_ids = segment_ids(gt_segments, "Ground truth segments_info", gt_file, image_id)
    p_ids = segment_ids(pred_segments, "Predicted segments_info", pred_file, image_id)
    g_cat = categories.rows([int(s["category_id"]) for s in gt_segments], "Ground truth", gt_file, image_id)
    p_cat = categories.rows([int(s["category_id"]) for s in pred_segments], "Prediction", pred_file, image_id)
    g_crowd = np.array([bool(s.get("iscrowd", 0)) for s in gt_segments], dtype=bool).reshape(-1)
    num_g, num_p = len(g_ids), len(p_ids)

    # Pixel counts of every (ground truth, prediction) pair: rows 0 = unlisted ground truth id,
    # 1..G = gt segments, G + 1 = void; columns 0 = unlisted predicted id, 1..P, P + 1 = void.
    pi = _SegmentIndex.indices(pred_ids.ravel(), p_ids)
    pair = _SegmentIndex.indices(gt_ids.ravel(), g_ids, scale=num_p + 2)
    pair += pi
    counts = np.bincount(pair, minlength=(num_g + 2) * (num_p + 2)).reshape(num_g + 2, num_p + 2)
    if counts[:, 0].any():
        unlisted = np.unique(pred_ids.ravel()[pi == 0])
        raise DataError(f"Predicted segment id(s) {unlisted.tolist()[:10]} are in the PNG but not in segments_info; "
                        f"list every nonzero id of the PNG (0 is void).", file_name=pred_file, record=image_id)
    p_area = counts[:, 1:num_p + 1].sum(0)
    if (p_area == 0).any():
        raise DataError(f"Predicted segment id(s) {p_ids[p_area == 0].tolist()[:10]} are in segments_info but have "
                        f"no pixel in the PNG; drop them from segments_info.", file_name=pred_file, record=image_id)
    if VOID in g_ids:  # a ground truth segment listed as 0 is also void, as in the reference
        counts[num_g + 1] = counts[1 + int(np.flatnonzero(g_ids == VOID)[0])]
    g_area = counts[1:num_g + 1].sum(1)
    p_void = counts[num_g + 1, 1:num_p + 1]
    inter = counts[1:num_g + 1, 1:num_p + 1]

    # Candidate matches: overlapping, same category, ground truth not crowd.
    c_g, c_p = np.nonzero(inter)
    keep = ~g_crowd[c_g] & (g_cat[c_g] == p_cat[c_p])
    c_g, c_p = c_g[keep], c_p[keep]
    overlap = inter[c_g, c_p].astype(np.float64)
    iou = overlap / (p_area[c_p] + g_area[c_g] - overlap - p_void[c_p])
    matched = iou > 0.5
    g_matched = np.zeros(num_g, bool)
    g_matched[c_g[matched]] = True
    p_matched = np.zeros(num_p, bool)
    p_matched[c_p[matched]] = True

    # Crowd region of each category: the last crowd segment listed (-1: none).
    crowd_row = np.full(num_cats, -1, dtype=np.int64)
    for k in np.flatnonzero(g_crowd).tolist():
        crowd_row[g_cat[k]] = k
    p_crowd = crowd_row[p_cat]
    on_crowd = np.zeros(num_p, dtype=np.int64)
    has_crowd = np.flatnonzero(p_crowd >= 0)  # gathered only there: without gt segments ``inter`` has no row
    on_crowd[has_crowd] = inter[p_crowd[has_crowd], has_crowd]
    p_ignored = p_void + on_crowd

    stats = np.zeros((num_cats, 4), dtype=np.float64)
    stats[:, _TP] = np.bincount(g_cat[c_g[matched]], minlength=num_cats)
    stats[:, _IOU] = np.bincount(g_cat[c_g[matched]], weights=iou[matched], minlength=num_cats)
    stats[:, _FN] = np.bincount(g_cat[~g_matched & ~g_crowd], minlength=num_cats)
    stats[:, _FP] = np.bincount(p_cat[~p_matched & (p_ignored <= 0.5 * p_area)], minlength=num_cats)
    return stats


@dataclass(frozen=True)
class ImagePair:
    """One image to score: ground truth and prediction PNGs with their segments_info (dataset category ids)."""

    image_id: Any
    gt_file: str
    gt_segments: List[Dict[str, Any]]
    pred_file: str
    pred_segments: List[Dict[str, Any]]


def _pair_stats(pair: ImagePair, categories: PanopticCategories) -> np.ndarray:
    return image_pq_stats(read_panoptic_ids(pair.gt_file), pair.gt_segments, read_panoptic_ids(pair.pred_file),
                          pair.pred_segments, categories, gt_file=pair.gt_file, pred_file=pair.pred_file,
                          image_id=pair.image_id)


def _chunk_stats(chunk: Sequence[ImagePair], categories: PanopticCategories) -> np.ndarray:
    """Sum of the statistics of ``chunk``, reading one image pair at a time."""
    stats = np.zeros((len(categories), 4), dtype=np.float64)
    for pair in chunk:
        stats += _pair_stats(pair, categories)
    return stats


def accumulate_stats(pairs: Sequence[ImagePair], categories: PanopticCategories, num_workers: int) -> np.ndarray:
    """Summed statistics of ``pairs``: in this process (``num_workers`` 0) or in a pool of
    ``num_workers`` processes over chunks of images (each holds one image pair at a time)."""
    if num_workers < 0:
        raise ValueError(f"num_workers (TEST.PANOPTIC_NUM_WORKERS) must be >= 0, got {num_workers}.")
    if num_workers == 0 or len(pairs) <= 1:
        return _chunk_stats(pairs, categories)
    num_workers = min(num_workers, len(pairs))
    num_chunks = min(len(pairs), num_workers * _CHUNKS_PER_WORKER)
    chunks = [pairs[i::num_chunks] for i in range(num_chunks)]
    stats = np.zeros((len(categories), 4), dtype=np.float64)
    with multiprocessing.get_context(_MP_CONTEXT).Pool(num_workers) as pool:
        for chunk_stats in pool.starmap(_chunk_stats, [(chunk, categories) for chunk in chunks]):
            stats += chunk_stats
    return stats


def class_metrics(stats: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per category ``(PQ, SQ, RQ, counted)`` fractions; ``counted``: TP + FP + FN > 0 (others are 0)."""
    tp, fp, fn, iou = stats.T
    denom = tp + 0.5 * fp + 0.5 * fn
    counted = tp + fp + fn > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pq = np.where(counted, iou / denom, 0.0)
        sq = np.where(tp > 0, iou / tp, 0.0)
        rq = np.where(counted, tp / denom, 0.0)
    return pq, sq, rq, counted


def pq_from_stats(stats: np.ndarray, categories: PanopticCategories) -> Dict[str, Any]:
    """The reference API's result layout from summed statistics (fractions).

    Returns:
        ``{"All" | "Things" | "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id: {"pq", "sq",
        "rq"}}}``; ``n`` counts the categories with TP + FP + FN > 0, over which the means are
        taken (NaN when ``n`` is 0); per-class values are 0 for categories not counted.
    """
    pq, sq, rq, counted = class_metrics(stats)
    isthing = np.array(categories.isthing, dtype=bool)
    results: Dict[str, Any] = {}
    for name, subset in (("All", np.ones_like(isthing)), ("Things", isthing), ("Stuff", ~isthing)):
        rows = subset & counted
        n = int(rows.sum())
        results[name] = {k: float(v[rows].mean()) if n else float("nan") for k, v in (("pq", pq), ("sq", sq),
                                                                                          ("rq", rq))}
        results[name]["n"] = n
    results["per_class"] = {cid: {"pq": float(pq[i]), "sq": float(sq[i]), "rq": float(rq[i])}
                            for i, cid in enumerate(categories.ids)}
    return results


def summary_table(results: Mapping[str, Any]) -> str:
    rows = [[name, 100 * results[name]["pq"], 100 * results[name]["sq"], 100 * results[name]["rq"],
             results[name]["n"]] for name in ("All", "Things", "Stuff")]
    return tabulate(rows, headers=["", "PQ", "SQ", "RQ", "#categories"], tablefmt="pipe", floatfmt=".3f")


def _json_pairs(gt_json: Mapping[str, Any], pred_json: Mapping[str, Any], gt_folder: str, pred_folder: str,
                pred_json_file: str) -> List[ImagePair]:
    predictions = {ann["image_id"]: ann for ann in pred_json.get("annotations", [])}
    pairs = []
    for gt_ann in gt_json.get("annotations", []):
        image_id = gt_ann["image_id"]
        pred_ann = predictions.get(image_id)
        if pred_ann is None:
            raise DataError(f"No prediction for image_id {image_id!r}: every image of the ground truth json needs "
                            f"an annotation in the prediction json.", file_name=pred_json_file, record=image_id)
        pairs.append(ImagePair(image_id, os.path.join(gt_folder, gt_ann["file_name"]), gt_ann["segments_info"],
                                os.path.join(pred_folder, pred_ann["file_name"]), pred_ann["segments_info"]))
    return pairs


def panoptic_problem(gt_json_file: str, pred_json_file: str, gt_folder: Optional[str] = None,
                     pred_folder: Optional[str] = None) -> Tuple[List[ImagePair], PanopticCategories]:
    """The image pairs to score (one per ground truth annotation, in its order) and the ground truth's
    categories of COCO panoptic files; arguments as :func:`pq_compute`'s.

    Raises:
        DataError: an image of the ground truth without prediction.
    """
    gt_folder = gt_folder if gt_folder is not None else os.path.splitext(gt_json_file)[0]
    pred_folder = pred_folder if pred_folder is not None else os.path.splitext(pred_json_file)[0]
    gt_json, pred_json = read_json(gt_json_file), read_json(pred_json_file)
    categories = PanopticCategories.from_json(gt_json["categories"])
    return _json_pairs(gt_json, pred_json, gt_folder, pred_folder, pred_json_file), categories


def pq_compute(gt_json_file: str, pred_json_file: str, gt_folder: Optional[str] = None,
               pred_folder: Optional[str] = None, *, num_workers: int = 0) -> Dict[str, Any]:
    """PQ of COCO panoptic predictions: a drop-in for ``panopticapi.evaluation.pq_compute``.

    Args:
        gt_json_file: COCO panoptic ground truth json (``categories``, ``annotations``).
        pred_json_file: predictions in COCO panoptic format; one annotation per ground-truth
            image (matched by ``image_id``), with dataset category ids.
        gt_folder: folder of the ground truth PNGs (default: ``gt_json_file`` without ``.json``).
        pred_folder: folder of the prediction PNGs (default: ``pred_json_file`` without ``.json``).
        num_workers: 0 computes in this process; N > 0 uses a pool of N processes over image
            chunks (the reference uses one process per CPU).

    Returns:
        ``{"All" | "Things" | "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id: {"pq",
        "sq", "rq"}}}``, fractions (see :func:`pq_from_stats`).

    Raises:
        DataError: an image without prediction, or inconsistent PNGs and segments_info.
    """
    pairs, categories = panoptic_problem(gt_json_file, pred_json_file, gt_folder, pred_folder)
    results = pq_from_stats(accumulate_stats(pairs, categories, num_workers), categories)
    logger.info(f"PQ of {len(pairs)} images of {gt_json_file}:\n{summary_table(results)}")
    return results


