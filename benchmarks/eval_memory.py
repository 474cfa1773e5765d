"""The main process of a distributed COCO evaluation, alone in a process so that its peak RSS is its own.

    python -m benchmarks.eval_memory --folder F --mode shards|in_memory    # from the repository root

``F`` holds ``gt.json`` (COCO ground truth), ``categories.json`` and ``rank0.json`` (the records
``{image_id, instances: [COCO result dicts]}`` this process holds after ``process``, as
``COCOEvaluator`` keeps them). ``shards``: rank 0 of ``--world-size`` ranks (``comm`` faked in this
process), the other ranks' shard files already in ``F`` (``prediction_shards.write_shard``), so
``evaluate`` gathers through them; ``in_memory``: one process, ``rank0.json`` holding every
prediction. Prints one JSON line: ``peak_rss_mb`` (VmHWM of the whole run), ``start_rss_mb`` (after
imports), ``held_rss_mb`` (after loading this process's predictions), ``evaluate_s`` and the AP of
each task.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, Optional, Sequence

from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.evaluation import COCOEvaluator
from seg_research.utils import comm

from .records import current_rss_mb, peak_rss_mb_since_reset

MODES = ("shards", "in_memory")
DATASET = "benchmark_eval_memory"


def _fake_rank0(world_size: int) -> None:
    """Make ``comm`` report rank 0 of ``world_size`` ranks on one machine (barriers are no-ops: the other
    ranks' shards are written before this process starts)."""
    comm.get_world_size = lambda: world_size
    comm.get_local_size = lambda: world_size
    comm.get_rank = lambda: 0
    comm.is_main_process = lambda: True
    comm.synchronize = lambda: None


def run(folder: str, mode: str, world_size: int) -> Dict[str, Any]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    with open(os.path.join(folder, "categories.json")) as f:
        categories = json.load(f)
    DatasetCatalog.register(DATASET, lambda: [])
    MetadataCatalog.get(DATASET).set(json_file=os.path.join(folder, "gt.json"),
                                     thing_classes=[c["name"] for c in categories],
                                     thing_dataset_id_to_contiguous_id={c["id"]: i for i, c in enumerate(categories)})
    if mode == "shards":
        _fake_rank0(world_size)
    start_rss = current_rss_mb()
    evaluator = COCOEvaluator(DATASET, distributed=mode == "shards", output_dir=folder)
    with open(os.path.join(folder, "rank0.json")) as f:
        for record in json.load(f):
            evaluator.process_coco_results(record["image_id"], record["instances"])
    held_rss = current_rss_mb()
    start = time.perf_counter()
    results = evaluator.evaluate()
    evaluate_s = time.perf_counter() - start
    return {"mode": mode, "world_size": world_size if mode == "shards" else 1, "backend": evaluator.backend,
            "peak_rss_mb": round(peak_rss_mb_since_reset(), 1), "start_rss_mb": round(start_rss, 1),
            "held_rss_mb": round(held_rss, 1), "evaluate_s": round(evaluate_s, 3),
            **{f"{task}_AP": results[task]["AP"] for task in results}}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--world-size", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.folder, args.mode, args.world_size)), flush=True)


if __name__ == "__main__":
    main()
