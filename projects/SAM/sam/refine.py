"""Refine a detector's masks with SAM: prompt it with the detector's boxes, evaluate both mask sets."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from seg_research.config import CfgNode
from seg_research.data.build import build_detection_test_loader
from seg_research.data.detection_utils import read_image
from seg_research.engine import DefaultPredictor
from seg_research.evaluation import COCOEvaluator, DatasetEvaluator, DatasetEvaluators, inference_on_dataset
from seg_research.structures import Instances

from .predictor import SamInstancePredictor

__all__ = ["refine_instances", "SamRefinedEvaluator", "evaluate_sam_refinement"]


def refine_instances(predictor: SamInstancePredictor, image_rgb, instances: Instances) -> Instances:
    """``instances`` (a detector's output at the image's size) with ``pred_masks`` replaced by SAM's
    masks prompted with its ``pred_boxes``; boxes, scores and classes are kept."""
    refined = Instances(instances.image_size, **instances.get_fields())
    refined.pred_masks = predictor(image_rgb, boxes=instances.pred_boxes.tensor.cpu()).pred_masks
    return refined


class SamRefinedEvaluator(DatasetEvaluator):
    """Wraps an evaluator: each output's ``instances`` are refined by SAM (:func:`refine_instances`,
    image read from the input's ``file_name``) before the wrapped evaluator sees them."""

    def __init__(self, evaluator: DatasetEvaluator, predictor: SamInstancePredictor) -> None:
        self.evaluator = evaluator
        self.predictor = predictor

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> None:
        refined = []
        for inp, out in zip(inputs, outputs, strict=True):
            image = read_image(inp["file_name"], format="RGB")
            refined.append({**out, "instances": refine_instances(self.predictor, image, out["instances"].to("cpu"))})
        self.evaluator.process(inputs, refined)

    def evaluate(self) -> Optional[Dict[str, Any]]:
        return self.evaluator.evaluate()


def evaluate_sam_refinement(cfg: CfgNode, dataset_name: str, predictor: SamInstancePredictor,
                            output_dir: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Run the instance model of ``cfg`` (``MODEL.WEIGHTS`` loaded) on ``dataset_name`` once and
    evaluate its masks and the SAM-refined masks with the dataset's COCOEvaluator (bbox and segm).

    Returns:
        ``{"before": COCOEvaluator results, "after": results with SAM's masks}`` (percentages;
        the boxes, hence bbox AP, are the same in both).
    """
    model = DefaultPredictor(cfg).model
    loader = build_detection_test_loader(cfg, dataset_name)
    evaluators = {tag: COCOEvaluator(dataset_name, tasks=("bbox", "segm"), distributed=False,
                                     output_dir=None if output_dir is None else os.path.join(output_dir, tag))
                  for tag in ("before", "after")}
    evaluators["after"] = SamRefinedEvaluator(evaluators["after"], predictor)
    return inference_on_dataset(model, loader, DatasetEvaluators([_Tagged(tag, e) for tag, e in evaluators.items()]))


class _Tagged(DatasetEvaluator):
    """An evaluator whose results come back as ``{tag: results}`` (two COCOEvaluators side by side)."""

    def __init__(self, tag: str, evaluator: DatasetEvaluator) -> None:
        self.tag, self.evaluator = tag, evaluator

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> None:
        self.evaluator.process(inputs, outputs)

    def evaluate(self) -> Dict[str, Any]:
        return {self.tag: self.evaluator.evaluate()}
