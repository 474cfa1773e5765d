#!/usr/bin/env python
"""Export a trained model to ONNX or TorchScript (detectron2's tools/deploy/export_model.py flags).

    python tools/export_model.py --config-file configs/Shapes/mask_rcnn_R_18_FPN_demo.yaml \\
        --format onnx --output exported/ [--sample-image img.png] [--run-eval] \\
        MODEL.WEIGHTS output/mask_rcnn_demo/model_final.pth

Writes ``<output>/model.onnx`` (or ``model.ts``) and ``<output>/runtime.json`` (input channel
order, test-time resize, class names, thresholds: what a runtime needs). One exported file serves
any image size and any number of detections. ``--export-method`` is detectron2's: ``tracing``
(TorchScript by ``torch.jit.trace``), ``scripting`` (TorchScript: the data-dependent steps compiled by
``torch.jit.script``, the dense networks traced) or ``onnx`` (the same as ``--format onnx``). The
sample image (default: the first image of ``DATASETS.TEST[0]``) only drives the trace: any other
size runs the same.

A project's config needs its keys and modules: ``--add-config MODULE.FUNCTION`` (repeatable) imports
MODULE (registering its modules, and its exportable inference where it has its own
meta-architecture) and calls FUNCTION(cfg) before the config is merged, as the project's
train_net.py does::

    python tools/export_model.py --add-config seg_research.projects.deeplab.add_deeplab_config \
        --add-config seg_research.projects.mask2former.add_maskformer2_config \
        --config-file configs/Shapes/mask2former_R18_bs4_demo.yaml --output exported/ MODEL.WEIGHTS ...
    PYTHONPATH=projects/UNet python tools/export_model.py --add-config unet.add_unet_config \
        --config-file projects/UNet/configs/PH2/unet.yaml --output exported/ MODEL.WEIGHTS ...

``--run-eval`` then evaluates the exported file (onnxruntime, or the loaded TorchScript module)
on ``DATASETS.TEST[0]`` with the dataset's evaluator, writing ``<output>/inference/<dataset>/``.
Run the exported model on images without torch: ``tools/deploy/onnx_predict.py``.
"""
import argparse
import importlib
import logging
import os
import sys
from typing import Callable, Dict, List, Optional, Tuple

import torch

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
from seg_research.config import CfgNode, get_cfg
from seg_research.data import DataError, DatasetCatalog
from seg_research.data.detection_utils import read_image
from seg_research.engine import DefaultPredictor, DefaultTrainer
from seg_research.export import (
    EXPORT_FORMATS,
    ExportedModel,
    ONNXPredictor,
    TorchScriptPredictor,
    export_model,
    runtime_metadata,
)
from seg_research.export.runtime import network_input
from seg_research.utils.logger import setup_logger

logger = logging.getLogger("seg_research.export_model")

EXPORT_METHODS = ("tracing", "scripting", "onnx")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="config of the trained model")
    parser.add_argument("--add-config", action="append", default=[], metavar="MODULE.FUNCTION",
                        help="a project's config keys: import MODULE and call FUNCTION(cfg) before merging the "
                             "config file (repeatable, in order), e.g. unet.add_unet_config with projects/UNet "
                             "on PYTHONPATH")
    parser.add_argument("--format", choices=sorted(EXPORT_FORMATS), default=None,
                        help="onnx (default with --export-method onnx) or torchscript (default with tracing)")
    parser.add_argument("--export-method", choices=EXPORT_METHODS, default=None,
                        help="tracing or scripting (TorchScript), or onnx; default: what --format implies, else onnx")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the model and runtime.json")
    parser.add_argument("--sample-image", default=None, metavar="FILE",
                        help="image to trace with (default: the first image of DATASETS.TEST[0])")
    parser.add_argument("--run-eval", action="store_true", help="evaluate the exported model on DATASETS.TEST[0]")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS model.pth")
    return parser.parse_args(argv)


def resolve_format(fmt: Optional[str], method: Optional[str]) -> Tuple[str, str]:
    """(format, method) from ``--format`` and ``--export-method``; a SystemExit naming a conflict
    (tracing or scripting to ONNX, onnx to TorchScript)."""
    implied = {"tracing": "torchscript", "scripting": "torchscript", "onnx": "onnx", None: None}[method]
    if fmt is not None and implied is not None and fmt != implied:
        raise SystemExit(f"--format {fmt} conflicts with --export-method {method} (which exports {implied}); "
                         f"drop one of them.")
    fmt = fmt or implied or "onnx"
    return fmt, method or ("onnx" if fmt == "onnx" else "tracing")


def load_add_config(name: str) -> Callable[[CfgNode], None]:
    """The function ``MODULE.FUNCTION`` of ``--add-config``, its module imported; a SystemExit saying what to fix."""
    module_name, _, function = name.rpartition(".")
    if not module_name:
        raise SystemExit(f"--add-config {name}: give MODULE.FUNCTION, e.g. unet.add_unet_config.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SystemExit(f"--add-config {name}: cannot import {module_name} ({e}); put the project's folder on "
                         "PYTHONPATH (e.g. PYTHONPATH=projects/UNet).") from e
    if not callable(getattr(module, function, None)):
        raise SystemExit(f"--add-config {name}: {module_name} has no function {function}.")
    return getattr(module, function)


def sample_input(cfg: CfgNode, path: Optional[str]) -> torch.Tensor:
    """The float32 (3, h, w) network input of ``path`` (or of the first image of DATASETS.TEST[0]),
    preprocessed as the runtime does."""
    if path is None:
        if not cfg.DATASETS.TEST:
            raise SystemExit("DATASETS.TEST is empty: pass --sample-image FILE to trace with.")
        try:
            path = DatasetCatalog.get(cfg.DATASETS.TEST[0])[0]["file_name"]
        except (DataError, OSError, KeyError, IndexError) as e:
            raise SystemExit(f"No sample image from DATASETS.TEST[0] '{cfg.DATASETS.TEST[0]}' ({e}); "
                             "pass --sample-image FILE (any image: it only drives the trace).") from e
    image = read_image(path, format="BGR")
    resize = ({"short_edge": cfg.INPUT.MIN_SIZE_TEST, "max_size": cfg.INPUT.MAX_SIZE_TEST}
              if cfg.INPUT.MIN_SIZE_TEST > 0 else None)
    return torch.from_numpy(network_input(image, {"input_format": cfg.INPUT.FORMAT, "resize": resize}, "BGR"))


def evaluate_exported(cfg: CfgNode, output_dir: str, fmt: str) -> Dict[str, Dict[str, float]]:
    """The exported model's results on DATASETS.TEST[0] (written under ``output_dir/inference``)."""
    predictor = ONNXPredictor(output_dir) if fmt == "onnx" else TorchScriptPredictor(output_dir)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATASETS.TEST = tuple(cfg.DATASETS.TEST[:1])
    cfg.OUTPUT_DIR = output_dir
    cfg.MODEL.PRECISION = "fp32"
    return DefaultTrainer.test(cfg, ExportedModel(predictor))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    fmt, method = resolve_format(args.format, args.export_method)
    cfg = get_cfg()
    for name in args.add_config:
        load_add_config(name)(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    model = DefaultPredictor(cfg).model
    runtime_metadata(cfg, model, [], EXPORT_FORMATS[fmt])  # refuses unsupported inputs before exporting
    path = export_model(cfg, model, sample_input(cfg, args.sample_image), args.output, fmt, method)
    logger.info(f"Wrote {path} and {os.path.join(args.output, 'runtime.json')}")
    if args.run_eval:
        evaluate_exported(cfg, args.output, fmt)
    return 0


if __name__ == "__main__":
    setup_logger(name="seg_research")
    sys.exit(main())
