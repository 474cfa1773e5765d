"""C4 (Res5ROIHeads) and DC5 Mask R-CNN: the res5 head and dilation, and a few training /
inference steps of tiny models on synthetic data. detectron2 v0.6's parameter counts and
state_dict layout of the C4/DC5 zoo configs are checked with every other zoo config in
tests/model_zoo/test_model_zoo.py."""
import os

import pytest
import torch
from torch import nn

from seg_research.config import ConfigError, get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_model
from seg_research.modeling.backbone import build_backbone
from seg_research.modeling.backbone.resnet import make_res5_stage
from seg_research.modeling.box_regression import Box2BoxTransform
from seg_research.modeling.matcher import Matcher
from seg_research.modeling.poolers import ROIPooler
from seg_research.modeling.roi_heads import ROI_HEADS_REGISTRY, FastRCNNOutputLayers, Res5ROIHeads
from seg_research.structures import BitMasks, Boxes, Instances

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SIZE = 128
NUM_CLASSES = 3


def _cfg(name, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "COCO-InstanceSegmentation", f"{name}.yaml"))
    cfg.merge_from_list(list(opts))
    return cfg


def test_make_res5_stage_matches_the_backbone_stage():
    stage = make_res5_stage(50, norm="FrozenBN", stride_in_1x1=True)
    assert [type(b).__name__ for b in stage] == ["Bottleneck"] * 3
    assert stage[0].conv1.stride == (2, 2) and stage[0].conv2.stride == (1, 1)  # MSRA: stride on the 1x1
    assert stage(torch.zeros(2, 1024, 14, 14)).shape == (2, 2048, 7, 7)
    basic = make_res5_stage(18, norm="BN")
    assert [type(b).__name__ for b in basic] == ["BasicBlock"] * 2
    assert basic(torch.zeros(1, 256, 14, 14)).shape == (1, 512, 7, 7)


def test_res5_roi_heads_rejects_bad_configs():
    assert "Res5ROIHeads" in ROI_HEADS_REGISTRY
    with pytest.raises(ConfigError, match="RES5_DILATION"):
        build_model(_cfg("mask_rcnn_R_50_C4_1x", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
                         "MODEL.RESNETS.RES5_DILATION", 2))
    with pytest.raises(ConfigError, match="one feature map"):
        build_model(_cfg("mask_rcnn_R_50_C4_1x", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
                         "MODEL.RESNETS.OUT_FEATURES", ["res3", "res4"],
                         "MODEL.ROI_HEADS.IN_FEATURES", ["res3", "res4"]))


class _RecordingMaskHead(nn.Module):
    def forward(self, x, instances):
        self.inputs = (x, instances)
        return {"loss_mask": x.sum() * 0}


def test_res5_roi_heads_without_config_shares_res5_features_with_the_mask_head():
    torch.manual_seed(0)
    res5 = make_res5_stage(18, norm="BN").eval()  # eval: batch statistics would differ between ROI subsets
    heads = Res5ROIHeads(
        num_classes=2, batch_size_per_image=8, positive_fraction=0.5,
        proposal_matcher=Matcher([0.5], [0, 1]), in_features=["res4"],
        pooler=ROIPooler(4, [1 / 16], 0, "ROIAlignV2"), res5=res5,
        box_predictor=FastRCNNOutputLayers(ShapeSpec(channels=512), box2box_transform=Box2BoxTransform((10, 10, 5, 5)),
                                           num_classes=2),
        mask_head=_RecordingMaskHead(),
    ).train()
    heads.res5.eval()
    features = {"res4": torch.randn(1, 256, 8, 8)}
    proposals = [Instances((128, 128), proposal_boxes=Boxes(torch.tensor([[0.0, 0, 60, 60], [64, 64, 120, 120]])))]
    targets = [Instances((128, 128), gt_boxes=Boxes(torch.tensor([[2.0, 2, 62, 60]])), gt_classes=torch.tensor([1]))]
    sampled, losses = heads(None, features, proposals, targets)
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask"}
    x, foreground = heads.mask_head.inputs
    fg_boxes = [p.proposal_boxes for p in foreground]
    assert sum(len(p) for p in foreground) == 2 and (torch.cat([p.gt_classes for p in foreground]) == 1).all()
    torch.testing.assert_close(x, heads.res5(heads.pooler([features["res4"]], fg_boxes)))
    assert x.shape == (2, 512, 2, 2)


def _synthetic_batch(num_images=2):
    """Images of a few bright rectangles, each one instance with its box and mask."""
    g = torch.Generator().manual_seed(0)
    batch = []
    for i in range(num_images):
        image = torch.randint(0, 40, (3, IMAGE_SIZE, IMAGE_SIZE), generator=g, dtype=torch.uint8)
        boxes, masks = [], []
        for k in range(3):
            x0, y0 = 8 + 36 * k, 10 + 20 * ((i + k) % 3)
            x1, y1 = x0 + 30, y0 + 40 + 8 * k
            image[:, y0:y1, x0:x1] = 200
            mask = torch.zeros(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
            mask[y0:y1, x0:x1] = True
            boxes.append([x0, y0, x1, y1])
            masks.append(mask)
        instances = Instances((IMAGE_SIZE, IMAGE_SIZE), gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                              gt_classes=torch.tensor([0, 1, 2]), gt_masks=BitMasks(torch.stack(masks)))
        batch.append({"image": image, "height": IMAGE_SIZE, "width": IMAGE_SIZE, "instances": instances})
    return batch


_TINY = [
    "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "MODEL.ROI_HEADS.NUM_CLASSES", NUM_CLASSES,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 8, "MODEL.RPN.PRE_NMS_TOPK_TRAIN", 200,
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", 50, "MODEL.RPN.PRE_NMS_TOPK_TEST", 200, "MODEL.RPN.POST_NMS_TOPK_TEST", 10,
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.0, "TEST.DETECTIONS_PER_IMAGE", 5, "MODEL.DEVICE", "cpu",
    "MODEL.WEIGHTS", "",
    # from scratch: BatchNorm and unit-scale inputs keep the random network's activations bounded
    "MODEL.RESNETS.NORM", "BN", "MODEL.PIXEL_STD", [57.375, 57.12, 58.395],
]


@pytest.mark.slow
@pytest.mark.parametrize("name,mask_side", [
    ("mask_rcnn_R_50_C4_1x", 8),  # 8x8 res4 patches (POOLER_RESOLUTION 8 here) -> res5 4x4 -> deconv 8x8
    ("mask_rcnn_R_50_DC5_1x", 28),
])
def test_tiny_model_trains_and_predicts(name, mask_side):
    opts = list(_TINY)
    if "C4" in name:
        opts += ["MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", 8]  # res5 runs on every ROI: keep the patches small
    else:
        opts += ["MODEL.ROI_BOX_HEAD.FC_DIM", 64, "MODEL.ROI_MASK_HEAD.CONV_DIM", 32]
    torch.manual_seed(0)
    model = build_model(_cfg(name, *opts))
    batch = _synthetic_batch()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005, momentum=0.9)
    model.train()
    for _ in range(2):
        losses = model(batch)
        assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}
        assert all(torch.isfinite(v) for v in losses.values()), losses
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    if "C4" in name:  # the box and mask branches share res5, which gets gradients from both
        assert model.roi_heads.res5[0].conv1.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        raw = model.inference([{"image": x["image"]} for x in batch], do_postprocess=False)
        outputs = model([{"image": x["image"], "height": 64, "width": 96} for x in batch])
    for result in raw:
        assert len(result) > 0
        assert result.pred_masks.shape == (len(result), 1, mask_side, mask_side)
    for output in outputs:
        instances = output["instances"]
        assert set(instances.get_fields()) == {"pred_boxes", "scores", "pred_classes", "pred_masks"}
        assert 0 < len(instances) <= 5
        assert instances.pred_boxes.tensor.shape == (len(instances), 4)
        assert instances.scores.shape == instances.pred_classes.shape == (len(instances),)
        assert int(instances.pred_classes.max()) < NUM_CLASSES
        assert instances.pred_masks.shape == (len(instances), 64, 96)


def test_dc5_dilates_every_res5_block_as_detectron2_does():
    cfg = _cfg("mask_rcnn_R_50_DC5_1x", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64)
    backbone = build_backbone(cfg)  # BasicBlock: both 3x3 convs of every res5 block dilated
    assert [(b.conv1.dilation, b.conv2.dilation) for b in backbone.res5] == [((2, 2), (2, 2))] * 2
    assert backbone.output_shape()["res5"].stride == 16
    bottleneck = build_backbone(_cfg("mask_rcnn_R_50_DC5_1x"))
    assert [b.conv2.dilation for b in bottleneck.res5] == [(2, 2)] * 3
    cfg.MODEL.RESNETS.DILATION_CONVENTION = "torchvision"  # first block keeps the previous stage's dilation
    assert [b.conv2.dilation for b in build_backbone(cfg).res5] == [(1, 1), (2, 2)]
