"""Train or evaluate a Mask2Former config, as upstream's ``train_net.py`` does, on the library's engine.

    python -m seg_research.projects.mask2former.train_net --config-file configs/Shapes/mask2former_R18_bs4_demo.yaml
    python -m seg_research.projects.mask2former.train_net --config-file F --eval-only MODEL.WEIGHTS model.pkl

The config gets the keys of ``add_deeplab_config`` (poly LR) and ``add_maskformer2_config``. :class:`Trainer`
is the library's ``DefaultTrainer`` with upstream's choices: the training mapper named by
``INPUT.DATASET_MAPPER_NAME``, Mask2Former's optimizer, the deeplab LR schedulers, and the evaluators of
each ``evaluator_type`` that the ``MODEL.MASK_FORMER.TEST.*_ON`` outputs call for (:func:`build_evaluator`).
Test-time augmentation (``TEST.AUG.ENABLED``) uses :class:`SemanticSegmentorWithTTA` through the library's
``build_tta_model``.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional

from seg_research.config import CfgNode
from seg_research.data import MetadataCatalog, build_detection_train_loader
from seg_research.engine import DefaultTrainer, default_argument_parser, launch_train_net
from seg_research.evaluation import (
    CityscapesInstanceEvaluator,
    CityscapesSemSegEvaluator,
    COCOEvaluator,
    COCOPanopticEvaluator,
    DatasetEvaluator,
    DatasetEvaluators,
    LVISEvaluator,
    SemSegEvaluator,
)
from seg_research.projects.deeplab import add_deeplab_config, build_lr_scheduler

from .config import add_maskformer2_config
from .data.dataset_mappers import (
    COCOInstanceNewBaselineDatasetMapper,
    COCOPanopticNewBaselineDatasetMapper,
    MaskFormerInstanceDatasetMapper,
    MaskFormerPanopticDatasetMapper,
    MaskFormerSemanticDatasetMapper,
)
from .evaluation import InstanceSegEvaluator
from .solver import build_optimizer

__all__ = ["ADD_CONFIG_FNS", "DATASET_MAPPERS", "build_evaluator", "Trainer", "main"]

#: The config keys of a Mask2Former config: deeplab's (poly LR), then Mask2Former's.
ADD_CONFIG_FNS = (add_deeplab_config, add_maskformer2_config)

#: ``INPUT.DATASET_MAPPER_NAME`` -> the training mapper class (upstream's names); any other name: the
#: library's DatasetMapper.
DATASET_MAPPERS: Dict[str, Callable] = {
    "mask_former_semantic": MaskFormerSemanticDatasetMapper,
    "mask_former_panoptic": MaskFormerPanopticDatasetMapper,
    "mask_former_instance": MaskFormerInstanceDatasetMapper,
    "coco_instance_lsj": COCOInstanceNewBaselineDatasetMapper,
    "coco_panoptic_lsj": COCOPanopticNewBaselineDatasetMapper,
}

_PANOPTIC_TYPES = ("coco_panoptic_seg", "ade20k_panoptic_seg", "cityscapes_panoptic_seg",
                   "mapillary_vistas_panoptic_seg")


def build_evaluator(cfg: CfgNode, dataset_name: str, output_folder: Optional[str] = None) -> DatasetEvaluator:
    """Upstream Mask2Former's evaluators of ``dataset_name``, by its metadata ``evaluator_type``:

    - ``sem_seg``: mIoU; ``coco``: box and mask AP; ``lvis``: LVIS AP; ``cityscapes_instance`` /
      ``cityscapes_sem_seg``: Cityscapes' scripts;
    - panoptic types (``coco_panoptic_seg``, ``ade20k_panoptic_seg``, ``cityscapes_panoptic_seg``,
      ``mapillary_vistas_panoptic_seg``): PQ with ``TEST.PANOPTIC_ON``; mIoU with ``TEST.SEMANTIC_ON``
      (always for ADE20K, as upstream; Cityscapes' script for Cityscapes); instance AP with
      ``TEST.INSTANCE_ON`` (COCO's evaluator for COCO, Cityscapes' for Cityscapes,
      :class:`InstanceSegEvaluator` for ADE20K and Mapillary Vistas, whose thing ids are not 0..K-1).

    Every file goes to ``output_folder`` (default ``OUTPUT_DIR/inference/<dataset_name>``). Returns one
    evaluator, or :class:`DatasetEvaluators` of several (their results merged).

    Raises:
        KeyError: an ``evaluator_type`` without evaluators (or none of the outputs enabled), naming it.
    """
    if output_folder is None:
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
    kind = MetadataCatalog.get(dataset_name).get("evaluator_type")
    test = cfg.MODEL.MASK_FORMER.TEST
    evaluators: List[DatasetEvaluator] = []
    if kind == "sem_seg":
        evaluators.append(SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder))
    elif kind == "coco":
        evaluators.append(COCOEvaluator(dataset_name, output_dir=output_folder))
    elif kind == "lvis":
        evaluators.append(LVISEvaluator(dataset_name, output_dir=output_folder))
    elif kind == "cityscapes_instance":
        evaluators.append(CityscapesInstanceEvaluator(dataset_name))
    elif kind == "cityscapes_sem_seg":
        evaluators.append(CityscapesSemSegEvaluator(dataset_name))
    elif kind in _PANOPTIC_TYPES:
        cityscapes = kind == "cityscapes_panoptic_seg"
        if test.SEMANTIC_ON or kind == "ade20k_panoptic_seg":
            evaluators.append(CityscapesSemSegEvaluator(dataset_name) if cityscapes
                              else SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder))
        if test.PANOPTIC_ON:
            evaluators.append(COCOPanopticEvaluator(dataset_name, output_folder))
        if test.INSTANCE_ON:
            if cityscapes:
                evaluators.append(CityscapesInstanceEvaluator(dataset_name))
            elif kind == "coco_panoptic_seg":
                evaluators.append(COCOEvaluator(dataset_name, output_dir=output_folder))
            else:
                evaluators.append(InstanceSegEvaluator(dataset_name, output_dir=output_folder))
    if not evaluators:
        raise KeyError(f"No Mask2Former evaluator for dataset '{dataset_name}' with evaluator_type {kind!r} and "
                       f"MODEL.MASK_FORMER.TEST SEMANTIC_ON={test.SEMANTIC_ON}, INSTANCE_ON={test.INSTANCE_ON}, "
                       f"PANOPTIC_ON={test.PANOPTIC_ON}; set its metadata evaluator_type to one of "
                       f"sem_seg, coco, lvis, cityscapes_*, {', '.join(_PANOPTIC_TYPES)}, or enable an output.")
    return evaluators[0] if len(evaluators) == 1 else DatasetEvaluators(evaluators)


class Trainer(DefaultTrainer):
    """``DefaultTrainer`` with upstream Mask2Former's data, optimizer, schedule and evaluators."""

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: Optional[str] = None) -> DatasetEvaluator:
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode, start_iter: int = 0, seed: Optional[int] = None):
        """The mapper of ``INPUT.DATASET_MAPPER_NAME`` (:data:`DATASET_MAPPERS`), else the library's."""
        mapper_class = DATASET_MAPPERS.get(cfg.INPUT.DATASET_MAPPER_NAME)
        mapper = mapper_class(cfg, True) if mapper_class is not None else None
        return build_detection_train_loader(cfg, mapper=mapper, start_iter=start_iter, seed=seed)

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer):
        return build_lr_scheduler(cfg, optimizer)


def main() -> None:
    launch_train_net(default_argument_parser().parse_args(), add_config_fns=ADD_CONFIG_FNS, trainer_class=Trainer)


if __name__ == "__main__":
    main()
