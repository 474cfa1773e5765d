"""Segment Anything (Kirillov et al. 2023) for seg_research, on the ``segment-anything`` package
(``pip install 'seg_research[sam]'``):

- :func:`build_sam`: a SAM from a user-supplied checkpoint (``sam_vit_b_01ec64.pth`` ...);
- :class:`SamInstancePredictor`: box / point prompts -> masks as ``Instances``;
- :func:`annotate_coco_json`: box-only COCO annotations -> a new json with SAM masks;
- :func:`evaluate_sam_refinement`: a Mask R-CNN's masks vs SAM's masks prompted with its boxes,
  both scored by the COCOEvaluator.

``projects/SAM/sam_annotate.py`` is the command line for the last two.
"""
from .annotate import annotate_coco_json, needs_mask
from .build import SAM_CHECKPOINT_FILES, build_sam, default_sam_checkpoint
from .predictor import SamInstancePredictor
from .refine import SamRefinedEvaluator, evaluate_sam_refinement, refine_instances

__all__ = ["annotate_coco_json", "needs_mask", "SAM_CHECKPOINT_FILES", "build_sam", "default_sam_checkpoint",
           "SamInstancePredictor", "SamRefinedEvaluator", "evaluate_sam_refinement", "refine_instances"]
