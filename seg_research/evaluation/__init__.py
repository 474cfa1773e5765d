from .build import EVALUATOR_REGISTRY, build_evaluator
from .coco_evaluation import COCOEvaluator
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .panoptic_evaluation import COCOPanopticEvaluator, pq_compute
from .sem_seg_evaluation import SemSegEvaluator
from .testing import print_csv_format

__all__ = [
    "DatasetEvaluator", "DatasetEvaluators", "inference_context", "inference_on_dataset",
    "SemSegEvaluator", "print_csv_format", "EVALUATOR_REGISTRY", "build_evaluator",
    "COCOEvaluator",
    "COCOPanopticEvaluator", "pq_compute",
]
