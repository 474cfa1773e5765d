from .meta_arch import (
    META_ARCH_REGISTRY,
    GeneralizedRCNN,
    PanopticFPN,
    ProposalNetwork,
    SemanticSegmentor,
    build_model,
)

__all__ = ["META_ARCH_REGISTRY", "build_model", "GeneralizedRCNN", "ProposalNetwork", "PanopticFPN",
           "SemanticSegmentor"]
from ..layers import ShapeSpec
from ..utils.absent import KEYPOINTS, MASK_HEAD_BASE, MMDET, absent_names
from .anchor_generator import ANCHOR_GENERATOR_REGISTRY, build_anchor_generator
from .backbone import BACKBONE_REGISTRY, FPN, Backbone, ResNet, build_backbone, build_resnet_backbone
from .compile import COMPILE_MODES, compile_model
from .meta_arch.rcnn import detector_postprocess
from .proposal_generator import PROPOSAL_GENERATOR_REGISTRY, RPN_HEAD_REGISTRY, build_proposal_generator, build_rpn_head
from .roi_heads import (
    ROI_BOX_HEAD_REGISTRY,
    ROI_HEADS_REGISTRY,
    ROI_MASK_HEAD_REGISTRY,
    FastRCNNOutputLayers,
    ROIHeads,
    StandardROIHeads,
    build_box_head,
    build_mask_head,
    build_roi_heads,
)
from .sem_seg_heads import SEM_SEG_HEADS_REGISTRY, build_sem_seg_head
from .test_time_augmentation import DatasetMapperTTA, GeneralizedRCNNWithTTA, SemanticSegmentorWithTTA, build_tta_model

__all__ += [
    "BACKBONE_REGISTRY", "build_backbone", "Backbone", "ShapeSpec", "FPN", "ResNet", "build_resnet_backbone",
    "ANCHOR_GENERATOR_REGISTRY", "build_anchor_generator", "detector_postprocess",
    "PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator", "RPN_HEAD_REGISTRY", "build_rpn_head",
    "ROI_HEADS_REGISTRY", "ROIHeads", "StandardROIHeads", "build_roi_heads", "FastRCNNOutputLayers",
    "ROI_BOX_HEAD_REGISTRY", "build_box_head", "ROI_MASK_HEAD_REGISTRY", "build_mask_head",
    "SEM_SEG_HEADS_REGISTRY", "build_sem_seg_head", "COMPILE_MODES", "compile_model",
    "DatasetMapperTTA", "GeneralizedRCNNWithTTA", "SemanticSegmentorWithTTA", "build_tta_model",
]

__getattr__ = absent_names(__name__, {
    "ROI_KEYPOINT_HEAD_REGISTRY": KEYPOINTS,
    "BaseKeypointRCNNHead": KEYPOINTS,
    "build_keypoint_head": KEYPOINTS,
    "BaseMaskRCNNHead": MASK_HEAD_BASE,
    "MMDetBackbone": MMDET,
    "MMDetDetector": MMDET,
    "RetinaNet": "one-stage detectors are not provided; use GeneralizedRCNN (META_ARCHITECTURE 'GeneralizedRCNN').",
    "ResNetBlockBase": "ResNet stages are torchvision's (torchvision.models.resnet.BasicBlock / Bottleneck), wrapped "
                       "by modeling.ResNet.",
    "make_stage": "ResNet stages come from torchvision.models.resnet (modeling.backbone.resnet.make_res5_stage builds "
                  "the C4 res5 head).",
})
