"""``--task pq``: ``pq_compute`` on a generated COCO panoptic problem, beside its floor, decoding the PNGs."""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

from seg_research.data.image_io import read_panoptic_ids
from seg_research.evaluation.panoptic_quality import pq_compute
from seg_research.evaluation.panoptic_synthetic import synthetic_panoptic_problem

from .records import Timer, base_record

#: Size of the generated images (pixels) and ground truth segments drawn per image.
HEIGHT, WIDTH, SEGMENTS = 480, 640, 20


def _png_files(json_file: str) -> List[str]:
    """The PNGs of a COCO panoptic json (in the folder named as the json without ``.json``)."""
    with open(json_file) as f:
        annotations = json.load(f)["annotations"]
    return [os.path.join(os.path.splitext(json_file)[0], a["file_name"]) for a in annotations]


def _mean_segments(json_file: str) -> float:
    with open(json_file) as f:
        return float(np.mean([len(a["segments_info"]) for a in json.load(f)["annotations"]]))


def bench_pq(args: argparse.Namespace, cfg: None, timer: Timer) -> List[Dict[str, Any]]:
    """Seconds of ``pq_compute(gt_json, pred_json)`` (``num_workers=0``: one process, reading both
    PNGs of each image and scoring it) and of decoding the same PNGs with the same reader
    (``read_panoptic_ids``) and nothing else, alternating; ``images_per_s`` counts image pairs."""
    with tempfile.TemporaryDirectory(prefix="benchmark_pq_") as root:
        start = time.perf_counter()
        gt_json, pred_json = synthetic_panoptic_problem(root, args.num_images, height=HEIGHT, width=WIDTH,
                                                        segments=SEGMENTS, seed=args.seed)
        generation_s = time.perf_counter() - start
        pngs = _png_files(gt_json) + _png_files(pred_json)

        def decode() -> None:
            for png in pngs:
                read_panoptic_ids(png)

        runs = {"pq_compute": lambda: pq_compute(gt_json, pred_json, num_workers=0), "decode_floor": decode}
        results: Dict[str, Any] = {}
        for i in range(args.warmup + args.iters):
            for impl, fn in runs.items():
                results[impl] = timer(impl, fn, record=i >= args.warmup)
        problem = {"num_images": args.num_images, "image_size": [HEIGHT, WIDTH], "num_pngs": len(pngs),
                   "gt_segments_per_image": round(_mean_segments(gt_json), 2),
                   "pred_segments_per_image": round(_mean_segments(pred_json), 2),
                   "generation_s": round(generation_s, 3), "unit": "s/run"}
    records = []
    for impl in runs:
        record = {**base_record(args, cfg, impl), **timer.summary(impl), **timer.memory(impl), **problem}
        record["images_per_s"] = round(args.num_images / record["median_s"], 2)
        if impl == "pq_compute":
            summary = results[impl]["All"]  # fractions, over the categories with TP + FP + FN > 0
            record.update(num_workers=0, pq=summary["pq"], sq=summary["sq"], rq=summary["rq"],
                          categories=summary["n"])
        else:
            record["pngs_per_s"] = round(len(pngs) / record["median_s"], 2)
        records.append(record)
    return records
