"""Export trained models to TorchScript and ONNX, and run them without the training stack.

- :class:`TracingAdapter` / :func:`flatten_to_tuple`: the model I/O as tuples of tensors and back;
- :func:`export_inference`: each meta-architecture's inference in a form a graph records (those
  defined above this package, e.g. Mask2Former's, through :func:`.graphs.register_architecture`);
- :func:`export_model` (:func:`export_onnx`, :func:`export_torchscript` by tracing or scripting,
  :func:`script_model`) and the runtime metadata;
- :class:`ONNXPredictor`, :class:`TorchScriptPredictor`: ``DefaultPredictor`` on the exported file;
- :mod:`.runtime`: the onnxruntime + numpy runtime, importable without torch (``tools/deploy/onnx_predict.py``).
"""
from ..utils.absent import absent_names
from .api import (
    EXPORT_FORMATS,
    TORCHSCRIPT_METHODS,
    dump_torchscript_IR,
    export_model,
    export_onnx,
    export_torchscript,
    runtime_metadata,
    write_runtime_metadata,
)
from .flatten import TracingAdapter, flatten_to_tuple
from .graphs import export_inference
from .predictor import ExportedModel, ONNXPredictor, TorchScriptPredictor
from .scripting import script_model

__all__ = ["TracingAdapter", "flatten_to_tuple", "export_inference", "EXPORT_FORMATS", "TORCHSCRIPT_METHODS",
           "export_model", "export_onnx", "export_torchscript", "script_model", "dump_torchscript_IR",
           "runtime_metadata", "write_runtime_metadata", "ONNXPredictor", "TorchScriptPredictor", "ExportedModel"]

__getattr__ = absent_names(__name__, {
    "scripting_with_instances": (
        "the model classes are not scriptable (Instances, configurable constructors); script their exportable "
        "inference instead: export_torchscript(model, image, path, method='scripting') or "
        "seg_research.export.scripting.script_model (tools/export_model.py --export-method scripting)."),
    "Caffe2Tracer": "Caffe2 is gone from PyTorch; export to ONNX (export_onnx) or TorchScript (export_torchscript).",
})
