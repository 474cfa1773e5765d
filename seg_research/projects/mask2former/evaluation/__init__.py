"""Mask2Former's evaluators: :class:`InstanceSegEvaluator` (COCO AP where the thing classes' contiguous ids
are not 0..K-1)."""
from .instance_evaluation import InstanceSegEvaluator

__all__ = ["InstanceSegEvaluator"]
