"""detectron2 features whose config keys exist here (so that every detectron2 config merges) but
which seg_research does not build: turning one on stops ``build_model`` with the key's name.

Each entry is one feature; ``check_supported`` is called by ``modeling.build_model`` before any
module is built, so a detectron2 RetinaNet or Keypoint R-CNN config fails at once with the reason,
instead of with a registry miss or, worse, a silently different model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Tuple

from .config import CfgNode, ConfigError

__all__ = ["UnsupportedFeature", "UnsupportedConfigError", "UNSUPPORTED_FEATURES", "check_supported"]


class UnsupportedConfigError(ConfigError):
    """A config turns on a detectron2 feature that seg_research does not have."""


@dataclass(frozen=True)
class UnsupportedFeature:
    """``key`` set to a value for which ``is_on`` holds builds ``feature`` in detectron2."""

    key: str
    is_on: Callable[[Any], bool]
    feature: str
    advice: str


def _named(*names: str) -> Callable[[Any], bool]:
    return lambda value: value in names


_DETECTION_ONLY = "seg_research builds segmentation models (Mask R-CNN, Semantic/Panoptic FPN and its projects)"

UNSUPPORTED_FEATURES: Tuple[UnsupportedFeature, ...] = (
    UnsupportedFeature("MODEL.META_ARCHITECTURE", _named("RetinaNet"), "RetinaNet",
                       f"{_DETECTION_ONLY}; use GeneralizedRCNN (Faster/Mask R-CNN)."),
    UnsupportedFeature("MODEL.KEYPOINT_ON", bool, "Keypoint R-CNN's keypoint head",
                       "keypoint detection is not part of seg_research; set MODEL.KEYPOINT_ON False."),
    UnsupportedFeature("MODEL.LOAD_PROPOSALS", bool,
                       "precomputed proposals (DATASETS.PROPOSAL_FILES_*, Fast R-CNN)",
                       "proposals come from the RPN here; set MODEL.LOAD_PROPOSALS False and keep "
                       "MODEL.PROPOSAL_GENERATOR.NAME 'RPN'."),
    UnsupportedFeature("MODEL.PROPOSAL_GENERATOR.NAME", _named("PrecomputedProposals"),
                       "precomputed proposals (Fast R-CNN)", "use 'RPN'."),
    UnsupportedFeature("MODEL.PROPOSAL_GENERATOR.NAME", _named("RRPN"), "rotated-box RPN",
                       "rotated boxes are not supported; use 'RPN'."),
    UnsupportedFeature("MODEL.ANCHOR_GENERATOR.NAME", _named("RotatedAnchorGenerator"), "rotated anchors",
                       "rotated boxes are not supported; use 'DefaultAnchorGenerator'."),
    UnsupportedFeature("MODEL.ROI_HEADS.NAME", _named("CascadeROIHeads"), "Cascade R-CNN",
                       "use 'StandardROIHeads' (one box stage; MODEL.ROI_BOX_CASCADE_HEAD.* is then unused)."),
    UnsupportedFeature("MODEL.ROI_HEADS.NAME", _named("RROIHeads"), "rotated-box ROI heads",
                       "rotated boxes are not supported; use 'StandardROIHeads'."),
    UnsupportedFeature("MODEL.RESNETS.DEFORM_ON_PER_STAGE", any, "deformable convolutions in the ResNet",
                       "set every entry False (plain 3x3 convs; torchvision.ops.DeformConv2d is available "
                       "for a backbone of your own)."),
    UnsupportedFeature("MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES", bool,
                       "training the mask head on the box head's predicted boxes",
                       "set it False (the mask head trains on the sampled proposals, detectron2's default)."),
)


def _value(cfg: CfgNode, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def check_supported(cfg: CfgNode) -> None:
    """Raise :class:`UnsupportedConfigError` naming the first key of ``cfg`` that turns on a
    feature of :data:`UNSUPPORTED_FEATURES`. Keys a config lacks (a LazyConfig-built node, a
    project's own config) are skipped."""
    for item in UNSUPPORTED_FEATURES:
        try:
            value = _value(cfg, item.key)
        except (KeyError, AttributeError):
            continue
        if item.is_on(value):
            raise UnsupportedConfigError(
                f"{item.key} = {value!r} asks for {item.feature}, which seg_research does not support: "
                f"{item.advice}"
            )
