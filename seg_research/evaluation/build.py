"""EVALUATOR registry: builds the evaluator matching a dataset's ``evaluator_type``."""
from __future__ import annotations

import os
from typing import Optional

from ..data.catalog import MetadataCatalog
from ..utils.registry import Registry
from .coco_evaluation import COCOEvaluator
from .evaluator import DatasetEvaluator
from .panoptic_evaluation import COCOPanopticEvaluator
from .sem_seg_evaluation import SemSegEvaluator

__all__ = ["EVALUATOR_REGISTRY", "build_evaluator"]

EVALUATOR_REGISTRY = Registry("EVALUATOR")
EVALUATOR_REGISTRY.__doc__ = """
Maps a dataset's metadata ``evaluator_type`` to a function
``(cfg, dataset_name, output_folder) -> DatasetEvaluator``.
"""


@EVALUATOR_REGISTRY.register(name="sem_seg")
def _build_sem_seg_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder,
                           save_predictions=cfg.TEST.SAVE_PREDICTIONS)


def build_evaluator(cfg, dataset_name: str, output_folder: Optional[str] = None) -> DatasetEvaluator:
    """The evaluator for ``dataset_name`` from its metadata ``evaluator_type``; results files
    go to ``output_folder`` (default ``OUTPUT_DIR/inference/<dataset_name>``)."""
    if output_folder is None:
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type is None or evaluator_type not in EVALUATOR_REGISTRY:
        raise KeyError(
            f"No evaluator for dataset '{dataset_name}' (metadata evaluator_type={evaluator_type!r}). Set "
            f"MetadataCatalog.get('{dataset_name}').evaluator_type to one of "
            f"{sorted(k for k, _ in EVALUATOR_REGISTRY)}, or override DefaultTrainer.build_evaluator."
        )
    return EVALUATOR_REGISTRY.get(evaluator_type)(cfg, dataset_name, output_folder)


@EVALUATOR_REGISTRY.register(name="coco")
def _build_coco_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    """Box AP, plus mask AP when ``cfg.MODEL.MASK_ON``; at most ``cfg.TEST.DETECTIONS_PER_IMAGE`` per image."""
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    return COCOEvaluator(dataset_name, tasks=tasks, distributed=True, output_dir=output_folder,
                         max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE)


@EVALUATOR_REGISTRY.register(name="coco_panoptic_seg")
def _build_coco_panoptic_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    """PQ/SQ/RQ against the dataset's COCO panoptic json: hotcoco unless ``cfg.TEST.PANOPTIC_USE_FAST_IMPL`` is
    False, ours with ``cfg.TEST.PANOPTIC_NUM_WORKERS`` processes."""
    return COCOPanopticEvaluator(dataset_name, output_folder, distributed=True,
                                 num_workers=cfg.TEST.PANOPTIC_NUM_WORKERS,
                                 use_fast_impl=cfg.TEST.PANOPTIC_USE_FAST_IMPL)
