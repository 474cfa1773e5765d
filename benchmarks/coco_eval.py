"""``--task coco-eval``: COCO bbox + segm scoring of a generated val2017-sized problem with each backend,
and the peak RSS of a distributed evaluation's main process scoring from prediction shard files
against one holding every prediction (:mod:`.eval_memory`, in subprocesses)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List

from seg_research.data.datasets.coco import index_coco
from seg_research.evaluation.coco_evaluation import SHARD_PREFIX, score_coco_task
from seg_research.evaluation.fast_eval_api import COCO_EVAL_BACKEND_REGISTRY, REFERENCE_BACKEND, available_backends
from seg_research.evaluation.prediction_shards import shard_path, write_shard

from .coco_synthetic import synthetic_coco_problem
from .records import Timer, base_record, current_rss_mb, metrics_agreement

#: The repository root, where ``python -m benchmarks.eval_memory`` finds this package.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ("bbox", "segm")
#: COCOeval's per-image detection limits (as COCOEvaluator with TEST.DETECTIONS_PER_IMAGE 100).
MAX_DETS = [1, 10, 100]
#: Ranks of the distributed evaluation whose main process is measured.
WORLD_SIZE = 2


def _scoring(name: str, coco_gt: Any, results: List[Dict[str, Any]], image_ids: List[int],
             categories: List[Dict[str, Any]]) -> Callable[[], Dict[str, Any]]:
    """One timed repetition: what ``COCOEvaluator.evaluate`` does after gathering, for both tasks: build
    the backend on the ground truth index, then per task evaluate + accumulate + metrics."""
    names, ids = [c["name"] for c in categories], [c["id"] for c in categories]

    def run() -> Dict[str, Any]:
        backend = COCO_EVAL_BACKEND_REGISTRY.get(name)(coco_gt)
        return OrderedDict((task, score_coco_task(backend, results, task, image_ids, MAX_DETS, names, ids))
                           for task in TASKS)
    return run


def _per_image_records(gt: Dict[str, Any], results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """``{image_id, instances}`` per image, as ``COCOEvaluator.process`` keeps them (images in json order)."""
    by_image: Dict[int, List[Dict[str, Any]]] = {image["id"]: [] for image in gt["images"]}
    for r in results:
        by_image[r["image_id"]].append(r)
    return [{"image_id": image_id, "instances": instances} for image_id, instances in by_image.items()]


def _main_process_memory(mode: str, gt: Dict[str, Any], results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Run :mod:`.eval_memory` in ``mode`` in a fresh process on this problem; its JSON result.

    ``shards``: the images are split into :data:`WORLD_SIZE` contiguous chunks (as the inference sampler
    splits them); the main process holds chunk 0, the other ranks' chunks are shard files written here.
    ``in_memory``: the main process holds every image's predictions.
    """
    records = _per_image_records(gt, results)
    with tempfile.TemporaryDirectory(prefix="benchmark_eval_memory_") as folder:
        for name, value in (("gt.json", gt), ("categories.json", gt["categories"])):
            with open(os.path.join(folder, name), "w") as f:
                json.dump(value, f)
        if mode == "shards":
            chunk = -(-len(records) // WORLD_SIZE)
            held = records[:chunk]
            for rank in range(1, WORLD_SIZE):
                write_shard(shard_path(folder, SHARD_PREFIX, rank, WORLD_SIZE),
                            records[rank * chunk:(rank + 1) * chunk])
        else:
            held = records
        with open(os.path.join(folder, "rank0.json"), "w") as f:
            json.dump(held, f)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.eval_memory", "--folder", folder,
                               "--mode", mode, "--world-size", str(WORLD_SIZE)], capture_output=True, text=True,
                              cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"The {mode} evaluation process failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_coco_eval(args: argparse.Namespace, cfg: None, timer: Timer) -> List[Dict[str, Any]]:
    """Records per installed backend (seconds of bbox + segm scoring, ``metrics_equal``, ``peak_rss_mb``)
    on ``synthetic_coco_problem(args.num_images)``, then one per main-process mode (``shards``,
    ``in_memory``) with the peak RSS of that process alone."""
    start = time.perf_counter()
    gt, results = synthetic_coco_problem(args.num_images, seed=args.seed)
    generation_s = time.perf_counter() - start
    # pycocotools' evaluation rewrites the ground truth dicts it indexes (polygons -> RLE with bytes): as
    # COCOEvaluator reads its json at each evaluate(), every repetition gets a fresh copy (untimed).
    gt_text = json.dumps(gt)
    memory = {mode: _main_process_memory(mode, gt, results) for mode in ("shards", "in_memory")}
    image_ids = sorted(image["id"] for image in gt["images"])
    problem = {"num_images": args.num_images, "annotations": len(gt["annotations"]), "detections": len(results),
               "categories": len(gt["categories"]), "generation_s": round(generation_s, 3)}
    held_rss = current_rss_mb()  # the generated problem (dicts and its json text)
    backends = available_backends()
    metrics: Dict[str, Any] = {}
    for i in range(args.warmup + args.iters):
        for name in backends:
            coco_gt = index_coco(json.loads(gt_text), "<generated>")
            metrics[name] = timer(name, _scoring(name, coco_gt, results, image_ids, gt["categories"]),
                                  record=i >= args.warmup)
            del coco_gt
    records = []
    for name in backends:
        record = {**base_record(args, cfg, "seg_research"), "coco_backend": name, "unit": "s/evaluation (bbox+segm)",
                  **timer.summary(name), **timer.memory(name), "problem_rss_mb": round(held_rss, 1), **problem,
                  **metrics_agreement(metrics[name], metrics.get(REFERENCE_BACKEND)),
                  **{f"{task}_AP": metrics[name][task]["AP"] for task in TASKS}}
        records.append(record)
    for measured in memory.values():
        records.append({**base_record(args, cfg, "seg_research"), "unit": "MiB (main process)",
                        "memory_mode": measured.pop("mode"), "coco_backend": measured.pop("backend"),
                        **measured, **problem})
    return records
