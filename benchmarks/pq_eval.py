#!/usr/bin/env python
"""Panoptic quality evaluation timed on generated COCO panoptic problems (:mod:`.panoptic_synthetic`).

Two entry points share the problem, its PNG pairs and the decoding floor:

* ``tools/benchmark.py --task pq`` (:func:`bench_pq`): ``pq_compute``'s work with each installed PQ backend,
  one JSON record each, beside the floor: decoding the PNGs with our reader and nothing else;
* this script: our ``pq_compute`` (the scoring path of ``COCOPanopticEvaluator.evaluate``), in process and
  with a pool of ``--workers`` processes, against a straightforward per-segment-pair implementation
  (:mod:`.pq_naive`, one process) and the floor; all must give the same statistics (checked)::

    python benchmarks/pq_eval.py                      # 1000 images of 480x640, ~20 segments each
    python benchmarks/pq_eval.py --num-images 3       # smoke run

The ground truth and prediction PNGs + jsons are generated once into a temporary folder, untimed; only
evaluation (reading both PNGs of each image and scoring it) is timed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

if __package__ in (None, ""):  # run as a file: the package lives in the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.panoptic_synthetic import CATEGORIES, synthetic_panoptic_problem
from benchmarks.pq_naive import PngPair, naive_pq
from benchmarks.records import Timer, base_record, metrics_agreement
from seg_research.data.image_io import read_panoptic_ids
from seg_research.evaluation.fast_pq_api import (
    FAST_PQ_BACKEND,
    PQ_BACKEND_REGISTRY,
    REFERENCE_PQ_BACKEND,
    available_pq_backends,
)
from seg_research.evaluation.panoptic_quality import PanopticCategories, panoptic_problem, pq_compute, pq_from_stats
from seg_research.evaluation.testing import max_metric_difference

#: Size of the generated images (pixels) and ground truth segments drawn per image of ``--task pq``.
HEIGHT, WIDTH, SEGMENTS = 480, 640, 20
#: Largest metric difference between this script's implementations that counts as agreeing.
AGREEMENT_ATOL = 1e-12


# ----------------------------------------------------------------------------- the problem, shared
def png_pairs(gt_json: str, pred_json: str) -> List[PngPair]:
    """(gt PNG, gt segments_info, prediction PNG, prediction segments_info) per ground truth image, the PNGs
    in the folders named as the jsons without ``.json`` (as :func:`synthetic_panoptic_problem` writes them)."""
    def annotations(json_file: str) -> List[Dict[str, Any]]:
        with open(json_file) as f:
            return json.load(f)["annotations"]

    gt_folder, pred_folder = os.path.splitext(gt_json)[0], os.path.splitext(pred_json)[0]
    pred = {a["image_id"]: a for a in annotations(pred_json)}
    return [(os.path.join(gt_folder, g["file_name"]), g["segments_info"],
             os.path.join(pred_folder, pred[g["image_id"]]["file_name"]), pred[g["image_id"]]["segments_info"])
            for g in annotations(gt_json)]


def decode_pngs(pairs: Sequence[PngPair]) -> None:
    """The floor of every implementation: decode both PNGs of each pair with our reader, nothing else."""
    for gt_file, _, pred_file, _ in pairs:
        read_panoptic_ids(gt_file)
        read_panoptic_ids(pred_file)


def segments_per_image(pairs: Sequence[PngPair]) -> Tuple[float, float]:
    """Mean ground truth and predicted segments per image."""
    return float(np.mean([len(p[1]) for p in pairs])), float(np.mean([len(p[3]) for p in pairs]))


def as_metrics(results: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
    """``{All|Things|Stuff|per_class: {metric: value}}`` of a ``pq_from_stats`` result (PQ, SQ, RQ), the
    layout :func:`~seg_research.evaluation.testing.max_metric_difference` compares."""
    metrics = {name: {k: results[name][k] for k in ("pq", "sq", "rq")} for name in ("All", "Things", "Stuff")}
    metrics["per_class"] = {f"{cid}/{k}": v for cid, values in results["per_class"].items() for k, v in values.items()}
    return metrics


# ----------------------------------------------------------------------------- tools/benchmark.py --task pq
def _threads(backend: str) -> int:
    """Threads a backend scores with in this process: hotcoco's rayon pool (``RAYON_NUM_THREADS``, default
    one per usable core), ours 1 (``num_workers=0``)."""
    if backend != FAST_PQ_BACKEND:
        return 1
    return int(os.environ.get("RAYON_NUM_THREADS") or 0) or len(os.sched_getaffinity(0))


def _scoring(backend: str, gt_json: str, pred_json: str) -> Callable[[], Dict[str, Any]]:
    """One timed repetition: ``pq_compute(gt_json, pred_json, num_workers=0)``'s work with ``backend``
    (read both jsons, score every image pair, PQ/SQ/RQ from the summed statistics)."""
    def run() -> Dict[str, Any]:
        pairs, categories = panoptic_problem(gt_json, pred_json)
        return pq_from_stats(PQ_BACKEND_REGISTRY.get(backend)().stats(pairs, categories, 0), categories)
    return run


def bench_pq(args: argparse.Namespace, cfg: None, timer: Timer) -> List[Dict[str, Any]]:
    """Seconds of ``pq_compute``'s work (one process: read both PNGs of each image and score it) with
    each installed PQ backend (hotcoco on its threads, ours in process) and of decoding the same PNGs
    with our reader (``read_panoptic_ids``) and nothing else, alternating; one record per backend
    (``pq_backend``, ``pq_threads``, ``metrics_equal`` against ours: All/Things/Stuff and per-category
    PQ, SQ, RQ within 1e-6) and one for the floor; ``images_per_s`` counts image pairs."""
    with tempfile.TemporaryDirectory(prefix="benchmark_pq_") as root:
        start = time.perf_counter()
        gt_json, pred_json = synthetic_panoptic_problem(root, args.num_images, height=HEIGHT, width=WIDTH,
                                                        segments=SEGMENTS, seed=args.seed)
        generation_s = time.perf_counter() - start
        pairs = png_pairs(gt_json, pred_json)
        runs: Dict[str, Callable[[], Any]] = {name: _scoring(name, gt_json, pred_json)
                                              for name in available_pq_backends()}
        runs["decode_floor"] = lambda: decode_pngs(pairs)
        results: Dict[str, Any] = {}
        for i in range(args.warmup + args.iters):
            for impl, fn in runs.items():
                results[impl] = timer(impl, fn, record=i >= args.warmup)
        gt_segments, pred_segments = segments_per_image(pairs)
        problem = {"num_images": args.num_images, "image_size": [HEIGHT, WIDTH], "num_pngs": 2 * len(pairs),
                   "gt_segments_per_image": round(gt_segments, 2), "pred_segments_per_image": round(pred_segments, 2),
                   "generation_s": round(generation_s, 3), "unit": "s/run"}
    records = []
    reference = as_metrics(results[REFERENCE_PQ_BACKEND])
    for impl in runs:
        is_floor = impl == "decode_floor"
        record = {**base_record(args, cfg, impl if is_floor else "pq_compute"), **timer.summary(impl),
                  **timer.memory(impl), **problem}
        record["images_per_s"] = round(args.num_images / record["median_s"], 2)
        if is_floor:
            record["pngs_per_s"] = round(2 * len(pairs) / record["median_s"], 2)
        else:
            summary = results[impl]["All"]  # fractions, over the categories with TP + FP + FN > 0
            record.update(pq_backend=impl, pq_threads=_threads(impl), num_workers=0, pq=summary["pq"],
                          sq=summary["sq"], rq=summary["rq"], categories=summary["n"],
                          **metrics_agreement(as_metrics(results[impl]), reference))
        records.append(record)
    return records


# ----------------------------------------------------------------------------- the script: ours vs naive
def _timed(fn: Callable[[], Any]) -> Tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


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
        pairs = png_pairs(gt_json, pred_json)
        gt_segments, pred_segments = segments_per_image(pairs)
        print(f"{args.num_images} images of {args.height}x{args.width}, {gt_segments:.1f} ground truth and "
              f"{pred_segments:.1f} predicted segments per image (generated in {gen_time:.1f} s, not timed)")
        scorings: List[Tuple[str, Callable[[], Dict[str, Any]]]] = [
            ("ours, in process (TEST.PANOPTIC_NUM_WORKERS 0)", lambda: pq_compute(gt_json, pred_json))]
        if args.workers > 0:
            scorings.append((f"ours, pool of {args.workers} processes",
                             lambda: pq_compute(gt_json, pred_json, num_workers=args.workers)))
        scorings.append(("naive per-segment-pair loops, 1 process",
                         lambda: naive_pq(pairs, PanopticCategories.from_json(CATEGORIES))))
        results = []
        for name, fn in [*scorings, ("read only (PNG decoding, no scoring)", lambda: decode_pngs(pairs))]:
            result, seconds = _timed(fn)
            results.append(result)
            print(f"  {name:<48} {args.num_images / seconds:8.1f} images/s  ({seconds:.2f} s)")
        scored = results[:len(scorings)]
        if any(max_metric_difference(as_metrics(r), as_metrics(scored[0])) > AGREEMENT_ATOL for r in scored[1:]):
            raise SystemExit("The implementations disagree: " + json.dumps([r["All"] for r in scored]))
        summary = scored[0]["All"]
        print(f"  all implementations agree: PQ {100 * summary['pq']:.3f}, SQ {100 * summary['sq']:.3f}, "
              f"RQ {100 * summary['rq']:.3f} over {summary['n']} categories")


if __name__ == "__main__":
    main()
