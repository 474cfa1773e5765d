"""RPN: anchors, box coding, matcher, sampling, proposal filtering and losses, with hand-computed values."""
import math

import pytest
import torch

from seg_research.config import ConfigError, get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling.anchor_generator import DefaultAnchorGenerator, build_anchor_generator, cell_anchors
from seg_research.modeling.box_regression import Box2BoxTransform, box_regression_loss
from seg_research.modeling.matcher import Matcher
from seg_research.modeling.proposal_generator import (
    PROPOSAL_GENERATOR_REGISTRY,
    RPN,
    StandardRPNHead,
    build_proposal_generator,
    find_top_rpn_proposals,
)
from seg_research.modeling.sampling import subsample_labels
from seg_research.structures import Boxes, ImageList, Instances


# ----------------------------------------------------------------------------- anchors
def test_anchors_are_detectron2_cells_shifted_over_the_grid():
    gen = DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[[0.5, 1.0, 2.0]], strides=[4])
    (anchors,) = gen([torch.zeros(1, 8, 2, 3)])
    assert gen.num_anchors == [3]
    assert len(anchors) == 2 * 3 * 3
    # ratio 0.5 (h / w): 32 / sqrt(0.5) = 45.255 wide, 22.627 high; ratio 2: the transpose
    half_w, half_h = 16 * math.sqrt(2), 16 / math.sqrt(2)
    expected = [[-half_w, -half_h, half_w, half_h], [-16, -16, 16, 16], [-half_h, -half_w, half_h, half_w]]
    torch.testing.assert_close(anchors.tensor[:3], torch.tensor(expected))
    # location (row 1, column 2) is shifted by (x, y) = (8, 4); order (row, column, cell)
    torch.testing.assert_close(anchors.tensor[(1 * 3 + 2) * 3], torch.tensor(expected[0]) + torch.tensor([8, 4, 8, 4]))


def test_rounded_cells_are_torchvisions_and_cells_are_ordered_size_then_ratio():
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    rounded = cell_anchors([32], [0.5, 1.0, 2.0], round_cells=True)
    assert rounded.tolist() == [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]]
    assert torch.equal(rounded, AnchorGenerator(((32,),), ((0.5, 1.0, 2.0),)).cell_anchors[0])
    widths = [float(b[2] - b[0]) for b in cell_anchors([32, 64], [1.0, 4.0])]
    assert widths == [32.0, 16.0, 64.0, 32.0]


def test_anchor_offset_and_one_size_list_per_level():
    gen = DefaultAnchorGenerator(sizes=[[8], [16]], aspect_ratios=[[1.0]], strides=[4, 8], offset=0.5)
    level0, level1 = gen([torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 1)])
    assert level0.tensor.tolist() == [[-2, -2, 6, 6], [2, -2, 10, 6]]
    assert level1.tensor.tolist() == [[-4, -4, 12, 12]]


def test_anchor_config_with_wrong_number_of_levels_is_an_actionable_error():
    cfg = get_cfg()
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64]]
    with pytest.raises(ConfigError, match="one list per level"):
        build_anchor_generator(cfg, [ShapeSpec(channels=8, stride=s) for s in (4, 8, 16)])


# ----------------------------------------------------------------------------- box coding
def test_box2box_transform_deltas_by_hand_and_round_trip():
    src = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    target = torch.tensor([[5.0, 5.0, 15.0, 25.0]])
    # centres (5, 5) -> (10, 15), sizes 10x10 -> 10x20
    unit = Box2BoxTransform((1.0, 1.0, 1.0, 1.0))
    torch.testing.assert_close(unit.get_deltas(src, target), torch.tensor([[0.5, 1.0, 0.0, math.log(2)]]))
    weighted = Box2BoxTransform((10.0, 10.0, 5.0, 5.0))
    deltas = weighted.get_deltas(src, target)
    torch.testing.assert_close(deltas, torch.tensor([[5.0, 10.0, 0.0, 5 * math.log(2)]]))
    torch.testing.assert_close(weighted.apply_deltas(deltas, src), target)
    # two sets of deltas per box (class-specific) decode side by side
    two = weighted.apply_deltas(torch.cat([deltas, torch.zeros(1, 4)], dim=1), src)
    torch.testing.assert_close(two, torch.cat([target, src], dim=1))


def test_box_regression_loss_smooth_l1_and_giou():
    t = Box2BoxTransform((1.0, 1.0, 1.0, 1.0))
    src = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # target deltas (0, 0.5, 0, log 2)
    pred = torch.zeros(1, 4)
    l1 = box_regression_loss(t, src, pred, gt, "smooth_l1", 0.0)
    assert l1.item() == pytest.approx(0.5 + math.log(2))
    smooth = box_regression_loss(t, src, pred, gt, "smooth_l1", 1.0)  # 0.5 x^2 below beta 1
    assert smooth.item() == pytest.approx(0.5 * 0.25 + 0.5 * math.log(2) ** 2)
    giou = box_regression_loss(t, src, pred, gt, "giou")  # IoU 0.5, enclosing box = union
    assert giou.item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="smooth_l1"):
        box_regression_loss(t, src, pred, gt, "l2")


# ----------------------------------------------------------------------------- matcher and sampling
IOU = torch.tensor([[0.8, 0.5, 0.1, 0.2], [0.1, 0.6, 0.2, 0.25]])  # 2 gt x 4 predictions


def test_matcher_bands_and_low_quality_matches():
    matches, labels = Matcher([0.3, 0.7], [0, -1, 1])(IOU)
    assert matches.tolist() == [0, 1, 1, 1]
    assert labels.tolist() == [1, -1, 0, 0]
    # gt 1's best prediction (1, IoU 0.6) becomes foreground
    _, labels = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True)(IOU)
    assert labels.tolist() == [1, 1, 0, 0]
    _, labels = Matcher([0.5], [0, 1])(IOU)
    assert labels.tolist() == [1, 1, 0, 0]


def test_matcher_without_ground_truth_labels_everything_background():
    matches, labels = Matcher([0.3, 0.7], [0, -1, 1], True)(torch.zeros(0, 5))
    assert matches.tolist() == [0] * 5 and labels.tolist() == [0] * 5


def test_matcher_rejects_bad_thresholds():
    with pytest.raises(ValueError, match="3 labels"):
        Matcher([0.3, 0.7], [0, 1])


def test_subsample_labels_respects_fraction_and_groups():
    torch.manual_seed(0)
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, -1, 7, 7])  # bg_label 7 here, 0/1 foreground
    pos, neg = subsample_labels(labels, 4, 0.5, bg_label=7)
    assert len(pos) == 2 and len(neg) == 2
    assert set(pos.tolist()) <= set(range(8)) and set(neg.tolist()) == {9, 10}
    pos, neg = subsample_labels(torch.tensor([0, 0, 0, 1]), 4, 0.5, bg_label=0)
    assert pos.tolist() == [3] and sorted(neg.tolist()) == [0, 1, 2]  # too few positives: filled with negatives


# ----------------------------------------------------------------------------- proposal filtering
def test_find_top_rpn_proposals_topk_clip_small_boxes_and_nms_per_level():
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0],    # A, logit 3
                           [0.0, 0.0, 10.0, 9.0],     # B, logit 2: IoU 0.9 with A
                           [-5.0, -5.0, 5.0, 5.0],    # C, logit 1: clipped to (0, 0, 5, 5)
                           [20.0, 20.0, 20.0, 30.0],  # D, logit 4: zero width
                           [30.0, 30.0, 40.0, 40.0]]])  # E, logit 0: beyond pre_nms_topk
    logits = torch.tensor([[3.0, 2.0, 1.0, 4.0, 0.0]])
    (out,) = find_top_rpn_proposals([boxes], [logits], [(32, 32)], 0.7, pre_nms_topk=4, post_nms_topk=10,
                                    min_box_size=0.0)
    assert out.proposal_boxes.tensor.tolist() == [[0, 0, 10, 10], [0, 0, 5, 5]]
    assert out.objectness_logits.tolist() == [3.0, 1.0]
    (out,) = find_top_rpn_proposals([boxes], [logits], [(32, 32)], 0.7, 4, post_nms_topk=1, min_box_size=0.0)
    assert len(out) == 1
    # NMS runs within a level: B on its own level survives A
    (out,) = find_top_rpn_proposals([boxes[:, :1], boxes[:, 1:2]], [logits[:, :1], logits[:, 1:2]], [(32, 32)],
                                    0.7, 4, 10, 0.0)
    assert out.objectness_logits.tolist() == [3.0, 2.0]


# ----------------------------------------------------------------------------- the RPN module
def _tiny_rpn(**kwargs) -> RPN:
    head = StandardRPNHead(in_channels=1, num_anchors=1)
    for p in head.parameters():
        torch.nn.init.zeros_(p)
    args = dict(
        in_features=["p3"], head=head,
        anchor_generator=DefaultAnchorGenerator(sizes=[[16]], aspect_ratios=[[1.0]], strides=[8]),
        anchor_matcher=Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)),
        batch_size_per_image=256, positive_fraction=0.5, pre_nms_topk=(100, 100), post_nms_topk=(5, 3),
    )
    args.update(kwargs)
    return RPN(**args)


def test_rpn_labels_and_losses_by_hand():
    rpn = _tiny_rpn().train()
    images = ImageList(torch.zeros(1, 3, 32, 32), [(32, 32)])
    features = {"p3": torch.zeros(1, 1, 4, 4)}  # 16 anchors (8j - 8, 8i - 8, 8j + 8, 8i + 8)
    gt = Instances((32, 32), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 16.0, 20.0]])))
    anchors = rpn.anchor_generator([features["p3"]])
    (labels,), (matched,) = rpn.label_and_sample_anchors(anchors, [gt])
    # anchor (1, 1) = (0, 0, 16, 16): IoU 0.8, foreground; (2, 1) = (0, 8, 16, 24): IoU 0.5, ignored;
    # every other anchor has IoU < 0.3: background
    expected = torch.zeros(16, dtype=torch.int8)
    expected[1 * 4 + 1], expected[2 * 4 + 1] = 1, -1
    assert torch.equal(labels, expected)
    assert matched[5].tolist() == [0, 0, 16, 20]

    proposals, losses = rpn(images, features, [gt])
    # zero head: logits 0 -> BCE log 2 for each of the 15 sampled anchors; deltas 0 vs the
    # target (0, 0.125, 0, log 1.25) of the foreground anchor; both divided by 256 * 1 images
    assert losses["loss_rpn_cls"].item() == pytest.approx(15 * math.log(2) / 256)
    assert losses["loss_rpn_loc"].item() == pytest.approx((0.125 + math.log(1.25)) / 256)
    assert len(proposals) == 1 and len(proposals[0]) <= 5
    assert not proposals[0].proposal_boxes.tensor.requires_grad
    sum(losses.values()).backward()
    assert rpn.rpn_head.objectness_logits.bias.grad.abs().sum() > 0


def test_rpn_inference_uses_test_topk_and_no_ground_truth():
    rpn = _tiny_rpn().eval()
    images = ImageList(torch.zeros(2, 3, 32, 32), [(32, 32), (24, 32)])
    proposals, losses = rpn(images, {"p3": torch.randn(2, 1, 4, 4)})
    assert losses == {}
    assert [len(p) for p in proposals] == [3, 3]
    assert proposals[1].image_size == (24, 32)
    assert proposals[1].proposal_boxes.tensor[:, 3].max() <= 24


def test_rpn_from_config_and_registry():
    assert "RPN" in PROPOSAL_GENERATOR_REGISTRY
    cfg = get_cfg()
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3"]
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64]]
    shapes = {"p2": ShapeSpec(channels=16, stride=4), "p3": ShapeSpec(channels=16, stride=8)}
    rpn = build_proposal_generator(cfg, shapes)
    assert isinstance(rpn, RPN) and rpn.rpn_head.objectness_logits.out_channels == 3
    assert rpn.pre_nms_topk == {True: 12000, False: 6000}
    cfg.MODEL.RPN.IN_FEATURES = ["p7"]
    with pytest.raises(ConfigError, match="p7"):
        build_proposal_generator(cfg, shapes)
