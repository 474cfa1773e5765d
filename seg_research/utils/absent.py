"""Names detectron2 exports that seg_research does not have: importing one says what to use.

A package lists them with :func:`absent_names` and installs the result as its module-level
``__getattr__`` (PEP 562)::

    __getattr__ = absent_names(__name__, {"RotatedBoxes": "rotated boxes are not supported; ..."})

Then ``from seg_research.structures import RotatedBoxes`` raises :class:`AbsentFromSegResearch`
(an ``ImportError``) carrying that advice, instead of a bare "cannot import name". Any other
unknown attribute still raises ``AttributeError``.
"""
from __future__ import annotations

from typing import Callable, Dict, NoReturn

__all__ = ["AbsentFromSegResearch", "absent_names"]


class AbsentFromSegResearch(ImportError):
    """A detectron2 name that seg_research deliberately does not provide; the message says what to use."""


def absent_names(module_name: str, advice: Dict[str, str]) -> Callable[[str], NoReturn]:
    """A module ``__getattr__`` raising :class:`AbsentFromSegResearch` for the names of ``advice``.

    Args:
        module_name: the package's ``__name__`` (``seg_research.layers``).
        advice: detectron2 name -> what it was and what to use instead (one sentence or two).
    """
    detectron2_module = module_name.replace("seg_research", "detectron2", 1)

    def __getattr__(name: str) -> NoReturn:
        if name in advice:
            raise AbsentFromSegResearch(
                f"{detectron2_module}.{name} has no counterpart in {module_name}: {advice[name]}",
                name=name,
            )
        raise AttributeError(f"module '{module_name}' has no attribute '{name}'")

    return __getattr__


# Advice shared by the modules that leave out a whole family of detectron2 features.
KEYPOINTS = "keypoint detection is not supported (no keypoint head or keypoint annotations in seg_research)."
ROTATED = "rotated boxes are not supported; boxes are axis-aligned XYXY (structures.Boxes, pairwise_iou)."
ONE_STAGE = ("one-stage detectors (RetinaNet, FCOS) are not provided; use GeneralizedRCNN "
             "(MODEL.META_ARCHITECTURE 'GeneralizedRCNN') or register your own in META_ARCH_REGISTRY.")
MMDET = "mmdetection models are not wrapped; register your own module in BACKBONE_REGISTRY or META_ARCH_REGISTRY."
CAFFE2 = ("Caffe2 Detectron (.pkl blob) weights and detectron2's model catalog are not supported; load detectron2 or "
          "torchvision checkpoints with checkpoint.DetectionCheckpointer (it converts their layouts).")
CASCADE = ("Cascade R-CNN is not provided; use StandardROIHeads (MODEL.ROI_HEADS.NAME 'StandardROIHeads') or "
           "register a subclass of it in ROI_HEADS_REGISTRY.")
MASK_HEAD_BASE = ("no base class; register an nn.Module in ROI_MASK_HEAD_REGISTRY (see "
                  "modeling.roi_heads.MaskRCNNConvUpsampleHead: forward(features, instances) adds pred_masks / "
                  "returns loss_mask).")
LVIS = ("LVIS datasets are not registered (no LVIS loader); convert LVIS to COCO json and use "
        "data.datasets.register_coco_instances, then evaluation.LVISEvaluator.")
