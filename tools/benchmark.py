#!/usr/bin/env python
"""Time training steps, inference, the train loader or an evaluator of a config, or the evaluation of
a generated problem.

    python tools/benchmark.py --config-file F --task train|inference|data|eval [--iters N]
        [--warmup W] [--json OUT] [--compare torchvision] [--precision fp32 bf16 fp16] KEY VALUE ...
    python tools/benchmark.py --task coco-eval|pq [--num-images N] [--iters N] [--warmup W] [--json OUT]
    python tools/benchmark.py --task mask2former [--num-images B] [--iters N] [--warmup W] [--json OUT]

Each run prints one JSON line per implementation (also appended to ``--json OUT``) with
``impl``, ``task``, ``config``, ``median_s``/``min_s``/``max_s`` over ``n`` timed repetitions,
the torch/torchvision versions, thread count, device, peak RSS (and peak CUDA memory on a GPU):

- ``train``: seconds per iteration (forward + backward + optimizer step) of a batch of
  SOLVER.IMS_PER_BATCH images, either synthetic (``--inputs synthetic``: random square images
  of side max(INPUT.MIN_SIZE_TRAIN) (at most INPUT.MAX_SIZE_TRAIN) with ``--instances`` random
  elliptic instances each) or batches of the train loader (``--inputs dataset``, drawn before
  timing). ``mask_rois`` is the mean number of ROIs the mask head saw per step.
- ``inference``: seconds per image with post-processing (rescaling, mask pasting); the
  ``raw_*`` fields time the same images without it.
- ``data``: seconds per batch of the train loader with DATALOADER.NUM_WORKERS workers
  (``images_per_s``).
- ``eval``: seconds for the evaluator of DATASETS.TEST[0] (``reset``, ``process`` of every
  image, ``evaluate``) on predictions of the configured model computed once before timing; a
  ``COCOEvaluator`` is timed with each installed COCO backend (hotcoco, pycocotools) on the same
  predictions, alternating them, one record each (``coco_backend``) with ``metrics_equal`` (every
  metric within 1e-6 of pycocotools') and ``max_metric_diff``; a ``COCOPanopticEvaluator`` likewise
  with each installed PQ backend (``pq_backend``: hotcoco, seg_research = ours, the reference).

The generated tasks take no config (``--config-file`` is refused); they build a seeded problem once,
untimed (``generation_s``):

- ``coco-eval``: COCO bbox + segm scoring (backend on the ground truth, then per task evaluate +
  accumulate + metrics: ``score_coco_task``, the code of ``COCOEvaluator.evaluate``) of
  ``--num-images`` (default 5000) generated val2017-sized images (``synthetic_coco_problem``), one
  record per installed backend, alternating, with ``metrics_equal``; then two records with the peak
  RSS of a distributed evaluation's main process, each measured alone in a subprocess: rank 0 of 2
  scoring from the prediction shard files (``memory_mode: shards``) and one process holding every
  prediction (``in_memory``).
- ``pq``: ``pq_compute``'s work (one process) on ``--num-images`` (default 200) generated 480x640 COCO
  panoptic image pairs (~20 segments each) with each installed PQ backend (hotcoco on its rayon
  threads, ``RAYON_NUM_THREADS``; ours), alternating, one record each (``pq_backend``, ``pq_threads``,
  ``metrics_equal`` against ours), and the floor: decoding their PNGs with our reader only.

- ``mask2former`` (:mod:`benchmarks.mask2former`): Mask2Former R50 train step (``--num-images`` per batch,
  default 2) and inference beside Panoptic FPN R50 on the same 512 px images, alternating; then
  MSDeformAttn forward + backward, ours against upstream's PyTorch path (where installed) or the same
  ``grid_sample`` formula.

``--precision`` (train, inference) times each listed precision, alternating them step by step
from the same weights: ``fp32``, or the forward pass under ``torch.autocast`` to ``bf16`` /
``fp16`` (the backward and optimizer step follow; fp16 with a ``GradScaler``). Records carry
``precision`` and, on a CPU, ``cpu_native_bf16`` (bf16 is emulated, slowly, where it is False).

``--compare torchvision`` (train, inference; Mask R-CNN configs) also times
``torchvision.models.detection.MaskRCNN`` built with the config's architecture and sampling
settings (``benchmarks.torchvision_twin.torchvision_maskrcnn_from_cfg``) and started from the same weights, on the
same inputs, alternating the two implementations step by step in this process.

``--runtime torch torchscript onnxruntime`` (inference) times the model and its exported files
(``seg_research.export``: TorchScript by tracing, ONNX on onnxruntime with ``--threads`` threads) on the
same images, alternating them image by image, post-processing included; one record per runtime
(``runtime``, ``ratio_to_torch``, ``export_s``; see ``benchmarks/runtimes.py``).

``--compare compiled`` (train, inference) also times a copy of the model with the parts of
``MODEL.COMPILE.PARTS`` compiled (``MODEL.COMPILE.MODE``; ``impl`` ``seg_research+compile``) beside the
eager one, from the same weights, alternating step by step; compilation happens in the ``--warmup``
steps (give it 2: the first backward compiles again).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import torch

# The benchmark code is the repository's top-level ``benchmarks`` package, not part of the installed library.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import seg_research.data.datasets.builtin  # noqa: F401, E402  (registers builtin datasets)
from benchmarks.records import Timer, emit  # noqa: E402
from benchmarks.runtimes import RUNTIMES  # noqa: E402
from benchmarks.tasks import BENCHMARKS, GENERATED_TASKS  # noqa: E402
from seg_research.config import CfgNode, ConfigError, get_cfg  # noqa: E402
from seg_research.engine.amp import PRECISIONS  # noqa: E402
from seg_research.utils.env import keep_freed_memory  # noqa: E402

TASKS = tuple(BENCHMARKS)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", metavar="FILE",
                        help=f"path to the YAML config file (every task but {', '.join(GENERATED_TASKS)})")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--num-images", type=int, metavar="N",
                        help=f"images of the generated problem of {', '.join(GENERATED_TASKS)} "
                             "(default: " + ", ".join(f"{task} {n}" for task, n in GENERATED_TASKS.items()) + ")")
    parser.add_argument("--iters", type=int, default=5, help="timed repetitions (images for inference)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repetitions before them")
    parser.add_argument("--json", default="", metavar="OUT", help="also append the JSON lines to this file")
    parser.add_argument("--compare", choices=["torchvision", "compiled"],
                        help="also time torchvision's Mask R-CNN, or the model with MODEL.COMPILE.PARTS compiled")
    parser.add_argument("--inputs", choices=["synthetic", "dataset"], default="synthetic",
                        help="train/inference inputs: synthetic images or the configured datasets")
    parser.add_argument("--instances", type=int, default=5, help="instances per synthetic image")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", nargs="+", choices=list(PRECISIONS), default=["fp32"],
                        help="train/inference under torch.autocast to each of these, alternating in one run "
                             "(fp16 trains with a GradScaler); measured as asked, also where bf16 is emulated")
    parser.add_argument("--runtime", nargs="+", choices=RUNTIMES, default=["torch"],
                        help="inference: time the model (torch) and/or its exported files (torchscript, onnxruntime) "
                             "on the same images, alternating, in one run")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    args = parser.parse_args(argv)
    generated = args.task in GENERATED_TASKS
    if generated and (args.config_file or args.opts):
        parser.error(f"--task {args.task} generates its problem; it takes no --config-file or KEY VALUE overrides.")
    if not generated and not args.config_file:
        parser.error(f"--task {args.task} needs --config-file.")
    if args.num_images is not None and not generated:
        parser.error(f"--num-images sizes the generated problems of {', '.join(GENERATED_TASKS)}, not '{args.task}'.")
    if generated and args.num_images is None:
        args.num_images = GENERATED_TASKS[args.task]
    if generated and args.num_images < 1:
        parser.error("--num-images must be >= 1.")
    if args.iters < 1 or args.warmup < 0:
        parser.error("--iters must be >= 1 and --warmup >= 0.")
    if args.compare and args.task not in ("train", "inference"):
        parser.error(f"--compare {args.compare} times train and inference only, not '{args.task}'.")
    if args.precision != ["fp32"] and args.task not in ("train", "inference"):
        parser.error(f"--precision applies to train and inference, not '{args.task}'.")
    if args.runtime != ["torch"] and (args.task != "inference" or args.compare or args.precision != ["fp32"]):
        parser.error("--runtime times inference in fp32, without --compare: use --task inference alone with it.")
    if len(set(args.runtime)) != len(args.runtime):
        parser.error(f"--runtime lists a runtime twice: {args.runtime}.")
    if len(set(args.precision)) != len(args.precision):
        parser.error(f"--precision lists a precision twice: {args.precision}.")
    return args


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.task in GENERATED_TASKS:  # CPU work measured with glibc's defaults: freed memory leaves the peak RSS
        cfg, args.keep_freed_memory = None, False
        device = torch.device("cpu")
    else:
        cfg = setup_cfg(args)
        args.keep_freed_memory = cfg.MODEL.DEVICE == "cpu" and keep_freed_memory()  # as train_net.py does
        device = torch.device(cfg.MODEL.DEVICE)
    records = BENCHMARKS[args.task](args, cfg, Timer(device))
    for record in records:
        emit(record, args.json)
    return records


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        sys.exit(f"benchmark.py: {e}")
