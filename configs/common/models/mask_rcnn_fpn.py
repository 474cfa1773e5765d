# Mask R-CNN with a ResNet-50-FPN backbone, detectron2's COCO settings (80 classes), as a
# LazyConfig. Children import `model` and edit it, e.g. model.roi_heads.num_classes = 4.
# Channels that must agree with the FPN follow model.backbone.out_channels through ${...}.
from seg_research.config import LazyCall as L
from seg_research.layers import ShapeSpec
from seg_research.modeling.anchor_generator import DefaultAnchorGenerator
from seg_research.modeling.backbone import FPN, LastLevelMaxPool, ResNet
from seg_research.modeling.box_regression import Box2BoxTransform
from seg_research.modeling.matcher import Matcher
from seg_research.modeling.meta_arch import GeneralizedRCNN
from seg_research.modeling.poolers import ROIPooler
from seg_research.modeling.proposal_generator import RPN, StandardRPNHead
from seg_research.modeling.roi_heads import (
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    MaskRCNNConvUpsampleHead,
    StandardROIHeads,
)

model = L(GeneralizedRCNN)(
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
    proposal_generator=L(RPN)(
        in_features=["p2", "p3", "p4", "p5", "p6"],
        head=L(StandardRPNHead)(in_channels="${...backbone.out_channels}", num_anchors=3),
        anchor_generator=L(DefaultAnchorGenerator)(
            sizes=[[32], [64], [128], [256], [512]],  # one size per level, p2..p6
            aspect_ratios=[[0.5, 1.0, 2.0]],  # height / width, every level
            strides=[4, 8, 16, 32, 64],
            offset=0.0,
        ),
        anchor_matcher=L(Matcher)(thresholds=[0.3, 0.7], labels=[0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_topk=(2000, 1000),  # (training, inference), per level
        post_nms_topk=(1000, 1000),  # (training, inference), per image
        nms_thresh=0.7,
    ),
    roi_heads=L(StandardROIHeads)(
        num_classes=80,
        batch_size_per_image=512,
        positive_fraction=0.25,
        proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
        box_in_features=["p2", "p3", "p4", "p5"],
        box_pooler=L(ROIPooler)(
            output_size=7,
            scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
            sampling_ratio=0,
            pooler_type="ROIAlignV2",
        ),
        box_head=L(FastRCNNConvFCHead)(
            input_shape=L(ShapeSpec)(channels="${....backbone.out_channels}", height=7, width=7),
            conv_dims=[],
            fc_dims=[1024, 1024],
        ),
        box_predictor=L(FastRCNNOutputLayers)(
            input_shape=L(ShapeSpec)(channels=1024),  # = box_head.fc_dims[-1]
            test_score_thresh=0.05,
            test_topk_per_image=100,
            box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
            num_classes="${..num_classes}",
        ),
        mask_in_features=["p2", "p3", "p4", "p5"],
        mask_pooler=L(ROIPooler)(
            output_size=14,
            scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
            sampling_ratio=0,
            pooler_type="ROIAlignV2",
        ),
        mask_head=L(MaskRCNNConvUpsampleHead)(
            input_shape=L(ShapeSpec)(channels="${....backbone.out_channels}", width=14, height=14),
            num_classes="${..num_classes}",
            conv_dims=[256, 256, 256, 256, 256],  # 4 convs, then the deconv's channels
        ),
    ),
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[1.0, 1.0, 1.0],  # detectron2's: MSRA ImageNet weights take BGR 0-255 minus the mean
    input_format="BGR",
)
