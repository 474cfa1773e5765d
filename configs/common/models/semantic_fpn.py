# Semantic FPN (the semantic branch of Panoptic FPN) on a ResNet-50-FPN, trained from scratch
# (MODEL.WEIGHTS empty in the YAML twin, configs/Base-SemanticFPN.yaml). Children set
# model.sem_seg_head.num_classes (= len(stuff_classes) of the dataset).
from seg_research.config import LazyCall as L
from seg_research.layers import ShapeSpec
from seg_research.modeling.backbone import FPN, LastLevelMaxPool, ResNet
from seg_research.modeling.meta_arch import SemanticSegmentor
from seg_research.modeling.sem_seg_heads import SemSegFPNHead

model = L(SemanticSegmentor)(
    backbone=L(FPN)(
        bottom_up=L(ResNet)(
            depth=50,
            out_features=["res2", "res3", "res4", "res5"],
            norm="FrozenBN",
            freeze_at=2,
            stride_in_1x1=True,
        ),
        in_features="${.bottom_up.out_features}",
        out_channels=256,
        top_block=L(LastLevelMaxPool)(),
    ),
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
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[57.375, 57.120, 58.395],
)
