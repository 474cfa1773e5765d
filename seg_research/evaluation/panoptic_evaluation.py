"""Panoptic quality (PQ, SQ, RQ) with the COCO panoptic definition, vectorised, and the evaluator
that writes predictions in COCO panoptic format.

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
combined by summing these arrays.
"""
from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from tabulate import tabulate

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..data.datasets.coco import read_json
from ..data.detection_utils import read_panoptic_ids, write_panoptic_ids
from ..data.errors import DataError
from ..utils import comm
from ..utils.file_io import PathManager, atomic_write_json
from .evaluator import DatasetEvaluator

__all__ = ["COCOPanopticEvaluator", "pq_compute", "pq_from_stats", "image_pq_stats", "PanopticCategories",
           "PANOPTIC_PREDICTIONS_FILE", "PANOPTIC_PREDICTIONS_FOLDER"]

logger = logging.getLogger(__name__)

#: Written into the evaluator's ``output_dir``: a COCO panoptic json (``images``, ``categories``,
#: ``annotations: [{image_id, file_name, segments_info: [{id, category_id (dataset id), isthing?,
#: score?}]}]``) whose PNGs are in :data:`PANOPTIC_PREDICTIONS_FOLDER` beside it.
PANOPTIC_PREDICTIONS_FILE = "panoptic_predictions.json"
PANOPTIC_PREDICTIONS_FOLDER = "panoptic_predictions"

VOID = 0
#: Segment ids of COCO panoptic PNGs are < 256**3, so ``gt_id * OFFSET + pred_id`` is a unique int64 pair key.
OFFSET = 256**3
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


def _segment_ids(segments: Sequence[Mapping[str, Any]], what: str, file_name: Optional[str],
                 image_id: Any) -> np.ndarray:
    ids = np.array([int(s["id"]) for s in segments], dtype=np.int64).reshape(-1)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{what} lists segment id(s) {unique[counts > 1].tolist()} more than once; each segment "
                        f"needs its own id.", file_name=file_name, record=image_id)
    return ids


def _table_index(ids: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(found, index)``: whether each of ``values`` is in the table of unique ``ids``, and where."""
    if ids.size == 0:
        return np.zeros(values.shape, bool), np.zeros(values.shape, np.int64)
    order = np.argsort(ids)
    index = order[np.minimum(np.searchsorted(ids, values, sorter=order), ids.size - 1)]
    return ids[index] == values, index


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
        DataError: different sizes, an unlisted predicted id, a listed segment without pixels,
            repeated segment ids, or a category not in ``categories``.
    """
    if gt_ids.shape != pred_ids.shape:
        raise DataError(f"Prediction {pred_file or ''} has size {tuple(pred_ids.shape)} but the ground truth has "
                        f"{tuple(gt_ids.shape)}; predict at the image's original height and width.",
                        file_name=gt_file, record=image_id)
    num_cats = len(categories)
    g_ids = _segment_ids(gt_segments, "Ground truth segments_info", gt_file, image_id)
    p_ids = _segment_ids(pred_segments, "Predicted segments_info", pred_file, image_id)
    g_cat = categories.rows([int(s["category_id"]) for s in gt_segments], "Ground truth", gt_file, image_id)
    p_cat = categories.rows([int(s["category_id"]) for s in pred_segments], "Prediction", pred_file, image_id)
    g_crowd = np.array([bool(s.get("iscrowd", 0)) for s in gt_segments], dtype=bool).reshape(-1)

    keys, counts = np.unique(gt_ids.astype(np.int64).ravel() * OFFSET + pred_ids.astype(np.int64).ravel(),
                             return_counts=True)
    pair_gt, pair_pred = keys // OFFSET, keys % OFFSET
    g_found, gi = _table_index(g_ids, pair_gt)
    p_found, pi = _table_index(p_ids, pair_pred)

    unlisted = np.unique(pair_pred[~p_found & (pair_pred != VOID)])
    if unlisted.size:
        raise DataError(f"Predicted segment id(s) {unlisted.tolist()[:10]} are in the PNG but not in segments_info; "
                        f"list every nonzero id of the PNG (0 is void).", file_name=pred_file, record=image_id)
    p_area = np.bincount(pi[p_found], weights=counts[p_found], minlength=len(p_ids))
    if (p_area == 0).any():
        raise DataError(f"Predicted segment id(s) {p_ids[p_area == 0].tolist()[:10]} are in segments_info but have "
                        f"no pixel in the PNG; drop them from segments_info.", file_name=pred_file, record=image_id)
    g_area = np.bincount(gi[g_found], weights=counts[g_found], minlength=len(g_ids))
    on_void = p_found & (pair_gt == VOID)
    p_void = np.bincount(pi[on_void], weights=counts[on_void], minlength=len(p_ids))

    # Candidate matches: both sides listed, same category, ground truth not crowd.
    cand = np.flatnonzero(g_found & p_found)
    cand = cand[~g_crowd[gi[cand]] & (g_cat[gi[cand]] == p_cat[pi[cand]])]
    c_g, c_p, inter = gi[cand], pi[cand], counts[cand].astype(np.float64)
    iou = inter / (p_area[c_p] + g_area[c_g] - inter - p_void[c_p])
    matched = iou > 0.5
    g_matched = np.zeros(len(g_ids), bool)
    g_matched[c_g[matched]] = True
    p_matched = np.zeros(len(p_ids), bool)
    p_matched[c_p[matched]] = True

    # Crowd region of each category: the last crowd segment listed (-1: none).
    crowd_id = np.full(num_cats, -1, dtype=np.int64)
    for row, seg_id in zip(g_cat[g_crowd].tolist(), g_ids[g_crowd].tolist()):
        crowd_id[row] = seg_id
    listed = np.flatnonzero(p_found)
    on_crowd = listed[pair_gt[listed] == crowd_id[p_cat[pi[listed]]]]
    p_ignored = p_void + np.bincount(pi[on_crowd], weights=counts[on_crowd], minlength=len(p_ids))

    stats = np.zeros((num_cats, 4), dtype=np.float64)
    stats[:, _TP] = np.bincount(g_cat[c_g[matched]], minlength=num_cats)
    stats[:, _IOU] = np.bincount(g_cat[c_g[matched]], weights=iou[matched], minlength=num_cats)
    stats[:, _FN] = np.bincount(g_cat[~g_matched & ~g_crowd], minlength=num_cats)
    stats[:, _FP] = np.bincount(p_cat[~p_matched & (p_ignored <= 0.5 * p_area)], minlength=num_cats)
    return stats


@dataclass(frozen=True)
class _ImagePair:
    """One image to score: ground truth and prediction PNGs with their segments_info (dataset category ids)."""

    image_id: Any
    gt_file: str
    gt_segments: List[Dict[str, Any]]
    pred_file: str
    pred_segments: List[Dict[str, Any]]


def _pair_stats(pair: _ImagePair, categories: PanopticCategories) -> np.ndarray:
    return image_pq_stats(read_panoptic_ids(pair.gt_file), pair.gt_segments, read_panoptic_ids(pair.pred_file),
                          pair.pred_segments, categories, gt_file=pair.gt_file, pred_file=pair.pred_file,
                          image_id=pair.image_id)


def _chunk_stats(chunk: Sequence[_ImagePair], categories: PanopticCategories) -> np.ndarray:
    """Sum of the statistics of ``chunk``, reading one image pair at a time."""
    stats = np.zeros((len(categories), 4), dtype=np.float64)
    for pair in chunk:
        stats += _pair_stats(pair, categories)
    return stats


def _accumulate(pairs: Sequence[_ImagePair], categories: PanopticCategories, num_workers: int) -> np.ndarray:
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


def _class_metrics(stats: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    pq, sq, rq, counted = _class_metrics(stats)
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


def _summary_table(results: Mapping[str, Any]) -> str:
    rows = [[name, 100 * results[name]["pq"], 100 * results[name]["sq"], 100 * results[name]["rq"],
             results[name]["n"]] for name in ("All", "Things", "Stuff")]
    return tabulate(rows, headers=["", "PQ", "SQ", "RQ", "#categories"], tablefmt="pipe", floatfmt=".3f")


def _json_pairs(gt_json: Mapping[str, Any], pred_json: Mapping[str, Any], gt_folder: str, pred_folder: str,
                pred_json_file: str) -> List[_ImagePair]:
    predictions = {ann["image_id"]: ann for ann in pred_json.get("annotations", [])}
    pairs = []
    for gt_ann in gt_json.get("annotations", []):
        image_id = gt_ann["image_id"]
        pred_ann = predictions.get(image_id)
        if pred_ann is None:
            raise DataError(f"No prediction for image_id {image_id!r}: every image of the ground truth json needs "
                            f"an annotation in the prediction json.", file_name=pred_json_file, record=image_id)
        pairs.append(_ImagePair(image_id, os.path.join(gt_folder, gt_ann["file_name"]), gt_ann["segments_info"],
                                os.path.join(pred_folder, pred_ann["file_name"]), pred_ann["segments_info"]))
    return pairs


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
    gt_folder = gt_folder if gt_folder is not None else os.path.splitext(gt_json_file)[0]
    pred_folder = pred_folder if pred_folder is not None else os.path.splitext(pred_json_file)[0]
    gt_json, pred_json = read_json(gt_json_file), read_json(pred_json_file)
    categories = PanopticCategories.from_json(gt_json["categories"])
    pairs = _json_pairs(gt_json, pred_json, gt_folder, pred_folder, pred_json_file)
    results = pq_from_stats(_accumulate(pairs, categories, num_workers), categories)
    logger.info(f"PQ of {len(pairs)} images of {gt_json_file}:\n{_summary_table(results)}")
    return results


def _all_reduce_sum(stats: np.ndarray) -> np.ndarray:
    """Sum a float64 array over ranks (on the GPU for NCCL, which has no CPU tensors; gloo sums float64 on CPU)."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.from_numpy(stats).to(device)
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


class COCOPanopticEvaluator(DatasetEvaluator):
    """PQ, SQ and RQ of panoptic predictions against a dataset's COCO panoptic ground truth.

    :meth:`process` writes each prediction as a COCO panoptic PNG (named as the ground truth's)
    into ``output_dir/panoptic_predictions/`` (a temporary folder when ``output_dir`` is None) and
    keeps its small json entry. :meth:`evaluate` scores this rank's images (in process, or with a
    pool of ``num_workers`` processes), sums the per-category statistics over ranks (one
    ``(num_categories, 4)`` all-reduce), gathers the json entries on rank 0, which writes
    ``output_dir/panoptic_predictions.json`` (:data:`PANOPTIC_PREDICTIONS_FILE`), logs a table and
    returns ``{"panoptic_seg": {"PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st",
    "RQ_st", "PQ-<class>", "SQ-<class>", "RQ-<class>"}}`` in percent. A class with no TP, FP or
    FN is NaN in the per-class entries and left out of the means (as are Things/Stuff means without
    such classes). Only the processed images are evaluated; the numbers equal :func:`pq_compute`
    on the written files.

    Model output contract: ``outputs[i]["panoptic_seg"] = (panoptic_ids, segments_info)`` with
    ``panoptic_ids`` an (H, W) integer tensor at the input's ``height`` × ``width`` (0 or -1 =
    void) and ``segments_info`` a list of ``{"id", "category_id", "isthing", "score" (optional)}``:
    with ``isthing`` True, ``category_id`` is a contiguous thing id (inverse of the metadata's
    ``thing_dataset_id_to_contiguous_id``), with False a contiguous stuff id (inverse of
    ``stuff_dataset_id_to_contiguous_id``); without ``isthing`` it is the dataset category id.
    Listed segments without pixels are dropped.

    Args:
        dataset_name: a dataset whose metadata has ``panoptic_json`` and ``panoptic_root`` (as set by
            ``register_coco_panoptic[_separated]``) and the two id maps.
        output_dir: where the json and PNGs go.
        distributed: sum statistics and gather json entries across ranks; only rank 0 returns results.
        num_workers: processes scoring the images of a rank (0: in the evaluating process).
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *, distributed: bool = True,
                 num_workers: int = 0) -> None:
        meta = MetadataCatalog.get(dataset_name)
        missing = [k for k in ("panoptic_json", "panoptic_root", "thing_dataset_id_to_contiguous_id",
                               "stuff_dataset_id_to_contiguous_id") if meta.get(k) is None]
        if missing:
            raise ValueError(f"COCOPanopticEvaluator: dataset '{dataset_name}' lacks the metadata {missing}; "
                             f"register it with seg_research.data.datasets.register_coco_panoptic.")
        if num_workers < 0:
            raise ValueError(f"num_workers (TEST.PANOPTIC_NUM_WORKERS) must be >= 0, got {num_workers}.")
        self._dataset_name = dataset_name
        self._gt_json_file = meta.panoptic_json
        self._gt_root = meta.panoptic_root
        if not PathManager.exists(self._gt_json_file):
            DatasetCatalog.get(dataset_name)  # generated datasets (Shapes) write their files on first load
        gt_json = read_json(self._gt_json_file)
        self._gt_categories = gt_json["categories"]
        self._categories = PanopticCategories.from_json(self._gt_categories)
        self._gt_images = {img["id"]: img for img in gt_json.get("images", [])}
        self._gt_annotations = {ann["image_id"]: ann for ann in gt_json.get("annotations", [])}
        self._thing_ids = {int(c): int(d) for d, c in meta.thing_dataset_id_to_contiguous_id.items()}
        self._stuff_ids = {int(c): int(d) for d, c in meta.stuff_dataset_id_to_contiguous_id.items()}
        self._output_dir = output_dir
        self._distributed = distributed
        self._num_workers = int(num_workers)
        self.reset()

    def reset(self) -> None:
        self._predictions: List[Dict[str, Any]] = []
        if self._output_dir:
            self._png_dir = os.path.join(self._output_dir, PANOPTIC_PREDICTIONS_FOLDER)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="panoptic_eval_")
            self._png_dir = self._tmp.name

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Write each ``panoptic_seg`` output as a PNG and keep its json entry.

        Raises:
            ValueError: an input without ``image_id``.
            DataError: an image_id not in the ground truth json, a map of the wrong size, nonzero
                ids not in segments_info, or a category_id not in the metadata's maps.
        """
        for inp, out in zip(inputs, outputs):
            if "panoptic_seg" not in out:
                continue
            if "image_id" not in inp:
                raise ValueError("COCOPanopticEvaluator needs each input's 'image_id' (the dataset dict's; "
                                 "DatasetMapper keeps it) to find its ground truth.")
            image_id = inp["image_id"]
            gt_ann = self._gt_annotations.get(image_id)
            if gt_ann is None:
                raise DataError(f"image_id {image_id!r} is not in the panoptic ground truth; inputs must come from "
                                f"dataset '{self._dataset_name}'.", file_name=self._gt_json_file, record=image_id)
            ids, segments = self._prediction(inp, *out["panoptic_seg"])
            write_panoptic_ids(os.path.join(self._png_dir, gt_ann["file_name"]), ids)
            self._predictions.append({"image_id": image_id, "file_name": gt_ann["file_name"],
                                      "segments_info": segments})

    def _prediction(self, inp: dict, panoptic_ids: Any, segments_info: Optional[Sequence[Mapping[str, Any]]]
                    ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
        """(H, W) int64 ids (void 0) and the segments_info with dataset category ids of one output."""
        image_id, file_name = inp["image_id"], inp.get("file_name")
        if segments_info is None:
            raise ValueError("COCOPanopticEvaluator needs segments_info in panoptic_seg = (ids, segments_info); "
                             "convert label_divisor-encoded maps to segments first.")
        ids = torch.as_tensor(panoptic_ids).to("cpu", torch.int64).numpy()
        ids = np.where(ids == -1, VOID, ids)
        image = self._gt_images.get(image_id, {})
        expected = (inp.get("height", image.get("height")), inp.get("width", image.get("width")))
        if None not in expected and ids.shape != tuple(expected):
            raise DataError(f"panoptic_seg has size {tuple(ids.shape)} but the image is {tuple(expected)}; models "
                            f"must return panoptic_seg at the record's original height/width.",
                            file_name=file_name, record=image_id)
        present = set(np.unique(ids).tolist()) - {VOID}
        listed = {int(s["id"]) for s in segments_info}
        if present - listed:
            raise DataError(f"panoptic_seg has segment id(s) {sorted(present - listed)[:10]} that are not in "
                            f"segments_info; every nonzero id (void: 0 or -1) needs an entry.",
                            file_name=file_name, record=image_id)
        segments = []
        for seg in segments_info:
            if int(seg["id"]) not in present:
                continue
            entry = {"id": int(seg["id"]), "category_id": self._dataset_category(seg, file_name, image_id)}
            if "isthing" in seg:
                entry["isthing"] = bool(seg["isthing"])
            if "score" in seg:
                entry["score"] = float(seg["score"])
            segments.append(entry)
        return ids, segments

    def _dataset_category(self, seg: Mapping[str, Any], file_name: Optional[str], image_id: Any) -> int:
        category = int(seg["category_id"])
        if "isthing" not in seg:
            return category
        mapping, key = ((self._thing_ids, "thing_dataset_id_to_contiguous_id") if seg["isthing"]
                        else (self._stuff_ids, "stuff_dataset_id_to_contiguous_id"))
        if category not in mapping:
            raise DataError(f"Segment {seg['id']} has isthing={bool(seg['isthing'])} and contiguous category_id "
                            f"{category}, which is not a value of the metadata's {key} ({sorted(mapping)}).",
                            file_name=file_name, record=image_id)
        return mapping[category]

    def _pairs(self) -> List[_ImagePair]:
        return [_ImagePair(p["image_id"], os.path.join(self._gt_root, p["file_name"]),
                           self._gt_annotations[p["image_id"]]["segments_info"],
                           os.path.join(self._png_dir, p["file_name"]), p["segments_info"])
                for p in self._predictions]

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        stats = _accumulate(self._pairs(), self._categories, self._num_workers)
        predictions = self._predictions
        if self._distributed and comm.get_world_size() > 1:
            stats = _all_reduce_sum(stats)
            predictions = [p for rank in comm.gather(predictions, dst=0) for p in rank]
            if not comm.is_main_process():
                return None
        if not predictions:
            logger.warning(f"COCOPanopticEvaluator on '{self._dataset_name}' received no predictions; was "
                           f"process() called?")
        if self._output_dir:
            self._write_json(predictions)
        results = pq_from_stats(stats, self._categories)
        logger.info(f"Panoptic evaluation of {len(predictions)} images of '{self._dataset_name}':\n"
                    + _summary_table(results))
        return OrderedDict(panoptic_seg=self._percentages(results, stats))

    def _write_json(self, predictions: Iterable[Dict[str, Any]]) -> None:
        annotations = list(predictions)
        path = os.path.join(self._output_dir, PANOPTIC_PREDICTIONS_FILE)
        atomic_write_json(path, {
            "images": [self._gt_images[a["image_id"]] for a in annotations if a["image_id"] in self._gt_images],
            "categories": self._gt_categories,
            "annotations": annotations,
        })
        logger.info(f"Wrote {len(annotations)} panoptic predictions to {path} (PNGs in {self._png_dir})")

    def _percentages(self, results: Mapping[str, Any], stats: np.ndarray) -> "OrderedDict[str, float]":
        res: "OrderedDict[str, float]" = OrderedDict()
        for name, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
            for metric in ("pq", "sq", "rq"):
                res[metric.upper() + suffix] = 100 * results[name][metric]
        counted = _class_metrics(stats)[3]
        rows = []
        for i, (cid, name) in enumerate(zip(self._categories.ids, self._categories.names)):
            values = [100 * results["per_class"][cid][m] if counted[i] else float("nan") for m in ("pq", "sq", "rq")]
            res.update({f"{m}-{name}": v for m, v in zip(("PQ", "SQ", "RQ"), values)})
            rows.append([name, "thing" if self._categories.isthing[i] else "stuff", *values])
        logger.info("Per-category panoptic quality:\n" + tabulate(
            rows, headers=["category", "kind", "PQ", "SQ", "RQ"], tablefmt="pipe", floatfmt=".3f"))
        return res
