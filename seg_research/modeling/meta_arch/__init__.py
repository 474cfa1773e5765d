from ...utils.absent import ONE_STAGE, absent_names
from .build import META_ARCH_REGISTRY, build_model
from .panoptic_fpn import PanopticFPN
from .rcnn import GeneralizedRCNN, ProposalNetwork
from .semantic_seg import SEM_SEG_HEADS_REGISTRY, SemanticSegmentor, SemSegFPNHead, build_sem_seg_head

__all__ = ["META_ARCH_REGISTRY", "build_model", "GeneralizedRCNN", "ProposalNetwork", "PanopticFPN", "SemanticSegmentor",
           "SEM_SEG_HEADS_REGISTRY", "SemSegFPNHead", "build_sem_seg_head"]

__getattr__ = absent_names(__name__, {"RetinaNet": ONE_STAGE, "DenseDetector": ONE_STAGE})
