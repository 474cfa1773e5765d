"""GeneralizedRCNN: torchvision Mask R-CNN equivalence through MODEL.WEIGHTS, weight conversion,
postprocessing, and the instant-test config end to end through DefaultTrainer."""
import json
import os

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import maskrcnn_resnet50_fpn

import seg_research.data.datasets.builtin  # noqa: F401  (registers shapes_*)
from seg_research.checkpoint import Checkpointer, CheckpointError
from seg_research.checkpoint.torchvision_maskrcnn import (
    convert_torchvision_maskrcnn_state_dict,
    is_torchvision_maskrcnn_state_dict,
)
from seg_research.config import get_cfg
from seg_research.modeling import build_model
from seg_research.modeling.meta_arch.rcnn import GeneralizedRCNN, detector_postprocess
from seg_research.structures import Boxes, Instances

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(REPO, "configs", "Base-RCNN-FPN.yaml")
INSTANT = os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml")
IMAGE_SIZE = 320
DETECTIONS = 20


def _torchvision_equivalent_cfg(weights: str):
    """Our Mask R-CNN R50-FPN with torchvision's settings (RGB 0-255 input, its mean/std ×255)."""
    cfg = get_cfg()
    cfg.merge_from_file(BASE)
    cfg.merge_from_list([
        "MODEL.MASK_ON", True, "MODEL.RESNETS.STRIDE_IN_1X1", False, "MODEL.RESNETS.NORM", "FrozenBN",
        "MODEL.ROI_HEADS.NUM_CLASSES", 90, "INPUT.FORMAT", "RGB", "MODEL.ANCHOR_GENERATOR.ROUND_CELLS", True,
        "MODEL.PIXEL_MEAN", [0.485 * 255, 0.456 * 255, 0.406 * 255],
        "MODEL.PIXEL_STD", [0.229 * 255, 0.224 * 255, 0.225 * 255],
        "MODEL.RPN.PRE_NMS_TOPK_TEST", 1000, "MODEL.RPN.POST_NMS_TOPK_TEST", 1000,
        "MODEL.RPN.SMOOTH_L1_BETA", 1.0 / 9,
        "MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIAlign", "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", 2,
        "MODEL.ROI_MASK_HEAD.POOLER_TYPE", "ROIAlign", "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO", 2,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.05, "MODEL.ROI_HEADS.NMS_THRESH_TEST", 0.5,
        "TEST.DETECTIONS_PER_IMAGE", DETECTIONS, "MODEL.WEIGHTS", weights,
    ])
    cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 1e-3  # torchvision's RPN min_size (the default key is an int)
    return cfg


def _random_torchvision_maskrcnn() -> nn.Module:
    """torchvision Mask R-CNN, random but deterministic, with non-trivial BN statistics and
    class biases that give a few confident classes (random heads score ~1/91 everywhere)."""
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=IMAGE_SIZE, max_size=IMAGE_SIZE,
                                  box_detections_per_img=DETECTIONS)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
        # offsets chosen so that the top detections mix the three classes
        model.roi_heads.box_predictor.cls_score.bias[1:4] += torch.tensor([4.14, 4.0, 4.22])
    return model.eval()


def _blocky_image() -> torch.Tensor:
    """uint8 (3, 320, 320) RGB image of 16×16-pixel random colour blocks."""
    g = torch.Generator().manual_seed(1)
    blocks = torch.randint(0, 256, (1, 3, IMAGE_SIZE // 16, IMAGE_SIZE // 16), generator=g).float()
    return nn.functional.interpolate(blocks, size=(IMAGE_SIZE, IMAGE_SIZE), mode="nearest")[0].to(torch.uint8)


@pytest.mark.slow
def test_inference_matches_torchvision_maskrcnn_loaded_through_model_weights(tmp_path, caplog):
    tv_model = _random_torchvision_maskrcnn()
    weights = str(tmp_path / "tv_maskrcnn.pth")
    torch.save(tv_model.state_dict(), weights)
    cfg = _torchvision_equivalent_cfg(weights)
    model = build_model(cfg).eval()
    with caplog.at_level("INFO"):
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
    assert "torchvision Mask R-CNN" in caplog.text
    assert "not in the checkpoint" not in caplog.text and "not used by the model" not in caplog.text

    image = _blocky_image()
    with torch.no_grad():
        expected = tv_model([image.float() / 255])[0]
        ours = model([{"image": image, "height": IMAGE_SIZE, "width": IMAGE_SIZE}])[0]["instances"]

    assert len(expected["boxes"]) == DETECTIONS and len(ours) == DETECTIONS
    assert set(expected["labels"].tolist()) == {1, 2, 3}  # per-class NMS and class mapping are exercised
    torch.testing.assert_close(ours.pred_boxes.tensor, expected["boxes"], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(ours.scores, expected["scores"], atol=1e-5, rtol=1e-4)
    assert torch.equal(ours.pred_classes, expected["labels"] - 1)
    expected_masks = expected["masks"][:, 0] > 0.5
    assert ours.pred_masks.dtype == torch.bool and ours.pred_masks.shape == (DETECTIONS, IMAGE_SIZE, IMAGE_SIZE)
    assert expected_masks.sum() > 1000
    # torchvision pastes into integer-rounded boxes, we (as detectron2) with the exact box corners:
    # the masks agree up to that sub-pixel resampling (random weights put most mask probabilities
    # near p = 0.5, so the resampling flips many pixels: measured mean IoU 0.78, min 0.61)
    inter = (ours.pred_masks & expected_masks).flatten(1).sum(1).float()
    union = (ours.pred_masks | expected_masks).flatten(1).sum(1).float()
    iou = inter[union > 0] / union[union > 0]
    assert iou.mean() >= 0.7 and iou.min() >= 0.5


def test_convert_torchvision_maskrcnn_moves_background_and_renames():
    state = {
        "backbone.body.conv1.weight": torch.zeros(64, 3, 7, 7),
        "backbone.body.bn1.num_batches_tracked": torch.tensor(3),
        "backbone.fpn.inner_blocks.3.0.bias": torch.zeros(8),
        "backbone.fpn.layer_blocks.0.0.weight": torch.zeros(8, 8, 3, 3),
        "rpn.head.conv.weight": torch.zeros(8, 8, 3, 3),  # old torchvision layout
        "rpn.head.cls_logits.bias": torch.zeros(3),
        "roi_heads.box_head.fc7.weight": torch.zeros(4, 4),
        "roi_heads.box_predictor.cls_score.bias": torch.tensor([9.0, 1.0, 2.0]),
        "roi_heads.box_predictor.bbox_pred.bias": torch.arange(12.0),
        "roi_heads.mask_head.mask_fcn2.weight": torch.zeros(8, 8, 3, 3),  # old layout
        "roi_heads.mask_head.3.0.bias": torch.zeros(8),
        "roi_heads.mask_predictor.conv5_mask.weight": torch.zeros(8, 8, 2, 2),
        "roi_heads.mask_predictor.mask_fcn_logits.bias": torch.tensor([9.0, 1.0, 2.0]),
    }
    assert is_torchvision_maskrcnn_state_dict(state.keys())
    converted = convert_torchvision_maskrcnn_state_dict(state)
    assert sorted(converted) == sorted([
        "backbone.bottom_up.stem.conv1.weight",
        "backbone.fpn_lateral5.0.bias",
        "backbone.fpn_output2.0.weight",
        "proposal_generator.rpn_head.conv.0.0.weight",
        "proposal_generator.rpn_head.objectness_logits.bias",
        "roi_heads.box_head.fc2.weight",
        "roi_heads.box_predictor.cls_score.bias",
        "roi_heads.box_predictor.bbox_pred.bias",
        "roi_heads.mask_head.mask_fcn2.0.weight",
        "roi_heads.mask_head.mask_fcn4.0.bias",
        "roi_heads.mask_head.deconv.weight",
        "roi_heads.mask_head.predictor.bias",
    ])
    assert converted["roi_heads.box_predictor.cls_score.bias"].tolist() == [1.0, 2.0, 9.0]
    assert converted["roi_heads.box_predictor.bbox_pred.bias"].tolist() == list(range(4, 12))
    assert converted["roi_heads.mask_head.predictor.bias"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="roi_heads.keypoint_head.x"):
        convert_torchvision_maskrcnn_state_dict({**state, "roi_heads.keypoint_head.x": torch.zeros(1)})


def _instant_cfg(output_dir: str = ""):
    cfg = get_cfg()
    cfg.merge_from_file(INSTANT)
    cfg.OUTPUT_DIR = output_dir
    return cfg


def test_checkpointer_loads_torchvision_classification_resnet_into_the_fpn_bottom_up(tmp_path, caplog):
    torch.manual_seed(0)
    classifier = resnet18()
    weights = str(tmp_path / "resnet18.pth")
    torch.save(classifier.state_dict(), weights)
    model = build_model(_instant_cfg())
    with caplog.at_level("WARNING"):
        Checkpointer(model).load(weights)
    assert torch.equal(model.backbone.bottom_up.res4[1].conv2.weight, classifier.layer3[1].conv2.weight)
    assert torch.equal(model.backbone.bottom_up.stem.bn1.running_var, classifier.bn1.running_var)
    # only the parts a classifier does not have are reported as missing
    assert "backbone.fpn_lateral2.0" in caplog.text and "roi_heads.box_head.fc1" in caplog.text
    assert "bottom_up.res2" not in caplog.text


def test_checkpointer_refuses_a_resnet_checkpoint_for_a_model_without_resnet(tmp_path):
    weights = str(tmp_path / "resnet18.pth")
    torch.save(resnet18().state_dict(), weights)
    with pytest.raises(CheckpointError, match="0 ResNets"):
        Checkpointer(nn.Linear(2, 2)).load(weights)


def test_detector_postprocess_rescales_boxes_and_pastes_masks():
    result = Instances((20, 40), pred_boxes=Boxes(torch.tensor([[10.0, 5.0, 30.0, 15.0], [39.0, 0.0, 39.0, 5.0]])),
                       scores=torch.tensor([0.9, 0.8]), pred_classes=torch.tensor([2, 0]),
                       pred_masks=torch.ones(2, 1, 28, 28))
    out = detector_postprocess(result, 40, 80)
    assert out.image_size == (40, 80)
    # the second box is empty (zero width) and dropped
    assert out.pred_boxes.tensor.tolist() == [[20.0, 10.0, 60.0, 30.0]]
    assert out.pred_classes.tolist() == [2]
    assert out.pred_masks.shape == (1, 40, 80) and out.pred_masks.dtype == torch.bool
    # an all-ones mask fills its box (pixels x 20..59, y 10..29); torchvision's paste works on
    # integer boxes, so it may spill at most one pixel over the border
    mask = out.pred_masks[0]
    assert mask[10:30, 20:60].all()
    assert mask.sum() - mask[9:31, 19:61].sum() == 0
    assert mask.sum() <= 22 * 42


def test_training_returns_the_five_losses_and_inference_the_original_size():
    cfg = _instant_cfg()
    model = build_model(cfg)
    assert isinstance(model, GeneralizedRCNN)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    gt = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[8.0, 8.0, 40.0, 40.0]])), gt_classes=torch.tensor([3]))
    from seg_research.structures import PolygonMasks
    gt.gt_masks = PolygonMasks([[[8.0, 8.0, 40.0, 8.0, 40.0, 40.0, 8.0, 40.0]]])
    empty = Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64),
                      gt_masks=PolygonMasks([]))
    losses = model([{"image": image, "instances": gt}, {"image": image, "instances": empty}])
    assert sorted(losses) == ["loss_box_reg", "loss_cls", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"]
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.roi_heads.mask_head.predictor.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        (out,) = model([{"image": image, "height": 128, "width": 96}])
    instances = out["instances"]
    assert instances.image_size == (128, 96)
    assert instances.pred_masks.shape[1:] == (128, 96)
    assert instances.pred_classes.max() < 4 if len(instances) else True


@pytest.mark.slow
def test_instant_test_trains_and_evaluates_through_default_trainer(tmp_path):
    from seg_research.engine import DefaultTrainer

    cfg = _instant_cfg(str(tmp_path))
    cfg.freeze()
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    assert set(results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert 0.0 <= results[task]["AP"] <= 100.0
        assert {"AP-circle", "AP-square", "AP-triangle", "AP-star"} <= set(results[task])
    files = set(os.listdir(tmp_path))
    assert {"model_final.pth", "metrics.json", "last_checkpoint"} <= files
    lines = [json.loads(line) for line in open(tmp_path / "metrics.json")]
    logged = {k for line in lines for k in line}
    assert {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask", "segm/AP"} <= logged


def test_coco_config_names_registered_coco_datasets_without_touching_disk():
    from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
    from seg_research.data.datasets.builtin import get_datasets_root

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "COCO-InstanceSegmentation", "mask_rcnn_R_50_FPN_1x.yaml"))
    assert cfg.MODEL.MASK_ON and cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
    assert cfg.MODEL.ROI_BOX_HEAD.NAME == "FastRCNNConvFCHead" and cfg.MODEL.RESNETS.DEPTH == 50
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        assert name in DatasetCatalog.list()
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "coco"
        assert meta.json_file.startswith(os.path.join(get_datasets_root(), "coco", "annotations", "instances_"))
    assert MetadataCatalog.get("coco_2017_val").image_root == os.path.join(get_datasets_root(), "coco", "val2017")
