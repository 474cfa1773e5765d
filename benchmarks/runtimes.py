"""``tools/benchmark.py --task inference --runtime torch torchscript onnxruntime``: the same images
through the PyTorch model and through its exported files, alternating image by image in one run.

Every runtime does the same work per image: the network input (resized, the model's channel order)
to outputs at the image's size, post-processing included (box rescaling, mask pasting, semantic
resize, panoptic fusion). ``torch`` is the model's own forward; ``torchscript`` and ``onnxruntime``
run the exported graph (:mod:`seg_research.export`) followed by the runtime's numpy
post-processing (:mod:`seg_research.export.runtime`). The ``raw_*`` fields time the network alone
(``model.inference(..., do_postprocess=False)``, the traced module, the onnxruntime session).
onnxruntime runs with ``--threads`` intra-op threads, as torch does. Each record carries
``ratio_to_torch`` (its median over torch's), and the exports are timed once (``export_s``).
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch

from seg_research.checkpoint import Checkpointer
from seg_research.engine.amp import outputs_to_float32
from seg_research.export import ONNXPredictor, TorchScriptPredictor, export_model
from seg_research.modeling import build_model

from .inputs import Sample, ours_input
from .records import Timer, base_record

__all__ = ["RUNTIMES", "bench_runtimes"]

#: ``--runtime`` choices, the reference first
RUNTIMES = ("torch", "torchscript", "onnxruntime")
_FORMATS = {"torchscript": "torchscript", "onnxruntime": "onnx"}


def _exported(cfg, model: torch.nn.Module, sample: torch.Tensor, runtime: str, folder: str, threads: int) -> Any:
    export_model(cfg, model, sample, folder, _FORMATS[runtime])
    return ONNXPredictor(folder, threads=threads) if runtime == "onnxruntime" else TorchScriptPredictor(folder)


def bench_runtimes(args, cfg, timer: Timer, samples: Sequence[Sample]) -> List[Dict[str, Any]]:
    """Time each of ``args.runtime`` on ``samples`` (warm-up ones first), alternating runtimes per image."""
    torch.manual_seed(args.seed)
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
    first = samples[0]["image"].to(torch.float32)
    calls: Dict[str, Dict[str, Callable[[Sample], Any]]] = {}
    export_seconds: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for runtime in args.runtime:
            if runtime == "torch":
                calls[runtime] = {
                    "full": lambda s: outputs_to_float32(model([ours_input(s, False)])),
                    "raw": lambda s: model.inference([ours_input(s, False)], do_postprocess=False)
                    if hasattr(model, "roi_heads") else model([ours_input(s, False)])}
                continue
            start = time.perf_counter()
            predictor = _exported(cfg, model, first, runtime, os.path.join(folder, runtime), max(1, args.threads))
            export_seconds[runtime] = time.perf_counter() - start

            def full(s: Sample, p=predictor) -> Any:
                image = s["image"].to(torch.float32).numpy()
                return p.run_network_input(np.ascontiguousarray(image), image.shape[1], image.shape[2])

            def raw(s: Sample, p=predictor) -> Any:
                return p.run(np.ascontiguousarray(s["image"].to(torch.float32).numpy()))

            calls[runtime] = {"full": full, "raw": raw}
        with torch.no_grad():
            for i, sample in enumerate(samples):
                for runtime in args.runtime:
                    for kind in ("full", "raw"):
                        timer(f"{runtime}/{kind}", lambda c=calls[runtime][kind], s=sample: c(s),
                              record=i >= args.warmup)
    records = []
    torch_median = timer.summary("torch/full")["median_s"] if "torch" in args.runtime else None
    for runtime in args.runtime:
        summary = timer.summary(f"{runtime}/full")
        record = {**base_record(args, cfg, "seg_research"), "runtime": runtime, **summary,
                  **timer.summary(f"{runtime}/raw", "raw_"), **timer.memory(runtime), "unit": "s/image",
                  "inputs": args.inputs, "image_size": list(samples[0]["image"].shape[1:])}
        if runtime in export_seconds:
            record["export_s"] = round(export_seconds[runtime], 2)
        if runtime == "onnxruntime":
            record["ort_threads"] = max(1, args.threads)
        if torch_median:
            record["ratio_to_torch"] = round(summary["median_s"] / torch_median, 3)
        records.append(record)
    return records


# ----------------------------------------------------------------------------- profile
def onnxruntime_op_profile(model_dir: str, inputs: Sequence[np.ndarray], threads: int = 1) -> Dict[str, float]:
    """Milliseconds per image by ONNX op type (onnxruntime's own profiler) over ``inputs``
    (network inputs), largest first."""
    import json

    from seg_research.export.runtime import ONNX_FILE, make_session

    with tempfile.TemporaryDirectory() as folder:
        session = make_session(os.path.join(model_dir, ONNX_FILE), threads,
                               profile_prefix=os.path.join(folder, "onnxruntime_profile"))
        name = session.get_inputs()[0].name
        for net_input in inputs:
            session.run(None, {name: net_input})
        with open(session.end_profiling()) as f:
            events = json.load(f)
    totals: Dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            totals[op] = totals.get(op, 0.0) + event["dur"] / 1e3 / len(inputs)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def torch_op_profile(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> Dict[str, float]:
    """Milliseconds per image by aten op (self CPU time, ``torch.profiler``) of the model's
    inference with post-processing over ``inputs``, largest first."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for image in inputs:
            model([{"image": image}])
    totals = {e.key: e.self_cpu_time_total / 1e3 / len(inputs) for e in prof.key_averages()}
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def main() -> None:
    """``python -m benchmarks.runtimes --config-file F --model DIR [--num-images N] KEY VALUE ...``:
    per-op time of the PyTorch model and of its ONNX export (``DIR`` from tools/export_model.py) on
    the first images of DATASETS.TEST[0], one thread each: where inference time goes in each runtime."""
    import argparse
    import json

    import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
    from seg_research.config import get_cfg
    from seg_research.data.build import build_detection_test_loader

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--model", required=True, help="export folder with model.onnx")
    parser.add_argument("--num-images", type=int, default=10)
    parser.add_argument("--top", type=int, default=8, help="ops listed per runtime")
    parser.add_argument("opts", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
    loader = iter(build_detection_test_loader(cfg, cfg.DATASETS.TEST[0]))
    images = [next(loader)[0]["image"].to(torch.float32) for _ in range(args.num_images)]
    model([{"image": images[0]}])  # warm-up
    for name, ops in (("torch", torch_op_profile(model, images)),
                      ("onnxruntime", onnxruntime_op_profile(args.model, [np.ascontiguousarray(i.numpy())
                                                                          for i in images]))):
        total = sum(ops.values())
        top = {op: round(ms, 2) for op, ms in list(ops.items())[: args.top]}
        print(json.dumps({"runtime": name, "ms_per_image": round(total, 2), "top_ops_ms": top}))


if __name__ == "__main__":
    main()
