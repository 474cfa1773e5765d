from .build import EVALUATOR_REGISTRY, build_evaluator
from .cityscapes_evaluation import CityscapesInstanceEvaluator, CityscapesSemSegEvaluator
from .coco_evaluation import COCOEvaluator
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .lvis_evaluation import LVISEvaluator
from .panoptic_evaluation import COCOPanopticEvaluator, pq_compute
from .pascal_voc_evaluation import PascalVOCDetectionEvaluator
from .sem_seg_evaluation import SemSegEvaluator
from .testing import print_csv_format, verify_results

__all__ = [
    "DatasetEvaluator", "DatasetEvaluators", "inference_context", "inference_on_dataset",
    "SemSegEvaluator", "print_csv_format", "EVALUATOR_REGISTRY", "build_evaluator",
    "COCOEvaluator",
    "COCOPanopticEvaluator", "pq_compute",
    "PascalVOCDetectionEvaluator", "CityscapesInstanceEvaluator", "CityscapesSemSegEvaluator", "LVISEvaluator",
    "verify_results",
]

from ..utils.absent import ROTATED, absent_names  # noqa: E402

__getattr__ = absent_names(__name__, {"RotatedCOCOEvaluator": ROTATED})
