"""Mask2Former (Cheng et al., CVPR 2022): one mask-classification model for semantic, instance and
panoptic segmentation, with the official module and parameter names, so that the official
checkpoints load as they are.

Importing this package registers its modules in the library's registries (``MaskFormer`` in
``META_ARCH_REGISTRY``; ``MaskFormerHead`` and the pixel decoders in ``SEM_SEG_HEADS_REGISTRY``; the
transformer decoder in ``TRANSFORMER_DECODER_REGISTRY``; ``D2SwinTransformer`` in ``BACKBONE_REGISTRY``).
Add its keys with :func:`add_maskformer2_config` before merging one of its configs. The names are
those upstream's ``train_net.py`` imports from ``mask2former``.
"""
from . import data, evaluation, export, modeling  # export: registers MaskFormer with seg_research.export
from .config import add_maskformer2_config
from .data.dataset_mappers import (
    COCOInstanceNewBaselineDatasetMapper,
    COCOPanopticNewBaselineDatasetMapper,
    MaskFormerInstanceDatasetMapper,
    MaskFormerPanopticDatasetMapper,
    MaskFormerSemanticDatasetMapper,
)
from .evaluation import InstanceSegEvaluator
from .maskformer_model import MaskFormer
from .test_time_augmentation import SemanticSegmentorWithTTA

__all__ = ["add_maskformer2_config", "data", "modeling", "MaskFormer", "COCOInstanceNewBaselineDatasetMapper",
           "COCOPanopticNewBaselineDatasetMapper", "MaskFormerInstanceDatasetMapper", "MaskFormerPanopticDatasetMapper",
           "MaskFormerSemanticDatasetMapper", "SemanticSegmentorWithTTA", "evaluation",
           "InstanceSegEvaluator", "export"]
