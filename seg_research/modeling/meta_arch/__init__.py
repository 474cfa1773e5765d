from .build import META_ARCH_REGISTRY, build_model
from .panoptic_fpn import PanopticFPN
from .rcnn import GeneralizedRCNN, ProposalNetwork
from .semantic_seg import SemanticSegmentor
from .tiny_semseg import TinySemSegNet

__all__ = ["META_ARCH_REGISTRY", "build_model", "GeneralizedRCNN", "ProposalNetwork", "PanopticFPN", "SemanticSegmentor",
           "TinySemSegNet"]
