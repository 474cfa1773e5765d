"""Average recall of box proposals (ProposalNetwork's outputs), COCO-style: the metric detectron2's
COCOEvaluator reports as ``box_proposals`` (``AR@100``, ``ARs@100``, ... in percent).

For each image the GT boxes (non-crowd, whose annotation ``area`` is in the range) are matched one by
one to the image's ``limit`` best proposals: repeatedly the (proposal, GT) pair of highest IoU among
the unmatched ones is taken, and that IoU is the GT's overlap (0 for GT left unmatched when proposals
run out). Recall at IoU threshold t is the share of all GT with overlap >= t; AR is its mean over
t = 0.50, 0.55, ..., 0.95.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from pycocotools.coco import COCO

from ..structures import Boxes, BoxMode, pairwise_iou

__all__ = ["AREA_RANGES", "proposal_recall", "evaluate_box_proposals"]

#: name -> (min, max) GT area in pixels², COCO's ranges; "" is every area.
AREA_RANGES: "OrderedDict[str, Tuple[float, float]]" = OrderedDict(
    [("", (0.0, 1e5**2)), ("s", (0.0, 32.0**2)), ("m", (32.0**2, 96.0**2)), ("l", (96.0**2, 1e5**2))])
IOU_THRESHOLDS = np.arange(0.5, 0.95 + 1e-5, 0.05)


def _greedy_overlaps(iou: np.ndarray) -> np.ndarray:
    """(P, G) IoU matrix -> (G,) overlap of each GT after greedy one-to-one matching (0 if unmatched)."""
    iou = iou.copy()
    overlaps = np.zeros(iou.shape[1])
    for _ in range(min(iou.shape)):
        p, g = np.unravel_index(np.argmax(iou), iou.shape)
        overlaps[g] = max(iou[p, g], 0.0)
        iou[p, :] = -1.0
        iou[:, g] = -1.0
    return overlaps


def proposal_recall(gt_boxes: Sequence[np.ndarray], proposals: Sequence[np.ndarray], limit: int
                    ) -> Tuple[float, np.ndarray]:
    """AR and the recall per IoU threshold (IOU_THRESHOLDS) of per-image proposals.

    Args:
        gt_boxes: per image, (G, 4) XYXY GT boxes (already filtered by area / crowd).
        proposals: per image, (P, 4) XYXY proposals, best first.
        limit: proposals used per image (the first ``limit``).

    Returns:
        (AR in [0, 1], (10,) recalls); NaN and NaNs when there is no GT box at all.
    """
    all_overlaps: List[np.ndarray] = []
    for gt, props in zip(gt_boxes, proposals, strict=True):
        if len(gt) == 0:
            continue
        props = props[:limit]
        if len(props) == 0:
            all_overlaps.append(np.zeros(len(gt)))
            continue
        iou = pairwise_iou(Boxes(torch.as_tensor(props, dtype=torch.float64)),
                           Boxes(torch.as_tensor(gt, dtype=torch.float64))).numpy()
        all_overlaps.append(_greedy_overlaps(iou))
    overlaps = np.concatenate(all_overlaps) if all_overlaps else np.zeros(0)
    if len(overlaps) == 0:
        return float("nan"), np.full(len(IOU_THRESHOLDS), np.nan)
    recalls = np.array([(overlaps >= t).mean() for t in IOU_THRESHOLDS])
    return float(recalls.mean()), recalls


def evaluate_box_proposals(coco_gt: COCO, predictions: Sequence[Dict[str, Any]],
                           limits: Sequence[int] = (100, 1000)) -> "OrderedDict[str, float]":
    """``AR{,s,m,l}@<limit>`` in percent for ``predictions`` (``{"image_id", "proposal_boxes": (P, 4)
    XYXY absolute, best first}`` per image) against the non-crowd boxes of ``coco_gt``; an area range
    keeps the GT whose annotation ``area`` lies in it. Images are those of ``predictions``."""
    gt_by_range: Dict[str, List[np.ndarray]] = {name: [] for name in AREA_RANGES}
    proposals = []
    for pred in predictions:
        anns = [a for a in coco_gt.imgToAnns.get(pred["image_id"], []) if not a.get("iscrowd", 0)]
        boxes = np.array([BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in anns],
                         dtype=np.float64).reshape(-1, 4)
        areas = np.array([a["area"] for a in anns], dtype=np.float64)
        for name, (lo, hi) in AREA_RANGES.items():
            gt_by_range[name].append(boxes[(areas >= lo) & (areas <= hi)])
        proposals.append(np.asarray(pred["proposal_boxes"], dtype=np.float64).reshape(-1, 4))
    results: "OrderedDict[str, float]" = OrderedDict()
    for limit in limits:
        for name in AREA_RANGES:
            ar, _ = proposal_recall(gt_by_range[name], proposals, limit)
            results[f"AR{name}@{limit}"] = ar * 100.0
    return results
