"""``--task pq``: ``pq_compute``'s work on a generated COCO panoptic problem with each PQ backend, beside its
floor, decoding the PNGs."""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any, Callable, Dict, List

import numpy as np

from seg_research.data.image_io import read_panoptic_ids
from seg_research.evaluation.fast_pq_api import (
    FAST_PQ_BACKEND,
    PQ_BACKEND_REGISTRY,
    REFERENCE_PQ_BACKEND,
    available_pq_backends,
)
from seg_research.evaluation.panoptic_quality import panoptic_problem, pq_from_stats
from seg_research.evaluation.panoptic_synthetic import synthetic_panoptic_problem

from .records import Timer, base_record, metrics_agreement

#: Size of the generated images (pixels) and ground truth segments drawn per image.
HEIGHT, WIDTH, SEGMENTS = 480, 640, 20


def _annotations(json_file: str) -> List[Dict[str, Any]]:
    """The ``annotations`` of a COCO panoptic json, with ``file_name`` made the PNG's path (in the folder
    named as the json without ``.json``)."""
    with open(json_file) as f:
        annotations = json.load(f)["annotations"]
    folder = os.path.splitext(json_file)[0]
    return [{**a, "file_name": os.path.join(folder, a["file_name"])} for a in annotations]


def _mean_segments(annotations: List[Dict[str, Any]]) -> float:
    return float(np.mean([len(a["segments_info"]) for a in annotations]))


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


def _as_metrics(results: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
    """``{All|Things|Stuff|per_class: {metric: value}}`` of a ``pq_from_stats`` result, for ``metrics_agreement``."""
    metrics = {name: {k: results[name][k] for k in ("pq", "sq", "rq")} for name in ("All", "Things", "Stuff")}
    metrics["per_class"] = {f"{cid}/{k}": v for cid, values in results["per_class"].items() for k, v in values.items()}
    return metrics


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
        gt_annotations, pred_annotations = _annotations(gt_json), _annotations(pred_json)
        pngs = [a["file_name"] for a in gt_annotations + pred_annotations]

        def decode() -> None:
            for png in pngs:
                read_panoptic_ids(png)

        backends = available_pq_backends()
        runs: Dict[str, Callable[[], Any]] = {name: _scoring(name, gt_json, pred_json) for name in backends}
        runs["decode_floor"] = decode
        results: Dict[str, Any] = {}
        for i in range(args.warmup + args.iters):
            for impl, fn in runs.items():
                results[impl] = timer(impl, fn, record=i >= args.warmup)
        problem = {"num_images": args.num_images, "image_size": [HEIGHT, WIDTH], "num_pngs": len(pngs),
                   "gt_segments_per_image": round(_mean_segments(gt_annotations), 2),
                   "pred_segments_per_image": round(_mean_segments(pred_annotations), 2),
                   "generation_s": round(generation_s, 3), "unit": "s/run"}
    records = []
    reference = _as_metrics(results[REFERENCE_PQ_BACKEND])
    for impl in runs:
        is_floor = impl == "decode_floor"
        record = {**base_record(args, cfg, impl if is_floor else "pq_compute"), **timer.summary(impl),
                  **timer.memory(impl), **problem}
        record["images_per_s"] = round(args.num_images / record["median_s"], 2)
        if is_floor:
            record["pngs_per_s"] = round(len(pngs) / record["median_s"], 2)
        else:
            summary = results[impl]["All"]  # fractions, over the categories with TP + FP + FN > 0
            record.update(pq_backend=impl, pq_threads=_threads(impl), num_workers=0, pq=summary["pq"],
                          sq=summary["sq"], rq=summary["rq"], categories=summary["n"],
                          **metrics_agreement(_as_metrics(results[impl]), reference))
        records.append(record)
    return records
