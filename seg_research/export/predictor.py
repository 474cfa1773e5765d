"""``DefaultPredictor``-like classes that run an exported model (ONNX on onnxruntime, or the traced
TorchScript file) and give the library's outputs, so that the evaluators and visualizers take them."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..structures import Boxes, Instances
from ..utils.file_io import PathManager
from .api import TORCHSCRIPT_FILE
from .runtime import OnnxRuntimeModel, load_runtime_metadata, network_input, postprocess

__all__ = ["ONNXPredictor", "TorchScriptPredictor", "ExportedModel", "to_library_outputs"]


def to_library_outputs(outputs: Dict[str, Any], height: int, width: int) -> Dict[str, Any]:
    """The runtime's numpy outputs (``runtime.postprocess``) as the PyTorch model returns them:
    ``instances`` (Instances with ``pred_boxes``, ``scores``, ``pred_classes``[, ``pred_masks``
    bool]), ``sem_seg`` float (C, H, W), ``panoptic_seg`` (int32 (H, W), segments_info)."""
    result: Dict[str, Any] = {}
    if "sem_seg" in outputs:
        result["sem_seg"] = torch.from_numpy(np.ascontiguousarray(outputs["sem_seg"]))
    if "instances" in outputs:
        raw = outputs["instances"]
        instances = Instances((height, width), pred_boxes=Boxes(torch.from_numpy(raw["boxes"])),
                              scores=torch.from_numpy(raw["scores"]), pred_classes=torch.from_numpy(raw["classes"]))
        if "masks" in raw:
            instances.pred_masks = torch.from_numpy(raw["masks"])
        result["instances"] = instances
    if "panoptic_seg" in outputs:
        ids, segments = outputs["panoptic_seg"]
        result["panoptic_seg"] = (torch.from_numpy(ids), segments)
    return result


class _ExportedPredictor:
    """Preprocessing, running and postprocessing shared by both formats; a subclass sets
    :attr:`metadata` and implements :meth:`run`."""

    metadata: Dict[str, Any]

    def run(self, net_input: np.ndarray) -> Dict[str, np.ndarray]:
        """The exported graph on one float32 (3, h, w) network input: its outputs by name."""
        raise NotImplementedError

    def preprocess(self, image: np.ndarray, channel_order: str = "BGR") -> np.ndarray:
        return network_input(image, self.metadata, channel_order)

    def run_network_input(self, net_input: np.ndarray, height: int, width: int) -> Dict[str, Any]:
        """Outputs at (height, width) for an already resized (3, h, w) input (a test loader's ``image``)."""
        outputs = postprocess(self.run(net_input), self.metadata, net_input.shape[1:], height, width)
        return to_library_outputs(outputs, height, width)

    def __call__(self, original_image: np.ndarray) -> Dict[str, Any]:
        """Like ``DefaultPredictor``: an (H, W, 3) uint8 BGR image -> the model's outputs at (H, W)."""
        net_input = self.preprocess(original_image, "BGR")
        return self.run_network_input(net_input, original_image.shape[0], original_image.shape[1])


class ONNXPredictor(_ExportedPredictor):
    """An export directory's ``model.onnx`` on onnxruntime::

        predictor = ONNXPredictor("exported/")
        outputs = predictor(cv2.imread("input.jpg"))  # as DefaultPredictor's
    """

    def __init__(self, model_dir: str, threads: Optional[int] = None) -> None:
        self.runtime = OnnxRuntimeModel(model_dir, threads)
        self.metadata = self.runtime.metadata

    def run(self, net_input: np.ndarray) -> Dict[str, np.ndarray]:
        return self.runtime.run(net_input)


class TorchScriptPredictor(_ExportedPredictor):
    """An export directory's ``model.ts`` (traced or scripted; ``torch.jit.load``), same interface
    as :class:`ONNXPredictor`."""

    def __init__(self, model_dir: str) -> None:
        self.metadata = load_runtime_metadata(model_dir)
        path = os.path.join(model_dir, self.metadata.get("model_file", TORCHSCRIPT_FILE))
        with PathManager.open(path, "rb") as f:
            self.module = torch.jit.load(f, map_location="cpu")
        self.output_names: List[str] = self.metadata["outputs"]

    def run(self, net_input: np.ndarray) -> Dict[str, np.ndarray]:
        with torch.no_grad():
            outputs = self.module(torch.from_numpy(net_input))
        if isinstance(outputs, dict):  # a scripted module names its outputs
            return {name: outputs[name].numpy() for name in self.output_names}
        return {name: value.numpy() for name, value in zip(self.output_names, outputs, strict=True)}


class ExportedModel(nn.Module):
    """An exported model behind the model I/O contract (list of mapped dicts with a resized
    ``image`` (C, h, w), ``height``, ``width`` in; per-image output dicts out), so that
    ``inference_on_dataset`` and the evaluators run it as they run the PyTorch model."""

    def __init__(self, predictor: _ExportedPredictor) -> None:
        super().__init__()
        self.predictor = predictor

    def forward(self, batched_inputs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        results = []
        for inputs in batched_inputs:
            net_input = inputs["image"].to(torch.float32).numpy()
            height = int(inputs.get("height", net_input.shape[1]))
            width = int(inputs.get("width", net_input.shape[2]))
            results.append(self.predictor.run_network_input(np.ascontiguousarray(net_input), height, width))
        return results
