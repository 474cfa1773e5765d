# Semantic FPN (the semantic branch of Panoptic FPN) on mask_rcnn_fpn.py's ResNet-50-FPN, trained from scratch
# (MODEL.WEIGHTS empty in the YAML twin, configs/Base-SemanticFPN.yaml). Children set
# model.sem_seg_head.num_classes (= len(stuff_classes) of the dataset).
from seg_research.config import LazyCall as L
from seg_research.layers import ShapeSpec
from seg_research.modeling.meta_arch import SemanticSegmentor
from seg_research.modeling.sem_seg_heads import SemSegFPNHead

from .mask_rcnn_fpn import model as _rcnn

model = L(SemanticSegmentor)(
    backbone=_rcnn.backbone,
    sem_seg_head=L(SemSegFPNHead)(
        input_shape={
            f"p{level}": L(ShapeSpec)(stride=2**level, channels="${....backbone.out_channels}")
            for level in (2, 3, 4, 5)
        },
        num_classes=54,
        conv_dims=128,
        common_stride=4,
        norm="GN",
        ignore_value=255,
        loss_types=("cross_entropy",),
        loss_weights=(1.0,),
    ),
    pixel_mean=_rcnn.pixel_mean,
    pixel_std=[57.375, 57.120, 58.395],  # trained from scratch: unit-variance input (as Base-SemanticFPN.yaml)
)
