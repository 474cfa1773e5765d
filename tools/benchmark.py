#!/usr/bin/env python
"""Time training steps, inference, the train loader or an evaluator of a config.

    python tools/benchmark.py --config-file F --task train|inference|data|eval [--iters N]
        [--warmup W] [--json OUT] [--compare torchvision] KEY VALUE ...

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
  image, ``evaluate``) on predictions of the configured model computed once before timing.

``--compare torchvision`` (train, inference; Mask R-CNN configs) also times
``torchvision.models.detection.MaskRCNN`` built with the config's architecture and sampling
settings (:func:`torchvision_maskrcnn_from_cfg`) and started from the same weights, on the
same inputs, alternating the two implementations step by step in this process.
"""
from __future__ import annotations

import argparse
import copy
import contextlib
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torchvision
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
from seg_research.checkpoint import Checkpointer
from seg_research.checkpoint.torchvision_maskrcnn import convert_torchvision_maskrcnn_state_dict
from seg_research.config import CfgNode, ConfigError, get_cfg
from seg_research.data.build import build_detection_test_loader, build_detection_train_loader
from seg_research.evaluation import build_evaluator
from seg_research.modeling import build_model
from seg_research.solver import build_optimizer
from seg_research.structures import BitMasks, Boxes, Instances
from seg_research.utils.env import keep_freed_memory

TASKS = ("train", "inference", "data", "eval")
#: One image's inputs, converted for each implementation: see :func:`synthetic_samples`.
Sample = Dict[str, Any]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="path to the YAML config file")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--iters", type=int, default=5, help="timed repetitions (images for inference)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repetitions before them")
    parser.add_argument("--json", default="", metavar="OUT", help="also append the JSON lines to this file")
    parser.add_argument("--compare", choices=["torchvision"], help="also time torchvision's Mask R-CNN")
    parser.add_argument("--inputs", choices=["synthetic", "dataset"], default="synthetic",
                        help="train/inference inputs: synthetic images or the configured datasets")
    parser.add_argument("--instances", type=int, default=5, help="instances per synthetic image")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error("--iters must be >= 1 and --warmup >= 0.")
    if args.compare and args.task not in ("train", "inference"):
        parser.error(f"--compare torchvision times train and inference only, not '{args.task}'.")
    return args


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    return cfg


# ----------------------------------------------------------------------------- environment
def _reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")


def _peak_rss_mb() -> float:
    """Peak resident memory (MiB) since the last :func:`_reset_peak_rss` (of the process elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()


class Timer:
    """Times calls of each implementation and tracks its peak RSS / CUDA memory."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: Dict[str, List[float]] = {}
        self.peak_rss_mb: Dict[str, float] = {}
        self.peak_cuda_mb: Dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, key: str, fn: Callable[[], Any], record: bool) -> Any:
        """Run ``fn``; with ``record``, add its wall time (``time.perf_counter``) under ``key``."""
        _reset_peak_rss()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._sync()
        start = time.perf_counter()
        out = fn()
        self._sync()
        elapsed = time.perf_counter() - start
        if record:
            self.seconds.setdefault(key, []).append(elapsed)
        impl = key.split("/")[0]
        self.peak_rss_mb[impl] = max(self.peak_rss_mb.get(impl, 0.0), _peak_rss_mb())
        if self.device.type == "cuda":
            cuda_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.peak_cuda_mb[impl] = max(self.peak_cuda_mb.get(impl, 0.0), cuda_mb)
        return out

    def summary(self, key: str, prefix: str = "") -> Dict[str, Any]:
        values = self.seconds[key]
        return {f"{prefix}median_s": round(statistics.median(values), 6), f"{prefix}min_s": round(min(values), 6),
                f"{prefix}max_s": round(max(values), 6)}

    def memory(self, impl: str) -> Dict[str, Any]:
        out = {"peak_rss_mb": round(self.peak_rss_mb.get(impl, _peak_rss_mb()), 1)}
        if impl in self.peak_cuda_mb:
            out["peak_cuda_mb"] = round(self.peak_cuda_mb[impl], 1)
        return out


def base_record(args: argparse.Namespace, cfg: CfgNode, impl: str) -> Dict[str, Any]:
    return {
        "impl": impl, "task": args.task, "config": args.config_file, "opts": list(args.opts or []),
        "n": args.iters, "warmup": args.warmup, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(), "device": cfg.MODEL.DEVICE,
        "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "keep_freed_memory": args.keep_freed_memory,
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def emit(record: Dict[str, Any], json_out: str) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if json_out:
        os.makedirs(os.path.dirname(os.path.abspath(json_out)), exist_ok=True)
        with open(json_out, "a") as f:
            f.write(line + "\n")


# ----------------------------------------------------------------------------- inputs
def synthetic_image_size(cfg: CfgNode, train: bool) -> int:
    """Side of the square synthetic images: the configured shortest side, capped by the longest."""
    if train:
        return int(min(max(cfg.INPUT.MIN_SIZE_TRAIN), cfg.INPUT.MAX_SIZE_TRAIN))
    return int(min(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST))


def synthetic_samples(num_images: int, size: int, num_instances: int, num_classes: int, num_stuff: int,
                      channels: int, seed: int) -> List[Sample]:
    """Deterministic random inputs.

    Returns:
        per image ``{"image": uint8 (channels, size, size), "boxes": float32 (n, 4) XYXY absolute
        pixels, "classes": int64 (n,) in 0..num_classes-1, "masks": bool (n, size, size),
        "sem_seg": int64 (size, size)}``: each instance is the ellipse inscribed in its box, box
        sides uniform in [size/8, size/2]; ``sem_seg`` is 0 on instances ("things", the
        ``_separated`` convention) and a random class of 1..num_stuff-1 per 32×32 block elsewhere.
    """
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    samples = []
    for _ in range(num_images):
        image = torch.randint(0, 256, (channels, size, size), generator=g, dtype=torch.uint8)
        sides = (torch.rand(num_instances, 2, generator=g) * 3 / 8 + 1 / 8) * size
        origins = torch.rand(num_instances, 2, generator=g) * (size - sides)
        boxes = torch.cat([origins, origins + sides], dim=1).floor()
        centres, radii = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2
        masks = ((xs - centres[:, 0, None, None]) / radii[:, 0, None, None]) ** 2 + (
            (ys - centres[:, 1, None, None]) / radii[:, 1, None, None]) ** 2 <= 1
        classes = torch.randint(0, num_classes, (num_instances,), generator=g)
        blocks = torch.randint(1, max(num_stuff, 2), ((size + 31) // 32,) * 2, generator=g)
        sem_seg = blocks.repeat_interleave(32, 0).repeat_interleave(32, 1)[:size, :size] % max(num_stuff, 1)
        sem_seg[masks.any(dim=0)] = 0
        samples.append({"image": image, "boxes": boxes, "classes": classes, "masks": masks, "sem_seg": sem_seg})
    return samples


def samples_from_loader(cfg: CfgNode, num_batches: int) -> List[List[Sample]]:
    """``num_batches`` batches of the configured train loader, as :func:`synthetic_samples` dicts
    (without the keys a record lacks)."""
    loader = iter(build_detection_train_loader(cfg))
    batches = []
    for _ in range(num_batches):
        batch = []
        for record in next(loader):
            sample = {"image": record["image"]}
            if "sem_seg" in record:
                sample["sem_seg"] = record["sem_seg"]
            if "instances" in record:
                instances, (height, width) = record["instances"], record["image"].shape[-2:]
                sample.update(boxes=instances.gt_boxes.tensor, classes=instances.gt_classes)
                if instances.has("gt_masks"):
                    masks = instances.gt_masks
                    if not isinstance(masks, BitMasks):
                        masks = BitMasks.from_polygon_masks(masks, height, width)
                    sample["masks"] = masks.tensor
            batch.append(sample)
        batches.append(batch)
    return batches


def ours_input(sample: Sample, train: bool) -> Dict[str, Any]:
    """Our model's input dict: ``image`` (INPUT.FORMAT order) and in training ``instances`` (with
    BitMasks) and ``sem_seg`` when the sample has them."""
    out = {"image": sample["image"]}
    if train and "boxes" in sample:
        instances = Instances(tuple(sample["image"].shape[-2:]), gt_boxes=Boxes(sample["boxes"]),
                              gt_classes=sample["classes"])
        if "masks" in sample:
            instances.gt_masks = BitMasks(sample["masks"])
        out["instances"] = instances
    if train and "sem_seg" in sample:
        out["sem_seg"] = sample["sem_seg"]
    return out


def torchvision_input(sample: Sample, input_format: str, train: bool) -> Tuple[torch.Tensor, Dict[str, Any]]:
    """torchvision's (uint8 RGB image, target with 1-based ``labels`` and uint8 ``masks``)."""
    image = sample["image"].flip(0) if input_format == "BGR" else sample["image"]
    target = {}
    if train:
        target = {"boxes": sample["boxes"], "labels": sample["classes"] + 1, "masks": sample["masks"].to(torch.uint8)}
    return image, target


# ----------------------------------------------------------------------------- torchvision model
def _check_torchvision_comparable(cfg: CfgNode) -> None:
    """Raise ConfigError unless torchvision's Mask R-CNN classes can express the config."""
    m = cfg.MODEL
    problems = []
    if m.META_ARCHITECTURE != "GeneralizedRCNN" or not m.MASK_ON:
        problems.append("MODEL.META_ARCHITECTURE GeneralizedRCNN with MODEL.MASK_ON True")
    if m.BACKBONE.NAME != "build_resnet_fpn_backbone" or m.RESNETS.DEPTH not in (18, 34, 50, 101, 152):
        problems.append("a ResNet-FPN backbone (MODEL.BACKBONE.NAME build_resnet_fpn_backbone, DEPTH 18..152)")
    if m.RESNETS.NORM not in ("BN", "FrozenBN") or m.FPN.NORM or m.RESNETS.NUM_GROUPS != 1:
        problems.append("MODEL.RESNETS.NORM BN or FrozenBN, MODEL.FPN.NORM '', MODEL.RESNETS.NUM_GROUPS 1")
    if list(m.FPN.IN_FEATURES) != ["res2", "res3", "res4", "res5"] or list(m.RPN.IN_FEATURES) != [
            "p2", "p3", "p4", "p5", "p6"] or list(m.ROI_HEADS.IN_FEATURES) != ["p2", "p3", "p4", "p5"]:
        problems.append("FPN on res2..res5, RPN on p2..p6 and ROI heads on p2..p5")
    if m.ROI_BOX_HEAD.NUM_CONV != 0 or m.ROI_BOX_HEAD.NUM_FC != 2 or m.ROI_MASK_HEAD.NORM:
        problems.append("MODEL.ROI_BOX_HEAD NUM_CONV 0 and NUM_FC 2, MODEL.ROI_MASK_HEAD.NORM ''")
    if len(m.ANCHOR_GENERATOR.SIZES) != 5 or any(len(s) != 1 for s in m.ANCHOR_GENERATOR.SIZES):
        problems.append("one MODEL.ANCHOR_GENERATOR.SIZES entry per level p2..p6")
    if m.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG or m.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK:
        problems.append("class-specific boxes and masks")
    if problems:
        raise ConfigError("--compare torchvision builds torchvision's MaskRCNN with this config's settings, which "
                          f"needs: {'; '.join(problems)}.")


def torchvision_maskrcnn_from_cfg(cfg: CfgNode, image_size: int) -> MaskRCNN:
    """torchvision's ``MaskRCNN`` with the architecture and sampling settings of ``cfg``.

    Same ResNet depth and norm (``BatchNorm2d``/``FrozenBatchNorm2d``), frozen stages
    (``trainable_layers = 5 - FREEZE_AT``), FPN channels, anchors, RPN and ROI-head sampling
    (batch sizes, positive fractions, IoU thresholds, pre/post-NMS top-k, NMS thresholds), pooler
    resolutions and sampling ratios, head widths, box coder weights, test thresholds and
    normalization. Its transform resizes to ``image_size`` (both sides), i.e. not at all for the
    square inputs of this tool. Not expressible in torchvision and left as torchvision does
    it: its poolers use ``aligned=False`` (same cost), its RPN drops boxes smaller than 1e-3 px.
    """
    _check_torchvision_comparable(cfg)
    m = cfg.MODEL
    norm_layer = FrozenBatchNorm2d if m.RESNETS.NORM == "FrozenBN" else nn.BatchNorm2d
    body = getattr(resnet, f"resnet{m.RESNETS.DEPTH}")(weights=None, norm_layer=norm_layer)
    # detectron2's FREEZE_AT k freezes the stem and the first k - 1 stages; torchvision trains the last 5 - k
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][: max(0, 5 - m.BACKBONE.FREEZE_AT)]
    if m.BACKBONE.FREEZE_AT == 0:
        trainable.append("bn1")
    for name, param in body.named_parameters():
        param.requires_grad_(any(name.startswith(prefix) for prefix in trainable))
    stage2_channels = body.inplanes // 8
    channels = m.FPN.OUT_CHANNELS
    backbone = BackboneWithFPN(body, {f"layer{k}": str(k - 1) for k in range(1, 5)},
                               [stage2_channels * 2 ** k for k in range(4)], channels, extra_blocks=LastLevelMaxPool())
    box, mask, heads, rpn = m.ROI_BOX_HEAD, m.ROI_MASK_HEAD, m.ROI_HEADS, m.RPN
    num_classes = heads.NUM_CLASSES + 1
    bgr = cfg.INPUT.FORMAT == "BGR"  # torchvision gets RGB images
    levels = ["0", "1", "2", "3"]
    return MaskRCNN(
        backbone,
        min_size=image_size, max_size=image_size,
        image_mean=[v / 255 for v in (m.PIXEL_MEAN[::-1] if bgr else m.PIXEL_MEAN)],
        image_std=[v / 255 for v in (m.PIXEL_STD[::-1] if bgr else m.PIXEL_STD)],
        rpn_anchor_generator=AnchorGenerator(tuple(tuple(s) for s in m.ANCHOR_GENERATOR.SIZES),
                                             tuple(tuple(m.ANCHOR_GENERATOR.ASPECT_RATIOS[0]) for _ in range(5))),
        rpn_pre_nms_top_n_train=rpn.PRE_NMS_TOPK_TRAIN, rpn_pre_nms_top_n_test=rpn.PRE_NMS_TOPK_TEST,
        rpn_post_nms_top_n_train=rpn.POST_NMS_TOPK_TRAIN, rpn_post_nms_top_n_test=rpn.POST_NMS_TOPK_TEST,
        rpn_nms_thresh=rpn.NMS_THRESH, rpn_fg_iou_thresh=rpn.IOU_THRESHOLDS[-1],
        rpn_bg_iou_thresh=rpn.IOU_THRESHOLDS[0], rpn_batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
        rpn_positive_fraction=rpn.POSITIVE_FRACTION,
        box_roi_pool=MultiScaleRoIAlign(levels, box.POOLER_RESOLUTION, box.POOLER_SAMPLING_RATIO),
        box_head=TwoMLPHead(channels * box.POOLER_RESOLUTION ** 2, box.FC_DIM),
        box_predictor=FastRCNNPredictor(box.FC_DIM, num_classes),
        box_score_thresh=heads.SCORE_THRESH_TEST, box_nms_thresh=heads.NMS_THRESH_TEST,
        box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
        box_fg_iou_thresh=heads.IOU_THRESHOLDS[-1], box_bg_iou_thresh=heads.IOU_THRESHOLDS[0],
        box_batch_size_per_image=heads.BATCH_SIZE_PER_IMAGE, box_positive_fraction=heads.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(box.BBOX_REG_WEIGHTS),
        mask_roi_pool=MultiScaleRoIAlign(levels, mask.POOLER_RESOLUTION, mask.POOLER_SAMPLING_RATIO),
        mask_head=MaskRCNNHeads(channels, [mask.CONV_DIM] * mask.NUM_CONV, 1),
        mask_predictor=MaskRCNNPredictor(mask.CONV_DIM if mask.NUM_CONV else channels, mask.CONV_DIM, num_classes),
    )


def load_torchvision_weights(model: nn.Module, tv_model: MaskRCNN) -> None:
    """Start our model from torchvision's (random) weights, so both detect the same boxes."""
    converted = convert_torchvision_maskrcnn_state_dict(tv_model.state_dict())
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ConfigError(f"The config's model does not have torchvision's layout: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}.")


class _MaskRoiCounter:
    """Counts the ROIs entering a mask head (forward hook), per timed call."""

    def __init__(self, mask_head: nn.Module) -> None:
        self.counts: List[int] = []
        mask_head.register_forward_hook(lambda module, inputs, output: self.counts.append(len(inputs[0])))


# ----------------------------------------------------------------------------- tasks
def _build_models(args, cfg, image_size: int, train: bool) -> Dict[str, nn.Module]:
    torch.manual_seed(args.seed)
    if args.compare == "torchvision" and cfg.MODEL.WEIGHTS:
        raise ConfigError("--compare torchvision starts both models from torchvision's random weights; "
                          "leave MODEL.WEIGHTS empty.")
    models = {"seg_research": build_model(cfg)}
    if cfg.MODEL.WEIGHTS:
        Checkpointer(models["seg_research"]).load(cfg.MODEL.WEIGHTS)
    if args.compare == "torchvision":
        tv_model = torchvision_maskrcnn_from_cfg(cfg, image_size).to(cfg.MODEL.DEVICE)
        load_torchvision_weights(models["seg_research"], tv_model)
        models["torchvision"] = tv_model
    for model in models.values():
        model.train(train)
    return models


def _alternate(models: Dict[str, Any], count: int) -> Iterator[Tuple[int, str]]:
    """(repetition, implementation) pairs, alternating implementations within each repetition."""
    for i in range(count):
        for impl in models:
            yield i, impl


def bench_train(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    size = synthetic_image_size(cfg, train=True)
    total = args.warmup + args.iters
    if args.inputs == "dataset":
        batches = samples_from_loader(cfg, total)
    else:
        samples = synthetic_samples(total * cfg.SOLVER.IMS_PER_BATCH, size, args.instances,
                                    cfg.MODEL.ROI_HEADS.NUM_CLASSES, cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
                                    len(cfg.MODEL.PIXEL_MEAN), args.seed)
        batches = [samples[i::total] for i in range(total)]
    models = _build_models(args, cfg, size, train=True)
    device = torch.device(cfg.MODEL.DEVICE)
    optimizers = {impl: build_optimizer(cfg, model) for impl, model in models.items()}
    counters = {impl: _MaskRoiCounter(model.roi_heads.mask_head) for impl, model in models.items()
                if hasattr(getattr(model, "roi_heads", None), "mask_head")}

    def step(impl: str, batch: List[Sample]) -> Callable[[], None]:
        model, optimizer = models[impl], optimizers[impl]

        def run() -> None:
            if impl == "torchvision":
                pairs = [torchvision_input(s, cfg.INPUT.FORMAT, True) for s in batch]
                losses = model([(image.to(device) / 255) for image, _ in pairs],
                               [{k: v.to(device) for k, v in t.items()} for _, t in pairs])
            else:
                losses = model([ours_input(s, True) for s in batch])
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
        return run

    # Warm-up steps train each model on its own (random-init proposals are poor; after an update the
    # ROI heads get their usual share of foreground ROIs). Then, when comparing, both take torchvision's
    # weights, and every timed step starts from them (reloaded untimed): the two implementations see the
    # same proposals and, with the same seed, sample the same ROIs at every step, i.e. do the same work.
    snapshot: Dict[str, Dict[str, torch.Tensor]] = {}
    for i, impl in _alternate(models, total):
        if i == args.warmup and not snapshot:
            if "torchvision" in models:
                load_torchvision_weights(models["seg_research"], models["torchvision"])
            snapshot = {name: copy.deepcopy(model.state_dict()) for name, model in models.items()}
        if snapshot:
            models[impl].load_state_dict(snapshot[impl])
        torch.manual_seed(args.seed + i)  # the same ROI sampling draws for both implementations
        timer(impl, step(impl, batches[i]), record=i >= args.warmup)
    records = []
    for impl in models:
        record = {**base_record(args, cfg, impl), **timer.summary(impl), **timer.memory(impl),
                  "unit": "s/iter", "batch_size": cfg.SOLVER.IMS_PER_BATCH, "inputs": args.inputs}
        if args.inputs == "synthetic":
            record.update(image_size=[size, size], instances_per_image=args.instances)
        if impl in counters:
            record["mask_rois"] = statistics.mean(counters[impl].counts[-args.iters:])
        records.append(record)
    return records


def bench_inference(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    size = synthetic_image_size(cfg, train=False)
    total = args.warmup + args.iters
    if args.inputs == "dataset":
        loader = iter(build_detection_test_loader(cfg, cfg.DATASETS.TEST[0]))
        samples = [{"image": next(loader)[0]["image"]} for _ in range(total)]
    else:
        samples = synthetic_samples(total, size, 0, 1, 1, len(cfg.MODEL.PIXEL_MEAN), args.seed)
    models = _build_models(args, cfg, size, train=False)
    device = torch.device(cfg.MODEL.DEVICE)

    def call(impl: str, sample: Sample, postprocess: bool) -> Callable[[], Any]:
        model = models[impl]
        if impl == "torchvision":
            image = torchvision_input(sample, cfg.INPUT.FORMAT, False)[0].to(device)
            if postprocess:
                return lambda: model([image / 255])

            def raw() -> Any:
                images, _ = model.transform([image / 255])
                features = model.backbone(images.tensors)
                proposals, _ = model.rpn(images, features)
                return model.roi_heads(features, proposals, images.image_sizes)
            return raw
        inputs = [ours_input(sample, False)]
        return lambda: model(inputs) if postprocess else model.inference(inputs, do_postprocess=False)

    with torch.no_grad():
        for i, impl in _alternate(models, total):
            for postprocess in (True, False):
                key = f"{impl}/{'full' if postprocess else 'raw'}"
                timer(key, call(impl, samples[i], postprocess), record=i >= args.warmup)
    return [{**base_record(args, cfg, impl), **timer.summary(f"{impl}/full"), **timer.summary(f"{impl}/raw", "raw_"),
             **timer.memory(impl), "unit": "s/image", "inputs": args.inputs,
             **({"image_size": [size, size]} if args.inputs == "synthetic" else {})}
            for impl in models]


def bench_data(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    loader = iter(build_detection_train_loader(cfg))
    for i in range(args.warmup + args.iters):
        timer("seg_research", lambda: next(loader), record=i >= args.warmup)
    record = {**base_record(args, cfg, "seg_research"), **timer.summary("seg_research"),
              **timer.memory("seg_research"), "unit": "s/batch", "batch_size": cfg.SOLVER.IMS_PER_BATCH,
              "num_workers": cfg.DATALOADER.NUM_WORKERS}
    record["images_per_s"] = round(cfg.SOLVER.IMS_PER_BATCH / record["median_s"], 3)
    return [record]


def bench_eval(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    if not cfg.DATASETS.TEST:
        raise ConfigError("--task eval times the evaluator of DATASETS.TEST[0]; DATASETS.TEST is empty.")
    dataset = cfg.DATASETS.TEST[0]
    model = _build_models(args, cfg, synthetic_image_size(cfg, train=False), train=False)["seg_research"]
    with torch.no_grad():
        stored = [(inputs, model(inputs)) for inputs in build_detection_test_loader(cfg, dataset)]
    with tempfile.TemporaryDirectory(prefix="benchmark_eval_") as output_dir:
        evaluator = build_evaluator(cfg, dataset, output_dir)

        def evaluate() -> Any:
            evaluator.reset()
            for inputs, outputs in stored:
                evaluator.process(inputs, outputs)
            return evaluator.evaluate()

        for i in range(args.warmup + args.iters):
            timer("seg_research", evaluate, record=i >= args.warmup)
    return [{**base_record(args, cfg, "seg_research"), **timer.summary("seg_research"),
             **timer.memory("seg_research"), "unit": "s/evaluation", "dataset": dataset,
             "evaluator": type(evaluator).__name__, "num_images": len(stored)}]


BENCHMARKS = {"train": bench_train, "inference": bench_inference, "data": bench_data, "eval": bench_eval}


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    cfg = setup_cfg(args)
    args.keep_freed_memory = cfg.MODEL.DEVICE == "cpu" and keep_freed_memory()  # as train_net.py does
    records = BENCHMARKS[args.task](args, cfg, Timer(torch.device(cfg.MODEL.DEVICE)))
    for record in records:
        emit(record, args.json)
    return records


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        sys.exit(f"benchmark.py: {e}")
