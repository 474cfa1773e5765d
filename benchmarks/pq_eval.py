#!/usr/bin/env python
"""Throughput of panoptic quality evaluation: seg_research's vectorised scoring against a
straightforward per-segment-pair implementation, on synthetic COCO panoptic files.

    python benchmarks/pq_eval.py                      # 1000 images of 480x640, ~20 segments each
    python benchmarks/pq_eval.py --num-images 3       # smoke run

The ground truth and prediction PNGs + jsons are generated once into a temporary folder (not
timed). Then, timing only evaluation (reading both PNGs of each image and scoring it):

* ``ours``: :func:`seg_research.evaluation.panoptic_evaluation.pq_compute`, the scoring path of
  ``COCOPanopticEvaluator.evaluate``, in process and with a pool of ``--workers`` processes;
* ``naive``: one process; per image a dict of boolean masks per segment, and Python loops over
  every (ground truth, prediction) segment pair computing intersections mask by mask;
* ``read only``: just decoding the two PNGs per image, the floor of both.

All implementations must give the same per-category statistics; the script checks it.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from seg_research.data.detection_utils import read_panoptic_ids
from seg_research.evaluation.panoptic_evaluation import PanopticCategories, pq_compute, pq_from_stats
from seg_research.evaluation.panoptic_synthetic import CATEGORIES, synthetic_panoptic_problem


# ----------------------------------------------------------------------------- the naive baseline
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


def _png_pairs(root: str) -> List[Tuple[str, List[dict], str, List[dict]]]:
    """(gt PNG, gt segments_info, prediction PNG, prediction segments_info) per image of ``root``."""
    with open(os.path.join(root, "gt.json")) as f:
        gt = json.load(f)["annotations"]
    with open(os.path.join(root, "pred.json")) as f:
        pred = {a["image_id"]: a for a in json.load(f)["annotations"]}
    return [(os.path.join(root, "gt", g["file_name"]), g["segments_info"],
             os.path.join(root, "pred", pred[g["image_id"]]["file_name"]), pred[g["image_id"]]["segments_info"])
            for g in gt]


def naive_pq(root: str, categories: PanopticCategories) -> Dict[str, Any]:
    """pq_compute's result, from the naive per-image statistics."""
    row_of = {c: i for i, c in enumerate(categories.ids)}
    stats = np.zeros((len(categories), 4))
    for gt_file, gt_segments, pred_file, pred_segments in _png_pairs(root):
        stats += naive_image_stats(read_panoptic_ids(gt_file), gt_segments, read_panoptic_ids(pred_file),
                                   pred_segments, row_of)
    return pq_from_stats(stats, categories)


def read_only(root: str) -> None:
    for gt_file, _, pred_file, _ in _png_pairs(root):
        read_panoptic_ids(gt_file), read_panoptic_ids(pred_file)


# ----------------------------------------------------------------------------- timing
def _timed(fn: Callable[[], Any]) -> Tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _same(a: Any, b: Any) -> bool:
    """Equal result dicts (to 1e-12; NaN, the mean over no category, equals NaN)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b or abs(a - b) <= 1e-12 or (np.isnan(a) and np.isnan(b))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, default=1000)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--segments", type=int, default=20, help="ground truth segments drawn per image")
    parser.add_argument("--workers", type=int, default=2, help="pool size of the pooled run (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pq_eval_") as root:
        (gt_json, pred_json), gen_time = _timed(
            lambda: synthetic_panoptic_problem(root, args.num_images, height=args.height, width=args.width,
                                               segments=args.segments, seed=args.seed))
        pairs = _png_pairs(root)
        print(f"{args.num_images} images of {args.height}x{args.width}, "
              f"{np.mean([len(p[1]) for p in pairs]):.1f} ground truth and {np.mean([len(p[3]) for p in pairs]):.1f} "
              f"predicted segments per image (generated in {gen_time:.1f} s, not timed)")
        runs: List[Tuple[str, Callable[[], Any]]] = [
            ("ours, in process (TEST.PANOPTIC_NUM_WORKERS 0)", lambda: pq_compute(gt_json, pred_json))]
        if args.workers > 0:
            runs.append((f"ours, pool of {args.workers} processes",
                         lambda: pq_compute(gt_json, pred_json, num_workers=args.workers)))
        runs += [("naive per-segment-pair loops, 1 process",
                  lambda: naive_pq(root, PanopticCategories.from_json(CATEGORIES))),
                 ("read only (PNG decoding, no scoring)", lambda: read_only(root))]
        results = []
        for name, fn in runs:
            result, seconds = _timed(fn)
            results.append(result)
            print(f"  {name:<48} {args.num_images / seconds:8.1f} images/s  ({seconds:.2f} s)")
        if not all(_same(r, results[0]) for r in results[1:-1]):
            raise SystemExit("The implementations disagree: " + json.dumps([r["All"] for r in results[:-1]]))
        summary = results[0]["All"]
        print(f"  all implementations agree: PQ {100 * summary['pq']:.3f}, SQ {100 * summary['sq']:.3f}, "
              f"RQ {100 * summary['rq']:.3f} over {summary['n']} categories")


if __name__ == "__main__":
    main()
