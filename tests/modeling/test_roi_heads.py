"""ROI pooler, box head, Fast R-CNN outputs, mask head and StandardROIHeads, with hand-computed values."""
import math

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling.box_regression import Box2BoxTransform
from seg_research.modeling.poolers import ROIPooler
from seg_research.modeling.roi_heads import (
    ROI_HEADS_REGISTRY,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    MaskRCNNConvUpsampleHead,
    StandardROIHeads,
    build_roi_heads,
)
from seg_research.modeling.roi_heads.fast_rcnn import fast_rcnn_inference_single_image
from seg_research.modeling.roi_heads.mask_head import mask_rcnn_inference, mask_rcnn_loss
from seg_research.structures import BitMasks, Boxes, Instances, PolygonMasks


# ----------------------------------------------------------------------------- pooler
def test_pooler_assigns_levels_by_box_scale():
    pooler = ROIPooler(2, [1 / 4, 1 / 8, 1 / 16, 1 / 32], sampling_ratio=1, pooler_type="ROIAlignV2")
    # level l (p2..p5) is filled with the value l, so the pooled value tells the level
    features = [torch.full((1, 1, 64 // 2**k, 64 // 2**k), float(k + 2)) for k in range(4)]
    sides = [10.0, 112.0, 224.0, 447.0, 1000.0]  # floor(4 + log2(side / 224)), clamped to 2..5
    boxes = Boxes(torch.tensor([[0.0, 0.0, s, s] for s in sides]))
    out = pooler(features, [boxes])
    assert out.shape == (5, 1, 2, 2)
    assert out[:, 0, 0, 0].tolist() == [2.0, 3.0, 4.0, 4.0, 5.0]


def test_pooler_aligned_vs_unaligned_sampling_on_a_ramp():
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # value = column index
    box = [Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0]]))]
    aligned = ROIPooler(2, [1.0], 1, "ROIAlignV2")([ramp], box)
    unaligned = ROIPooler(2, [1.0], 1, "ROIAlign")([ramp], box)
    # bin centres x = 1 and 3; ROIAlignV2 samples pixel centres (x - 0.5), ROIAlign does not
    assert aligned[0, 0, 0].tolist() == [0.5, 2.5]
    assert unaligned[0, 0, 0].tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="POOLER_TYPE"):
        ROIPooler(2, [1.0], 1, "ROIPool")


def test_pooler_keeps_image_order_across_images_and_empty_images():
    pooler = ROIPooler(1, [1 / 4, 1 / 8], 1, "ROIAlignV2")
    features = [torch.arange(2.0).view(2, 1, 1, 1).expand(2, 1, 16, 16), torch.zeros(2, 1, 8, 8)]
    boxes = [Boxes(torch.zeros(0, 4)), Boxes(torch.tensor([[0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 16.0, 16.0]]))]
    out = pooler(features, boxes)
    assert out.flatten().tolist() == [1.0, 1.0]  # both boxes of image 1, from its level-2 map


# ----------------------------------------------------------------------------- box head and predictor
def test_conv_fc_box_head_shapes():
    head = FastRCNNConvFCHead(ShapeSpec(channels=8, height=7, width=7), conv_dims=[16], fc_dims=[32, 24])
    assert head(torch.zeros(5, 8, 7, 7)).shape == (5, 24)
    assert head.output_shape == ShapeSpec(channels=24)
    assert [name for name, _ in head.named_children()] == ["conv1", "flatten", "fc1", "fc_relu1", "fc2", "fc_relu2"]


def test_fast_rcnn_inference_threshold_per_class_nms_and_topk():
    boxes = torch.tensor([
        [0, 0, 10, 10, 0, 0, 10, 10],      # ROI 0: class 0, class 1
        [1, 0, 11, 10, 50, 50, 60, 60],    # ROI 1: class 0 IoU 0.82 with ROI 0's; class 1 outside the image
        [20, 20, 30, 30, -5, 0, 6, 10],    # ROI 2: class 1 clipped to (0, 0, 6, 10): IoU 0.6 with ROI 0's
    ], dtype=torch.float32)
    scores = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.45, 0.05], [0.04, 0.7, 0.26]])
    result, rois = fast_rcnn_inference_single_image(boxes, scores, (40, 40), score_thresh=0.05, nms_thresh=0.5,
                                                    topk_per_image=100)
    assert result.pred_boxes.tensor.tolist() == [[0, 0, 6, 10], [0, 0, 10, 10]]
    assert result.scores.tolist() == pytest.approx([0.7, 0.6])
    assert result.pred_classes.tolist() == [1, 0]
    assert rois.tolist() == [2, 0]
    result, rois = fast_rcnn_inference_single_image(boxes, scores, (40, 40), 0.05, 0.5, topk_per_image=1)
    assert result.pred_classes.tolist() == [1] and rois.tolist() == [2]


def _predictor(num_classes=2, **kwargs):
    predictor = FastRCNNOutputLayers(ShapeSpec(channels=4), box2box_transform=Box2BoxTransform((10, 10, 5, 5)),
                                     num_classes=num_classes, **kwargs)
    for p in predictor.parameters():
        torch.nn.init.zeros_(p)
    return predictor


def test_fast_rcnn_losses_by_hand():
    predictor = _predictor()
    proposals = Instances((32, 32), proposal_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 9.0, 9.0]])),
                          gt_classes=torch.tensor([1, 2]),  # a foreground ROI of class 1, a background ROI
                          gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 0.0, 0.0]])))
    losses = predictor.losses(predictor(torch.zeros(2, 4)), [proposals])
    # logits 0: uniform over 3 classes; deltas 0 vs (0, 10 * 5 / 10, 0, 5 log 2), summed over 2 ROIs
    assert losses["loss_cls"].item() == pytest.approx(math.log(3))
    assert losses["loss_box_reg"].item() == pytest.approx((5.0 + 5 * math.log(2)) / 2)


def test_fast_rcnn_inference_maps_background_last_and_clips():
    predictor = _predictor(test_score_thresh=0.05)
    with torch.no_grad():
        predictor.cls_score.bias.copy_(torch.tensor([1.0, 3.0, 0.0]))  # class 1, then class 0, background last
    proposals = Instances((20, 20), proposal_boxes=Boxes(torch.tensor([[2.0, 2.0, 30.0, 12.0]])))
    (result,), (rois,) = predictor.inference(predictor(torch.zeros(1, 4)), [proposals])
    assert result.pred_classes.tolist() == [1, 0]
    total = math.exp(1) + math.exp(3) + 1
    assert result.scores.tolist() == pytest.approx([math.exp(3) / total, math.exp(1) / total])
    assert result.pred_boxes.tensor[0].tolist() == [2.0, 2.0, 20.0, 12.0]
    assert rois.tolist() == [0, 0]


# ----------------------------------------------------------------------------- mask head
def test_mask_loss_uses_the_ground_truth_class_and_cropped_target():
    logits = torch.full((1, 3, 4, 4), 10.0)
    logits[:, 1] = 1.0  # the gt class's channel
    rois = Instances((16, 16), proposal_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]])),
                     gt_classes=torch.tensor([1]),
                     gt_masks=PolygonMasks([[[0.0, 0.0, 5.0, 0.0, 5.0, 10.0, 0.0, 10.0]]]))  # left half
    loss = mask_rcnn_loss(logits, [rois])
    # half of the 4x4 target is 1: mean of BCE(1, target 1) and BCE(1, target 0)
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2)
    bitmask = torch.zeros(1, 16, 16, dtype=torch.bool)
    bitmask[0, :10, :5] = True
    rois.gt_masks = BitMasks(bitmask)
    assert mask_rcnn_loss(logits, [rois]).item() == pytest.approx(loss.item(), abs=1e-6)


def test_mask_loss_without_foreground_is_zero_with_gradient():
    logits = torch.zeros(0, 3, 4, 4, requires_grad=True)
    loss = mask_rcnn_loss(logits, [Instances((8, 8))])
    assert loss.item() == 0.0 and loss.requires_grad


def test_mask_inference_selects_predicted_class_per_image():
    logits = torch.zeros(3, 2, 4, 4)
    logits[0, 1], logits[1, 0], logits[2, 1] = 2.0, -2.0, 0.0
    first = Instances((8, 8), pred_classes=torch.tensor([1, 0]))
    second = Instances((8, 8), pred_classes=torch.tensor([1]))
    mask_rcnn_inference(logits, [first, second])
    assert first.pred_masks.shape == (2, 1, 4, 4) and second.pred_masks.shape == (1, 1, 4, 4)
    assert first.pred_masks[0].unique().tolist() == pytest.approx([1 / (1 + math.exp(-2))])
    assert first.pred_masks[1].unique().tolist() == pytest.approx([1 / (1 + math.exp(2))])
    assert second.pred_masks.unique().tolist() == [0.5]


def test_mask_head_layers_and_output_size():
    head = MaskRCNNConvUpsampleHead(ShapeSpec(channels=8), num_classes=4, conv_dims=[16, 16, 8])
    assert [n for n, _ in head.named_children()] == ["mask_fcn1", "mask_fcn2", "deconv", "predictor"]
    assert head.layers(torch.zeros(3, 8, 14, 14)).shape == (3, 4, 28, 28)


# ----------------------------------------------------------------------------- StandardROIHeads
def _roi_heads_cfg():
    cfg = get_cfg()
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"  # detectron2's default is Res5ROIHeads (C4)
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 16
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 1
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 8
    cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 7
    return cfg


SHAPES = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}


def test_label_and_sample_proposals_appends_gt_and_matches():
    heads = build_roi_heads(_roi_heads_cfg(), SHAPES)
    assert isinstance(heads, StandardROIHeads) and "StandardROIHeads" in ROI_HEADS_REGISTRY
    gt = Instances((32, 32), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]])), gt_classes=torch.tensor([2]),
                   gt_masks=PolygonMasks([[[0.0, 0.0, 10.0, 0.0, 10.0, 10.0]]]))
    proposals = Instances((32, 32), proposal_boxes=Boxes(torch.tensor(
        [[0.0, 0.0, 10.0, 9.0], [0.0, 0.0, 10.0, 4.0], [20.0, 20.0, 30.0, 30.0]])))  # IoU 0.9, 0.4, 0
    (sampled,) = heads.label_and_sample_proposals([proposals], [gt])
    # 2 foreground (the 0.9 proposal and the appended gt box) first, then 2 background (class 3)
    assert sampled.gt_classes.tolist() == [2, 2, 3, 3]
    assert sorted(map(tuple, sampled.proposal_boxes.tensor[:2].tolist())) == [(0, 0, 10, 9), (0, 0, 10, 10)]
    assert sampled.gt_boxes.tensor[:2].tolist() == [[0, 0, 10, 10]] * 2
    assert len(sampled.gt_masks) == 4


def test_roi_heads_training_losses_and_inference_outputs():
    torch.manual_seed(0)
    heads = build_roi_heads(_roi_heads_cfg(), SHAPES)
    features = {"p2": torch.randn(2, 8, 8, 8), "p3": torch.randn(2, 8, 4, 4)}
    gt = Instances((32, 32), gt_boxes=Boxes(torch.tensor([[2.0, 2.0, 20.0, 20.0]])), gt_classes=torch.tensor([1]),
                   gt_masks=PolygonMasks([[[2.0, 2.0, 20.0, 2.0, 20.0, 20.0, 2.0, 20.0]]]))
    no_gt = Instances((32, 32), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64),
                      gt_masks=PolygonMasks([]))
    proposals = [Instances((32, 32), proposal_boxes=Boxes(torch.tensor([[0.0, 0.0, 16.0, 16.0], [4.0, 4.0, 30.0, 30.0]])))
                 for _ in range(2)]
    heads.train()
    _, losses = heads(None, features, proposals, [gt, no_gt])
    assert sorted(losses) == ["loss_box_reg", "loss_cls", "loss_mask"]
    assert losses["loss_cls"].item() == pytest.approx(math.log(4), abs=0.05)  # small init: ~uniform over 4
    assert losses["loss_mask"].item() == pytest.approx(math.log(2), abs=0.01)
    heads.eval()
    heads.box_predictor.test_score_thresh = 0.0
    with torch.no_grad():
        results, losses = heads(None, features, proposals)
    assert losses == {}
    for r in results:
        assert r.has("pred_boxes") and r.has("scores") and r.pred_classes.max() < 3
        assert r.pred_masks.shape == (len(r), 1, 14, 14)
