"""The benchmark tasks (``train``, ``inference``, ``data``, ``eval`` on a config; ``coco-eval``
(:mod:`.coco_eval`) and ``pq`` (:mod:`.pq_eval`) on generated problems): each times its work with a
:class:`~.records.Timer` and returns one JSON-ready record per implementation."""
from __future__ import annotations

import copy
import statistics
import tempfile
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Sequence, Tuple

import torch
from torch import nn

from seg_research.checkpoint import Checkpointer
from seg_research.config import ConfigError
from seg_research.data.build import build_detection_test_loader, build_detection_train_loader
from seg_research.engine.amp import PRECISIONS, autocast, cpu_supports_bf16, outputs_to_float32
from seg_research.evaluation import COCOEvaluator, COCOPanopticEvaluator, DatasetEvaluator, build_evaluator
from seg_research.evaluation.fast_eval_api import REFERENCE_BACKEND, available_backends
from seg_research.evaluation.fast_pq_api import REFERENCE_PQ_BACKEND, available_pq_backends
from seg_research.modeling import build_model, compile_model
from seg_research.solver import build_optimizer

from .coco_eval import bench_coco_eval
from .inputs import Sample, ours_input, samples_from_loader, synthetic_image_size, synthetic_samples, torchvision_input
from .mask2former import bench_mask2former
from .pq_eval import bench_pq
from .records import Timer, base_record, metrics_agreement
from .runtimes import bench_runtimes
from .torchvision_twin import load_torchvision_weights, torchvision_maskrcnn_from_cfg


class _MaskRoiCounter:
    """Counts the ROIs entering a mask head (forward hook), per timed call."""

    def __init__(self, mask_head: nn.Module) -> None:
        self.counts: List[int] = []
        mask_head.register_forward_hook(lambda module, inputs, output: self.counts.append(len(inputs[0])))


# ----------------------------------------------------------------------------- tasks
#: implementation name of the model compiled by ``--compare compiled``
COMPILED = "seg_research+compile"


def _build_models(args, cfg, image_size: int, train: bool) -> Dict[str, nn.Module]:
    torch.manual_seed(args.seed)
    if args.compare == "torchvision" and cfg.MODEL.WEIGHTS:
        raise ConfigError("--compare torchvision starts both models from torchvision's random weights; "
                          "leave MODEL.WEIGHTS empty (add MODEL.WEIGHTS \"\" to the command).")
    if args.compare == "compiled":  # the eager model is the reference, whatever MODEL.COMPILE.ENABLED says
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.COMPILE.ENABLED = False
    models = {"seg_research": build_model(cfg)}
    if cfg.MODEL.WEIGHTS:
        Checkpointer(models["seg_research"]).load(cfg.MODEL.WEIGHTS)
    if args.compare == "compiled":  # the same weights, MODEL.COMPILE.PARTS compiled (during the warm-up steps)
        models[COMPILED] = compile_model(copy.deepcopy(models["seg_research"]), cfg.MODEL.COMPILE.PARTS,
                                         cfg.MODEL.COMPILE.MODE)
    if args.compare == "torchvision":
        tv_model = torchvision_maskrcnn_from_cfg(cfg, image_size).to(cfg.MODEL.DEVICE)
        load_torchvision_weights(models["seg_research"], tv_model)
        models["torchvision"] = tv_model
    for model in models.values():
        model.train(train)
    return models


def _alternate(models: Dict[str, Any], count: int, precisions: Sequence[str] = ("fp32",)
               ) -> Iterator[Tuple[int, str, str]]:
    """(repetition, implementation, precision) triples, alternating implementations and
    precisions within each repetition."""
    for i in range(count):
        for impl in models:
            for precision in precisions:
                yield i, impl, precision


def _autocast(device: torch.device, precision: str):
    """Autocast to ``precision`` ("fp32": none); measured as asked, also on a CPU that emulates bf16."""
    return autocast(device, None if precision == "fp32" else PRECISIONS[precision])


def _label(impl: str, precision: str, precisions: Sequence[str]) -> str:
    """Timer key of an implementation in a precision (the bare name when one precision is timed)."""
    return impl if len(precisions) == 1 else f"{impl}@{precision}"


def _precision_fields(device: torch.device, precision: str) -> Dict[str, Any]:
    fields: Dict[str, Any] = {"precision": precision}
    if device.type == "cpu":
        fields["cpu_native_bf16"] = cpu_supports_bf16()
    return fields


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
    precisions = list(args.precision)
    optimizers = {impl: build_optimizer(cfg, model) for impl, model in models.items()}
    # fp16 as AMPTrainer trains it: with a loss scaler (one per implementation)
    scalers = {impl: torch.amp.GradScaler(device.type) for impl in models} if "fp16" in precisions else {}
    counters = {impl: _MaskRoiCounter(model.roi_heads.mask_head) for impl, model in models.items()
                if hasattr(getattr(model, "roi_heads", None), "mask_head")}

    def step(impl: str, precision: str, batch: List[Sample]) -> Callable[[], None]:
        model, optimizer = models[impl], optimizers[impl]

        def run() -> None:
            with _autocast(device, precision):
                if impl == "torchvision":
                    pairs = [torchvision_input(s, cfg.INPUT.FORMAT, True) for s in batch]
                    losses = model([(image.to(device) / 255) for image, _ in pairs],
                                   [{k: v.to(device) for k, v in t.items()} for _, t in pairs])
                else:
                    losses = model([ours_input(s, True) for s in batch])
            optimizer.zero_grad(set_to_none=True)
            loss = sum(v.float() for v in losses.values())
            if precision == "fp16":
                scalers[impl].scale(loss).backward()
                scalers[impl].step(optimizer)
                scalers[impl].update()
            else:
                loss.backward()
                optimizer.step()
        return run

    # Warm-up steps train each model on its own (random-init proposals are poor; after an update the
    # ROI heads get their usual share of foreground ROIs). Then, when comparing, both take torchvision's
    # weights, and every timed step starts from them (reloaded untimed): the two implementations see the
    # same proposals and, with the same seed, sample the same ROIs at every step, i.e. do the same work.
    snapshot: Dict[str, Dict[str, torch.Tensor]] = {}
    rois: Dict[str, List[int]] = {}
    for i, impl, precision in _alternate(models, total, precisions):
        if i == args.warmup and not snapshot:
            if "torchvision" in models:
                load_torchvision_weights(models["seg_research"], models["torchvision"])
            snapshot = {name: copy.deepcopy(model.state_dict()) for name, model in models.items()}
        if snapshot:
            models[impl].load_state_dict(snapshot[impl])
        torch.manual_seed(args.seed + i)  # the same ROI sampling draws for every implementation and precision
        label = _label(impl, precision, precisions)
        timer(label, step(impl, precision, batches[i]), record=i >= args.warmup)
        if impl in counters and i >= args.warmup:
            rois.setdefault(label, []).append(counters[impl].counts[-1])
    records = []
    for impl in models:
        for precision in precisions:
            label = _label(impl, precision, precisions)
            record = {**base_record(args, cfg, impl), **_precision_fields(device, precision), **timer.summary(label),
                      **timer.memory(label), "unit": "s/iter", "batch_size": cfg.SOLVER.IMS_PER_BATCH,
                      "inputs": args.inputs}
            if args.inputs == "synthetic":
                record.update(image_size=[size, size], instances_per_image=args.instances)
            if label in rois:
                record["mask_rois"] = statistics.mean(rois[label])
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
    if getattr(args, "runtime", ["torch"]) != ["torch"]:
        return bench_runtimes(args, cfg, timer, samples)
    models = _build_models(args, cfg, size, train=False)
    device = torch.device(cfg.MODEL.DEVICE)
    precisions = list(args.precision)

    def call(impl: str, sample: Sample, postprocess: bool) -> Callable[[], Any]:
        model = models[impl]
        if impl == "torchvision":
            image = torchvision_input(sample, cfg.INPUT.FORMAT, False)[0].to(device)
            if postprocess:
                return lambda: outputs_to_float32(model([image / 255]))

            def raw() -> Any:
                images, _ = model.transform([image / 255])
                features = model.backbone(images.tensors)
                proposals, _ = model.rpn(images, features)
                return model.roi_heads(features, proposals, images.image_sizes)
            return raw
        inputs = [ours_input(sample, False)]
        return lambda: outputs_to_float32(model(inputs)) if postprocess else model.inference(
            inputs, do_postprocess=False)

    with torch.no_grad():
        for i, impl, precision in _alternate(models, total, precisions):
            label = _label(impl, precision, precisions)
            with _autocast(device, precision):
                for postprocess in (True, False):
                    key = f"{label}/{'full' if postprocess else 'raw'}"
                    timer(key, call(impl, samples[i], postprocess), record=i >= args.warmup)
    records = []
    for impl in models:
        for precision in precisions:
            label = _label(impl, precision, precisions)
            records.append({**base_record(args, cfg, impl), **_precision_fields(device, precision),
                            **timer.summary(f"{label}/full"), **timer.summary(f"{label}/raw", "raw_"),
                            **timer.memory(label), "unit": "s/image", "inputs": args.inputs,
                            **({"image_size": [size, size]} if args.inputs == "synthetic" else {})})
    return records


def bench_data(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    loader = iter(build_detection_train_loader(cfg))
    for i in range(args.warmup + args.iters):
        timer("seg_research", lambda: next(loader), record=i >= args.warmup)
    record = {**base_record(args, cfg, "seg_research"), **timer.summary("seg_research"),
              **timer.memory("seg_research"), "unit": "s/batch", "batch_size": cfg.SOLVER.IMS_PER_BATCH,
              "num_workers": cfg.DATALOADER.NUM_WORKERS}
    record["images_per_s"] = round(cfg.SOLVER.IMS_PER_BATCH / record["median_s"], 3)
    return [record]


class _Backends(NamedTuple):
    """An evaluator class's scoring backends: the installed ones, the reference, the record field naming one."""

    available: Callable[[], List[str]]
    reference: str
    field: str


_EVALUATOR_BACKENDS = {
    COCOEvaluator: _Backends(available_backends, REFERENCE_BACKEND, "coco_backend"),
    COCOPanopticEvaluator: _Backends(available_pq_backends, REFERENCE_PQ_BACKEND, "pq_backend"),
}


def _evaluation(evaluator: DatasetEvaluator, stored: Sequence[Tuple[Any, Any]]) -> Callable[[], Any]:
    """One timed repetition: ``reset``, ``process`` of every stored (inputs, outputs) pair, ``evaluate``."""
    def run() -> Any:
        evaluator.reset()
        for inputs, outputs in stored:
            evaluator.process(inputs, outputs)
        return evaluator.evaluate()
    return run


def bench_eval(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    """Seconds per evaluation of DATASETS.TEST[0]'s evaluator; a COCOEvaluator once per installed COCO
    backend (hotcoco, pycocotools), alternating, each record with ``metrics_equal`` (every metric within
    :data:`~.records.METRICS_ATOL` of pycocotools') and ``max_metric_diff``; a COCOPanopticEvaluator
    likewise per installed PQ backend (hotcoco, seg_research = ours, the reference)."""
    if not cfg.DATASETS.TEST:
        raise ConfigError("--task eval times the evaluator of DATASETS.TEST[0]; DATASETS.TEST is empty.")
    dataset = cfg.DATASETS.TEST[0]
    model = _build_models(args, cfg, synthetic_image_size(cfg, train=False), train=False)["seg_research"]
    with torch.no_grad():
        stored = [(inputs, model(inputs)) for inputs in build_detection_test_loader(cfg, dataset)]
    with tempfile.TemporaryDirectory(prefix="benchmark_eval_") as output_dir:
        evaluator = build_evaluator(cfg, dataset, output_dir)
        backends = next((b for cls, b in _EVALUATOR_BACKENDS.items() if isinstance(evaluator, cls)), None)
        if backends is None:
            evaluators = {"seg_research": evaluator}
        else:
            evaluators = {name: evaluator.with_backend(name) for name in backends.available()}
        results: Dict[str, Any] = {}
        for i in range(args.warmup + args.iters):
            for label, ev in evaluators.items():
                results[label] = timer(label, _evaluation(ev, stored), record=i >= args.warmup)
    records = []
    for label, ev in evaluators.items():
        record = {**base_record(args, cfg, "seg_research"), **timer.summary(label), **timer.memory(label),
                  "unit": "s/evaluation", "dataset": dataset, "evaluator": type(ev).__name__,
                  "num_images": len(stored)}
        if backends is not None:
            record.update({backends.field: label},
                          **metrics_agreement(results[label], results.get(backends.reference)))
        records.append(record)
    return records


BENCHMARKS = {"train": bench_train, "inference": bench_inference, "data": bench_data, "eval": bench_eval,
              "coco-eval": bench_coco_eval, "pq": bench_pq, "mask2former": bench_mask2former}
#: The tasks that generate their problem (no config; ``cfg`` is None) and their default ``--num-images``.
GENERATED_TASKS = {"coco-eval": 5000, "pq": 200, "mask2former": 2}  # mask2former: images per training batch
