"""Export a model to TorchScript (tracing) or ONNX, with the runtime metadata beside it."""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import CfgNode
from ..data.catalog import MetadataCatalog
from ..modeling.meta_arch import GeneralizedRCNN, PanopticFPN
from ..utils.file_io import PathManager
from .flatten import TracingAdapter
from .graphs import export_inference, registered_architecture
from .runtime import MASK_THRESHOLD, ONNX_FILE, RUNTIME_FILE
from .scripting import script_model

__all__ = ["EXPORT_FORMATS", "TORCHSCRIPT_FILE", "TORCHSCRIPT_METHODS", "ONNX_OPSET", "export_torchscript", "export_onnx", "dump_torchscript_IR",
           "runtime_metadata", "write_runtime_metadata", "export_model"]

logger = logging.getLogger(__name__)

#: how a TorchScript file is made (``--export-method``)
TORCHSCRIPT_METHODS = ("tracing", "scripting")
#: ``--format`` -> the model's file name in the export directory.
TORCHSCRIPT_FILE = "model.ts"
EXPORT_FORMATS = {"torchscript": TORCHSCRIPT_FILE, "onnx": ONNX_FILE}
#: ONNX opset of the exported graphs (RoiAlign's half_pixel mode needs >= 16).
ONNX_OPSET = 18
#: Range of the exported ONNX graph's dynamic image sides, in pixels.
MIN_SIDE, MAX_SIDE = 16, 8192


def _adapter(model: nn.Module, image: torch.Tensor) -> TracingAdapter:
    """The model's exportable inference (:func:`export_inference`) on ``image`` as a tensors-only
    module, run once so that its ``outputs_schema`` is known."""
    adapter = TracingAdapter(model.eval(), [{"image": image.to(torch.float32)}], export_inference)
    adapter(*adapter.flattened_inputs)
    return adapter


def export_torchscript(model: nn.Module, image: torch.Tensor, path: str, method: str = "tracing") -> List[str]:
    """Save ``model``'s exportable inference as TorchScript at ``path``: ``method`` "tracing"
    (``torch.jit.trace`` of :func:`export_inference` on the (C, H, W) sample ``image``, the
    resized input, 0-255, the model's channel order) or "scripting" (:func:`.scripting.script_model`:
    the data-dependent steps compiled, the dense networks traced).

    The module takes one float32 (C, H, W) image of any size and returns the tensors named by the
    returned list (``instances.pred_boxes``, ..., ``sem_seg``; see :func:`export_inference`): a
    tuple in that order (tracing) or a dict by name (scripting).
    """
    if method not in TORCHSCRIPT_METHODS:
        raise ValueError(f"Unknown TorchScript export method {method!r}; use one of {TORCHSCRIPT_METHODS}.")
    adapter = _adapter(model, image)
    with torch.no_grad():
        if method == "tracing":
            module = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
        else:
            module = script_model(model, image.to(torch.float32))
    with PathManager.open(path, "wb") as f:
        torch.jit.save(module, f)
    return adapter.outputs_schema.names()


def export_onnx(model: nn.Module, image: torch.Tensor, path: str, opset: int = ONNX_OPSET) -> List[str]:
    """Export ``model``'s exportable inference to ONNX at ``path`` with ``torch.onnx.export``'s
    torch.export-based exporter (``dynamo=True``: data-dependent detection counts become dynamic
    ONNX shapes, and torchvision's ``nms`` / ``roi_align`` become ``NonMaxSuppression`` /
    ``RoiAlign``). Input ``image``: float32 (C, H, W), H and W dynamic; outputs named as listed
    (see :func:`export_torchscript`)."""
    # torch.export's shape solver fails ("Cannot create Dim with inconsistent min=0, max=-256") when the
    # sample needs padding; the recorded padding serves every size, so the sample is given padded already.
    divisor = int(model.padding_constraints.get("size_divisibility", 0))
    if divisor > 1:
        image = F.pad(image, (0, (-image.shape[2]) % divisor, 0, (-image.shape[1]) % divisor))
    adapter = _adapter(model, image)
    dims = {1: torch.export.Dim("height", min=MIN_SIDE, max=MAX_SIDE),
            2: torch.export.Dim("width", min=MIN_SIDE, max=MAX_SIDE)}
    names = adapter.outputs_schema.names()
    program = torch.onnx.export(adapter, adapter.flattened_inputs, dynamo=True, opset_version=opset,
                                dynamic_shapes=((dims,),), input_names=["image"], output_names=names,
                                verbose=False)
    # torch.export specializes a dimension silently when the model's code turns it into a Python
    # number (math or numpy on a size): the graph would then refuse every other image size
    fixed = [side for side, dim in zip(("height", "width"), list(program.model.graph.inputs[0].shape)[1:], strict=True)
             if isinstance(dim, int)]
    if fixed:
        raise NotImplementedError(
            f"The ONNX export of {type(model).__name__} fixes the image {' and '.join(fixed)} to the sample's "
            f"{tuple(image.shape[1:])}: its code makes the size a Python number (math or numpy on a tensor size), "
            "so the graph would serve that size only. Make that code use "
            "tensor sizes (see seg_research.projects.mask2former.export for a restatement).")
    program.save(path)
    return names


def dump_torchscript_IR(model: Any, dir: str) -> None:  # noqa: N802 (detectron2's name)
    """Write a TorchScript module's code (``model_ts_code.txt``), its graph (``model_ts_IR.txt``),
    the graph with calls inlined (``model_ts_IR_inlined.txt``) and its repr (``model.txt``) into ``dir``."""
    PathManager.mkdirs(dir)
    code = [f"== {name or '<root>'} ==\n{module.code}" for name, module in model.named_modules()
            if hasattr(module, "code") and getattr(module, "_c", None) is not None]
    files = {"model_ts_code.txt": "\n".join(code), "model_ts_IR.txt": str(model.graph),
             "model_ts_IR_inlined.txt": str(model.inlined_graph), "model.txt": str(model)}
    for name, text in files.items():
        with PathManager.open(os.path.join(dir, name), "w") as f:
            f.write(text)


def runtime_metadata(cfg: CfgNode, model: nn.Module, output_names: List[str], model_file: str) -> Dict[str, Any]:
    """What a runtime needs beside the graph (the JSON :data:`RUNTIME_FILE`): input channel
    order, the test-time resize, the (informative) pixel mean/std the graph normalizes with,
    class names and the dataset category ids of ``DATASETS.TEST[0]``, thresholds, the panoptic
    fusion parameters and the graph's output names."""
    if cfg.INPUT.FORMAT not in ("BGR", "RGB"):
        raise ValueError(f"Export supports INPUT.FORMAT BGR or RGB, got {cfg.INPUT.FORMAT!r}.")
    test_sets = list(cfg.DATASETS.TEST)
    meta = MetadataCatalog.get(test_sets[0]) if test_sets else None

    def _get(key: str) -> Any:
        return getattr(meta, key, None) if meta is not None else None

    def _id_pairs(key: str) -> Optional[List[List[int]]]:
        mapping = _get(key)
        return None if mapping is None else [[int(k), int(v)] for k, v in sorted(mapping.items())]

    data: Dict[str, Any] = {
        "model_file": model_file,
        "meta_architecture": type(model).__name__,
        "input_format": cfg.INPUT.FORMAT,
        "input_layout": "float32 (3, H, W), 0-255, after the resize",
        "resize": ({"short_edge": int(cfg.INPUT.MIN_SIZE_TEST), "max_size": int(cfg.INPUT.MAX_SIZE_TEST),
                    "interp": "bilinear (Pillow)"} if cfg.INPUT.MIN_SIZE_TEST > 0 else None),
        "pixel_mean": [float(v) for v in cfg.MODEL.PIXEL_MEAN],
        "pixel_std": [float(v) for v in cfg.MODEL.PIXEL_STD],
        "outputs": output_names,
        "dataset": test_sets[0] if test_sets else None,
        "thing_classes": _get("thing_classes"),
        "stuff_classes": _get("stuff_classes"),
        "thing_dataset_id_to_contiguous_id": _id_pairs("thing_dataset_id_to_contiguous_id"),
        "stuff_dataset_id_to_contiguous_id": _id_pairs("stuff_dataset_id_to_contiguous_id"),
    }
    if isinstance(model, GeneralizedRCNN):
        data["score_threshold"] = float(model.roi_heads.box_predictor.test_score_thresh)
        data["mask_threshold"] = MASK_THRESHOLD
    if isinstance(model, PanopticFPN) and model.combine_on:
        data["panoptic"] = {"overlap_threshold": model.combine_overlap_thresh,
                            "stuff_area_thresh": model.combine_stuff_area_thresh,
                            "instances_score_thresh": model.combine_instances_score_thresh}
    registered = registered_architecture(model)
    if registered is not None and registered[1] is not None:
        data.update(registered[1](model))
    return data


def write_runtime_metadata(output_dir: str, metadata: Dict[str, Any]) -> str:
    """Write ``metadata`` as ``output_dir/``:data:`RUNTIME_FILE`; returns its path."""
    path = os.path.join(output_dir, RUNTIME_FILE)
    with PathManager.open(path, "w") as f:
        json.dump(metadata, f, indent=2)
    return path


def export_model(cfg: CfgNode, model: nn.Module, image: torch.Tensor, output_dir: str, fmt: str = "onnx",
                 method: str = "tracing") -> str:
    """Export ``model`` (built from ``cfg``, weights loaded) in format ``fmt`` ("onnx" or
    "torchscript", the latter by ``method`` "tracing" or "scripting") into ``output_dir`` with its
    :data:`RUNTIME_FILE`; returns the model file's path.

    Args:
        image: a sample (C, H, W) network input (resized, the model's channel order, 0-255).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {sorted(EXPORT_FORMATS)}.")
    PathManager.mkdirs(output_dir)
    path = os.path.join(output_dir, EXPORT_FORMATS[fmt])
    names = export_onnx(model, image, path) if fmt == "onnx" else export_torchscript(model, image, path, method)
    metadata = runtime_metadata(cfg, model, names, EXPORT_FORMATS[fmt])
    metadata["export_method"] = "onnx" if fmt == "onnx" else method
    write_runtime_metadata(output_dir, metadata)
    logger.info("Exported %s to %s (outputs %s)", type(model).__name__, path, names)
    return path
