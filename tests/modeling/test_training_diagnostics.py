"""Training diagnostics the models put into the EventStorage (detectron2's names): RPN anchor
counts, ROI sample counts, Fast R-CNN classification and Mask R-CNN mask statistics, and the
semantic heads' pixel accuracy. Every expected number is counted by hand from the tensors built
here; a short DefaultTrainer run checks that they reach metrics.json, TensorBoard and
tools/plot_metrics.py."""
import importlib.util
import json
import os

import pytest
import torch
from torch import nn

from seg_research.config import get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_model
from seg_research.modeling.backbone.resnet import make_res5_stage
from seg_research.modeling.box_regression import Box2BoxTransform
from seg_research.modeling.matcher import Matcher
from seg_research.modeling.poolers import ROIPooler
from seg_research.modeling.proposal_generator.rpn import RPN
from seg_research.modeling.roi_heads import FastRCNNOutputLayers, Res5ROIHeads, StandardROIHeads
from seg_research.modeling.roi_heads.box_head import FastRCNNConvFCHead
from seg_research.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead, mask_rcnn_loss
from seg_research.modeling.roi_heads.roi_heads import ROIHeads
from seg_research.modeling.sem_seg_heads import SemSegFPNHead, put_pixel_accuracy
from seg_research.structures import BitMasks, Boxes, Instances
from seg_research.utils.events import EventStorage, current_event_storage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MASK_RCNN_EVENTS = {
    "rpn/num_pos_anchors", "rpn/num_neg_anchors", "roi_head/num_fg_samples", "roi_head/num_bg_samples",
    "fast_rcnn/cls_accuracy", "fast_rcnn/fg_cls_accuracy", "fast_rcnn/false_negative",
    "mask_rcnn/accuracy", "mask_rcnn/false_positive", "mask_rcnn/false_negative",
}


def _values(storage: EventStorage, name: str) -> list:
    return [value for value, _ in storage.history(name).values()]


def test_current_event_storage_is_none_outside_and_the_innermost_inside():
    assert current_event_storage() is None
    with EventStorage() as outer:
        assert current_event_storage() is outer
        with EventStorage() as inner:
            assert current_event_storage() is inner
        assert current_event_storage() is outer
    assert current_event_storage() is None


# ---------------------------------------------------------------- RPN


def _rpn(batch_size_per_image=256, positive_fraction=0.5):
    return RPN(in_features=["p2"], head=nn.Identity(), anchor_generator=nn.Identity(),
               anchor_matcher=Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True),
               box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)),
               batch_size_per_image=batch_size_per_image, positive_fraction=positive_fraction,
               pre_nms_topk=(10, 10), post_nms_topk=(10, 10))


# IoU with the GT box [0, 0, 10, 10]: 1.0, 0.8, 0.5, 0, 0, 0.2 -> labels 1, 1, -1 (between 0.3 and 0.7), 0, 0, 0
ANCHORS = [Boxes(torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 8], [0, 0, 10, 5]])),
           Boxes(torch.tensor([[20.0, 20, 30, 30], [50, 50, 60, 60], [0, 0, 10, 2]]))]


def _rpn_losses_in_storage(rpn):
    gt = [Instances((64, 64), gt_boxes=Boxes(torch.tensor([[0.0, 0, 10, 10]]))),
          Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)))]  # no object: its 6 anchors are background
    gt_labels, matched = rpn.label_and_sample_anchors(ANCHORS, gt)
    logits = [torch.zeros(2, 3), torch.zeros(2, 3)]
    deltas = [torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)]
    with EventStorage() as storage:
        losses = rpn.losses(ANCHORS, logits, gt_labels, deltas, matched)
    return storage, losses


def test_rpn_puts_sampled_positive_and_negative_anchors_per_image():
    storage, losses = _rpn_losses_in_storage(_rpn())
    # image 1: 2 positive, 3 negative; image 2: 0 positive, 6 negative -> per image 1.0 and 4.5
    assert _values(storage, "rpn/num_pos_anchors") == [1.0]
    assert _values(storage, "rpn/num_neg_anchors") == [4.5]
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"}


def test_rpn_counts_only_the_sampled_anchors():
    # 4 per image, at most 1 positive: image 1 samples 1 positive + 3 negatives, image 2 4 negatives
    torch.manual_seed(0)
    storage, _ = _rpn_losses_in_storage(_rpn(batch_size_per_image=4, positive_fraction=0.25))
    assert _values(storage, "rpn/num_pos_anchors") == [0.5]
    assert _values(storage, "rpn/num_neg_anchors") == [3.5]


def test_rpn_losses_work_outside_an_event_storage():
    rpn = _rpn()
    gt_labels, matched = rpn.label_and_sample_anchors(ANCHORS, [Instances((64, 64), gt_boxes=Boxes(
        torch.tensor([[0.0, 0, 10, 10]])))])
    losses = rpn.losses(ANCHORS, [torch.zeros(1, 3)] * 2, gt_labels, [torch.zeros(1, 3, 4)] * 2, matched)
    assert torch.isfinite(losses["loss_rpn_cls"])


# ---------------------------------------------------------------- ROI sampling


GT_BOX = [0.0, 0.0, 10.0, 10.0]
# IoU with GT_BOX: 1.0, 0.9 (foreground at 0.5), 0.0, 0.4 (background)
PROPOSALS = [[0.0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [0, 0, 10, 4]]


def _proposals_and_targets():
    proposals = [Instances((64, 64), proposal_boxes=Boxes(torch.tensor(PROPOSALS))),
                 Instances((64, 64), proposal_boxes=Boxes(torch.tensor([[30.0, 30, 40, 40], [1, 1, 5, 5],
                                                                        [40, 0, 60, 20]])))]
    targets = [Instances((64, 64), gt_boxes=Boxes(torch.tensor([GT_BOX])), gt_classes=torch.tensor([2])),
               Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64))]
    return proposals, targets


@pytest.mark.parametrize("batch_size,fraction,fg,bg", [
    # image 1: 3 foreground (2 proposals + the appended GT), 2 background; image 2: 3 background
    (512, 0.25, (3 + 0) / 2, (2 + 3) / 2),
    # 4 per image, at most 2 foreground: image 1 2 fg + 2 bg; image 2 3 bg
    (4, 0.5, (2 + 0) / 2, (2 + 3) / 2),
])
def test_roi_heads_put_sampled_foreground_and_background_per_image(batch_size, fraction, fg, bg):
    torch.manual_seed(0)
    heads = ROIHeads(num_classes=3, batch_size_per_image=batch_size, positive_fraction=fraction,
                     proposal_matcher=Matcher([0.5], [0, 1]))
    proposals, targets = _proposals_and_targets()
    with EventStorage() as storage:
        sampled = heads.label_and_sample_proposals(proposals, targets)
    assert _values(storage, "roi_head/num_fg_samples") == [fg]
    assert _values(storage, "roi_head/num_bg_samples") == [bg]
    assert sum(int((p.gt_classes < 3).sum()) for p in sampled) == 2 * fg  # the counts describe what is returned
    sampled = heads.label_and_sample_proposals(proposals, targets)  # outside a storage: no error, nothing put
    assert len(sampled) == 2


# ---------------------------------------------------------------- Fast R-CNN classification


def _predictor(num_classes=3):
    return FastRCNNOutputLayers(ShapeSpec(channels=4), box2box_transform=Box2BoxTransform((10, 10, 5, 5)),
                                num_classes=num_classes)


def _rois(gt_classes):
    n = len(gt_classes)
    boxes = Boxes(torch.tensor([[0.0, 0, 10, 10]]).repeat(n, 1))
    return Instances((64, 64), proposal_boxes=boxes, gt_boxes=boxes.clone(), gt_classes=torch.tensor(gt_classes))


def _logits_predicting(classes, num_columns=4):
    logits = torch.zeros(len(classes), num_columns)
    logits[torch.arange(len(classes)), torch.tensor(classes)] = 3.0
    return logits


def test_fast_rcnn_puts_classification_accuracy_fg_accuracy_and_false_negatives():
    # K = 3, background 3. Seven ROIs over two images.
    gt = [0, 1, 2, 3, 3, 1, 2]
    pred = [0, 2, 3, 3, 3, 1, 1]
    # right: ROIs 0, 3, 4, 5 -> 4/7; foreground ROIs 0, 1, 2, 5, 6: right 0 and 5 -> 2/5;
    # foreground predicted background: ROI 2 -> 1/5
    predictions = (_logits_predicting(pred), torch.zeros(7, 12))
    with EventStorage() as storage:
        losses = _predictor().losses(predictions, [_rois(gt[:3]), _rois(gt[3:])])
    assert _values(storage, "fast_rcnn/cls_accuracy") == [pytest.approx(4 / 7)]
    assert _values(storage, "fast_rcnn/fg_cls_accuracy") == [pytest.approx(2 / 5)]
    assert _values(storage, "fast_rcnn/false_negative") == [pytest.approx(1 / 5)]
    assert set(losses) == {"loss_cls", "loss_box_reg"}


def test_fast_rcnn_without_foreground_puts_only_the_accuracy():
    predictions = (_logits_predicting([3, 0]), torch.zeros(2, 12))
    with EventStorage() as storage:
        _predictor().losses(predictions, [_rois([3, 3])])
    assert storage.latest().keys() == {"fast_rcnn/cls_accuracy"}
    assert _values(storage, "fast_rcnn/cls_accuracy") == [0.5]


# ---------------------------------------------------------------- Mask R-CNN masks


def test_mask_stats_count_pixels_of_the_gt_class_logits():
    # two 2x2 ROIs of a class-agnostic head; a logit of exactly 0 predicts background
    logits = torch.tensor([[[1.0, -1.0], [2.0, -3.0]], [[0.0, 5.0], [-2.0, 0.5]]])[:, None]
    gt = torch.tensor([[[1, 1], [0, 0]], [[0, 1], [0, 0]]], dtype=torch.bool)
    # ROI 0: (0,1) missed (false negative), (1,0) false positive; ROI 1: (1,1) false positive.
    # 8 pixels, 3 wrong; 3 GT-foreground pixels (1 missed), 5 GT-background (2 predicted foreground)
    boxes = Boxes(torch.tensor([[0.0, 0, 2, 2], [0, 0, 2, 2]]))
    instances = [Instances((2, 2), proposal_boxes=boxes, gt_classes=torch.tensor([0, 0]), gt_masks=BitMasks(gt))]
    with EventStorage() as storage:
        loss = mask_rcnn_loss(logits, instances)
    assert _values(storage, "mask_rcnn/accuracy") == [pytest.approx(5 / 8)]
    assert _values(storage, "mask_rcnn/false_positive") == [pytest.approx(2 / 5)]
    assert _values(storage, "mask_rcnn/false_negative") == [pytest.approx(1 / 3)]
    assert torch.isfinite(loss)


def test_mask_loss_without_foreground_rois_puts_nothing():
    with EventStorage() as storage:
        mask_rcnn_loss(torch.zeros(0, 1, 4, 4), [])
    assert storage.latest() == {}


# ---------------------------------------------------------------- whole ROI heads, FPN and C4


def _constant_heads(heads):
    """Box predictor always predicting class 1, mask head logit -1 everywhere."""
    predictor = heads.box_predictor
    nn.init.zeros_(predictor.cls_score.weight)
    with torch.no_grad():
        predictor.cls_score.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    nn.init.zeros_(heads.mask_head.predictor.weight)
    nn.init.constant_(heads.mask_head.predictor.bias, -1.0)
    return heads.train()


def _heads_inputs(channels, stride):
    torch.manual_seed(0)
    features = torch.randn(1, channels, 128 // stride, 128 // stride)
    proposals = [Instances((128, 128), proposal_boxes=Boxes(torch.tensor([[0.0, 0, 60, 60], [64, 64, 120, 120]])))]
    full = torch.ones(1, 128, 128, dtype=torch.bool)  # the whole image: every mask target pixel is foreground
    targets = [Instances((128, 128), gt_boxes=Boxes(torch.tensor([[2.0, 2, 62, 60]])), gt_classes=torch.tensor([1]),
                         gt_masks=BitMasks(full))]
    return features, proposals, targets


def _check_heads_events(storage):
    # proposal 0 (IoU 0.905) and the appended GT box are foreground (class 1), proposal 1 background
    assert _values(storage, "roi_head/num_fg_samples") == [2.0]
    assert _values(storage, "roi_head/num_bg_samples") == [1.0]
    # every ROI predicted class 1: 2 of 3 right, both foreground ROIs right, none called background
    assert _values(storage, "fast_rcnn/cls_accuracy") == [pytest.approx(2 / 3)]
    assert _values(storage, "fast_rcnn/fg_cls_accuracy") == [1.0]
    assert _values(storage, "fast_rcnn/false_negative") == [0.0]
    # every mask pixel predicted background, every target pixel foreground
    assert _values(storage, "mask_rcnn/accuracy") == [0.0]
    assert _values(storage, "mask_rcnn/false_positive") == [0.0]
    assert _values(storage, "mask_rcnn/false_negative") == [1.0]


def test_standard_roi_heads_put_the_sampling_box_and_mask_events():
    features, proposals, targets = _heads_inputs(8, 8)
    pooled = ShapeSpec(channels=8, height=4, width=4)
    box_head = FastRCNNConvFCHead(pooled, conv_dims=[], fc_dims=[16])
    heads = _constant_heads(StandardROIHeads(
        num_classes=2, batch_size_per_image=8, positive_fraction=0.5, proposal_matcher=Matcher([0.5], [0, 1]),
        box_in_features=["p3"], box_pooler=ROIPooler(4, [1 / 8], 0, "ROIAlignV2"), box_head=box_head,
        box_predictor=FastRCNNOutputLayers(ShapeSpec(channels=16), box2box_transform=Box2BoxTransform((10, 10, 5, 5)),
                                           num_classes=2),
        mask_in_features=["p3"], mask_pooler=ROIPooler(4, [1 / 8], 0, "ROIAlignV2"),
        mask_head=MaskRCNNConvUpsampleHead(pooled, num_classes=2, conv_dims=[8, 8]),
    ))
    with EventStorage() as storage:
        _, losses = heads(None, {"p3": features}, proposals, targets)
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask"}
    _check_heads_events(storage)


def test_res5_roi_heads_put_the_sampling_box_and_mask_events():
    features, proposals, targets = _heads_inputs(256, 16)
    heads = _constant_heads(Res5ROIHeads(
        num_classes=2, batch_size_per_image=8, positive_fraction=0.5, proposal_matcher=Matcher([0.5], [0, 1]),
        in_features=["res4"], pooler=ROIPooler(4, [1 / 16], 0, "ROIAlignV2"), res5=make_res5_stage(18, norm="BN"),
        box_predictor=FastRCNNOutputLayers(ShapeSpec(channels=512), box2box_transform=Box2BoxTransform((10, 10, 5, 5)),
                                           num_classes=2),
        mask_head=MaskRCNNConvUpsampleHead(ShapeSpec(channels=512, height=2, width=2), num_classes=2, conv_dims=[8]),
    ))
    with EventStorage() as storage:
        _, losses = heads(None, {"res4": features}, proposals, targets)
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask"}
    _check_heads_events(storage)


def test_mask_rcnn_training_step_puts_all_events_and_runs_without_a_storage():
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg).train()
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    gt = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[8.0, 8.0, 40.0, 40.0]])), gt_classes=torch.tensor([3]),
                   gt_masks=BitMasks(torch.ones(1, 64, 64, dtype=torch.bool)))
    batch = [{"image": image, "instances": gt}]
    with EventStorage() as storage:
        model(batch)
    assert set(storage.latest()) == MASK_RCNN_EVENTS
    assert all(len(storage.history(name).values()) == 1 for name in MASK_RCNN_EVENTS)
    assert set(model(batch)) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}
    model.eval()
    with EventStorage() as storage, torch.no_grad():
        model([{"image": image}])
    assert storage.latest() == {}  # inference puts nothing


# ---------------------------------------------------------------- semantic heads


FPN_SHAPES = {"p2": ShapeSpec(channels=4, stride=4)}


def test_pixel_accuracy_counts_labeled_pixels_only():
    # argmax per pixel: 0, 1, 2, 1 | 0, 0 ; targets 0, 2, 2, 255 | 1, 0 -> labeled 5, right 3
    logits = torch.tensor([[3.0, 0, 0], [0, 3, 0], [0, 0, 3], [0, 3, 0], [3, 0, 0], [3, 0, 0]]).T.reshape(1, 3, 2, 3)
    targets = torch.tensor([0, 2, 2, 255, 1, 0]).reshape(1, 2, 3)
    with EventStorage() as storage:
        put_pixel_accuracy("sem_seg_head/pixel_accuracy", logits, targets, 255)
        put_pixel_accuracy("all_ignored", logits, torch.full_like(targets, 255), 255)
    assert _values(storage, "sem_seg_head/pixel_accuracy") == [pytest.approx(3 / 5)]
    assert "all_ignored" not in storage.latest()
    put_pixel_accuracy("outside", logits, targets, 255)  # no storage: nothing to do, no error


def test_single_channel_pixel_accuracy_thresholds_the_logit_at_zero():
    logits = torch.tensor([[[[2.0, -1.0, 0.0, 0.5]]]])  # predicts 1, 0, 0, 1
    targets = torch.tensor([[[1, 1, 0, 0]]])
    with EventStorage() as storage:
        put_pixel_accuracy("acc", logits, targets, 255)
    assert _values(storage, "acc") == [0.5]


def test_sem_seg_head_forward_puts_its_pixel_accuracy_in_training_only():
    head = SemSegFPNHead(FPN_SHAPES, num_classes=3, conv_dims=4, common_stride=4)
    nn.init.zeros_(head.predictor.weight)
    with torch.no_grad():
        head.predictor.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))  # class 2 everywhere
    features = {"p2": torch.randn(2, 4, 4, 4)}
    targets = torch.zeros(2, 16, 16, dtype=torch.int64)
    targets[0, :4] = 2  # 64 pixels of class 2
    targets[1, :2] = 255  # 32 pixels ignored
    with EventStorage() as storage:
        head.train()(features, targets)
        head.losses(head.layers(features), targets)  # called alone (deep supervision): puts nothing
        head.eval()(features)
    assert _values(storage, "sem_seg_head/pixel_accuracy") == [pytest.approx(64 / (512 - 32))]
    quiet = SemSegFPNHead(FPN_SHAPES, num_classes=3, conv_dims=4, common_stride=4, pixel_accuracy_event=None)
    with EventStorage() as storage:
        quiet.train()(features, targets)
    assert storage.latest() == {}


def test_semantic_segmentor_with_an_auxiliary_head_puts_one_pixel_accuracy():
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", "semantic_fpn_R_18_instant_test.yaml"))
    cfg.merge_from_list(["MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES", '["p4"]'])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    inputs = [{"image": torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8), "sem_seg": torch.randint(0, 7, (64, 64))}]
    with EventStorage() as storage:
        model(inputs)
    assert set(storage.latest()) == {"sem_seg_head/pixel_accuracy"}
    assert len(storage.history("sem_seg_head/pixel_accuracy").values()) == 1


# ---------------------------------------------------------------- through the trainer and the tools


def _plot_metrics():
    spec = importlib.util.spec_from_file_location("plot_metrics", os.path.join(REPO, "tools", "plot_metrics.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mask_rcnn_training_run_writes_the_diagnostics_to_metrics_json_tensorboard_and_the_plot(tmp_path):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seg_research.engine import DefaultTrainer

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml"))
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path), "DATASETS.TEST", "()", "SOLVER.CHECKPOINT_PERIOD", 100])
    cfg.freeze()
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()

    lines = [json.loads(line) for line in open(tmp_path / "metrics.json")]
    assert lines, "metrics.json is empty"
    for line in lines:
        assert MASK_RCNN_EVENTS <= set(line), sorted(MASK_RCNN_EVENTS - set(line))
        for name in MASK_RCNN_EVENTS:
            bound = 64 if name.startswith("rpn/") else 32 if name.startswith("roi_head/") else 1  # per-image budgets
            assert 0.0 <= line[name] <= bound, (name, line[name])
        # the sampled ROIs of an image are at most ROI_HEADS.BATCH_SIZE_PER_IMAGE (32)
        assert line["roi_head/num_fg_samples"] + line["roi_head/num_bg_samples"] <= 32
        assert line["rpn/num_pos_anchors"] + line["rpn/num_neg_anchors"] <= 64
    print("metrics.json:", json.dumps(lines[-1]))

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert MASK_RCNN_EVENTS <= set(events.Tags()["scalars"])

    plot_metrics = _plot_metrics()
    groups = plot_metrics.group_series(plot_metrics.read_metrics(str(tmp_path / "metrics.json")))
    assert set(groups[plot_metrics.SAMPLES_PANEL]) == {
        "rpn/num_pos_anchors", "rpn/num_neg_anchors", "roi_head/num_fg_samples", "roi_head/num_bg_samples"}
    assert set(groups[plot_metrics.ACCURACY_PANEL]) == MASK_RCNN_EVENTS - set(groups[plot_metrics.SAMPLES_PANEL])
    assert "evaluation" not in groups  # no evaluation in this run: diagnostics are not mistaken for results
    assert plot_metrics.main([str(tmp_path)]) == 0
    # losses, learning rate and the two diagnostics panels, 8 x 3 inches each at 100 dpi
    assert Image.open(tmp_path / "metrics.png").size == (800, 1200)


def test_plot_metrics_puts_diagnostics_in_their_panels_and_keeps_evaluation_apart():
    plot_metrics = _plot_metrics()
    series = {name: [(1, 0.5)] for name in [
        "total_loss", "lr", "rpn/num_pos_anchors", "roi_head/num_bg_samples", "fast_rcnn/cls_accuracy",
        "mask_rcnn/false_positive", "sem_seg_head/pixel_accuracy", "sem_seg/pACC", "segm/AP", "segm/AP-circle"]}
    groups = plot_metrics.group_series(series)
    assert {title: sorted(group) for title, group in groups.items()} == {
        "losses": ["total_loss"], "learning rate": ["lr"],
        plot_metrics.SAMPLES_PANEL: ["roi_head/num_bg_samples", "rpn/num_pos_anchors"],
        plot_metrics.ACCURACY_PANEL: ["fast_rcnn/cls_accuracy", "mask_rcnn/false_positive",
                                      "sem_seg_head/pixel_accuracy"],
        "evaluation": ["segm/AP", "sem_seg/pACC"],
    }
    assert list(groups) == ["losses", "learning rate", plot_metrics.SAMPLES_PANEL, plot_metrics.ACCURACY_PANEL,
                            "evaluation"]
