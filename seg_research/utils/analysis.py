"""Model analysis at detectron2's ``utils.analysis`` path: parameter counts are fvcore's."""
from fvcore.nn import parameter_count, parameter_count_table

from .absent import absent_names

__all__ = ["parameter_count", "parameter_count_table"]

_FLOPS = ("not provided: seg_research models take list[dict] inputs, which fvcore cannot trace directly. Count "
          "FLOPs with fvcore.nn.FlopCountAnalysis(module, inputs) on a tensor-in/tensor-out part (e.g. "
          "model.backbone, inputs=(images,)).")
__getattr__ = absent_names(__name__, {
    "FlopCountAnalysis": _FLOPS, "flop_count_operators": _FLOPS, "activation_count_operators": _FLOPS,
})
