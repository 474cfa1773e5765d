"""Export trained models to TorchScript and ONNX, and run them without the training stack."""
from .flatten import TracingAdapter, flatten_to_tuple
from .graphs import export_inference

__all__ = ["TracingAdapter", "flatten_to_tuple", "export_inference"]
