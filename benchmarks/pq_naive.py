"""The straightforward panoptic quality that ``benchmarks/pq_eval.py`` times ours against: per image a dict
of boolean masks per segment, and Python loops over every (ground truth, prediction) segment pair computing
intersections mask by mask. It gives ``pq_compute``'s statistics (the script checks it), slowly."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from seg_research.data.image_io import read_panoptic_ids
from seg_research.evaluation.panoptic_evaluation import PanopticCategories, pq_from_stats

#: (gt PNG, gt ``segments_info``, prediction PNG, prediction ``segments_info``) of one image.
PngPair = Tuple[str, List[Dict[str, Any]], str, List[Dict[str, Any]]]


def naive_image_stats(gt_ids: np.ndarray, gt_segments: Sequence[Mapping[str, Any]], pred_ids: np.ndarray,
                      pred_segments: Sequence[Mapping[str, Any]], row_of: Mapping[int, int]) -> np.ndarray:
    """(num_categories, 4) TP, FP, FN, IoU sum of one image, written as a straightforward implementation would."""
    stats = np.zeros((len(row_of), 4))
    gt_info = {s["id"]: s for s in gt_segments}
    pred_info = {s["id"]: s for s in pred_segments}
    gt_masks = {s["id"]: gt_ids == s["id"] for s in gt_segments}
    pred_masks = {s["id"]: pred_ids == s["id"] for s in pred_segments}
    void = gt_ids == 0
    gt_area = {i: int(m.sum()) for i, m in gt_masks.items()}
    pred_area = {i: int(m.sum()) for i, m in pred_masks.items()}
    pred_void = {i: int((m & void).sum()) for i, m in pred_masks.items()}
    gt_matched, pred_matched = set(), set()
    for gid, gmask in gt_masks.items():
        for pid, pmask in pred_masks.items():
            intersection = int((gmask & pmask).sum())
            if intersection == 0 or gt_info[gid].get("iscrowd", 0) == 1:
                continue
            if gt_info[gid]["category_id"] != pred_info[pid]["category_id"]:
                continue
            iou = intersection / (pred_area[pid] + gt_area[gid] - intersection - pred_void[pid])
            if iou > 0.5:
                row = row_of[gt_info[gid]["category_id"]]
                stats[row, 0] += 1
                stats[row, 3] += iou
                gt_matched.add(gid)
                pred_matched.add(pid)
    crowd_of_category = {}
    for gid, info in gt_info.items():
        if gid in gt_matched:
            continue
        if info.get("iscrowd", 0) == 1:
            crowd_of_category[info["category_id"]] = gid
            continue
        stats[row_of[info["category_id"]], 2] += 1
    for pid, info in pred_info.items():
        if pid in pred_matched:
            continue
        ignored = pred_void[pid]
        if info["category_id"] in crowd_of_category:
            ignored += int((pred_masks[pid] & gt_masks[crowd_of_category[info["category_id"]]]).sum())
        if ignored / pred_area[pid] <= 0.5:
            stats[row_of[info["category_id"]], 1] += 1
    return stats


def naive_pq(pairs: Sequence[PngPair], categories: PanopticCategories) -> Dict[str, Any]:
    """``pq_compute``'s result, from the naive per-image statistics of ``pairs`` (gt PNG, gt segments_info,
    prediction PNG, prediction segments_info)."""
    row_of = {c: i for i, c in enumerate(categories.ids)}
    stats = np.zeros((len(categories), 4))
    for gt_file, gt_segments, pred_file, pred_segments in pairs:
        stats += naive_image_stats(read_panoptic_ids(gt_file), gt_segments, read_panoptic_ids(pred_file),
                                   pred_segments, row_of)
    return pq_from_stats(stats, categories)
