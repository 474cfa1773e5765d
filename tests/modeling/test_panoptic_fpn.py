"""Panoptic fusion on hand-made predictions, the PanopticFPN meta-architecture (losses, outputs),
its training data (``*_panoptic_separated`` through the DatasetMapper) and the instant config
through DefaultTrainer and the PQ evaluator."""
import json
import math
import os

import numpy as np
import pytest
import torch

import seg_research.data.datasets.builtin  # noqa: F401  (registers shapes_*)
from seg_research.config import ConfigError, get_cfg
from seg_research.data import DatasetCatalog
from seg_research.data.detection_utils import read_panoptic_ids
from seg_research.data.mapper import DatasetMapper
from seg_research.modeling import build_model
from seg_research.modeling.meta_arch import PanopticFPN
from seg_research.modeling.panoptic_fusion import combine_semantic_and_instance_outputs
from seg_research.structures import BitMasks, Boxes, Instances

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTANT = os.path.join(REPO, "configs", "Shapes", "panoptic_fpn_R_18_instant_test.yaml")
INSTANCE_LOSSES = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}


def _instant_cfg(output_dir=None):
    cfg = get_cfg()
    cfg.merge_from_file(INSTANT)
    if output_dir is not None:
        cfg.OUTPUT_DIR = output_dir
    return cfg


# --------------------------------------------------------------------------- fusion
# 4 x 6 image. Instances, listed out of score order (index: score, class, mask):
#   0 "C": 0.7, class 0, rows 0-1, cols 2-5 (8 px)
#   1 "A": 0.9, class 1, rows 0-1, cols 0-2 (6 px)
#   2 "D": 0.3, class 3, everything (below the score threshold 0.5)
#   3 "B": 0.8, class 2, rows 0-1, cols 1-3 (6 px; 4 of them under A)
#   4 "E": 0.6, class 1, empty mask
# Semantic argmax (0 = "things", 1..3 stuff):
SEMANTIC_LABELS = [[0, 0, 0, 0, 0, 1],
                   [0, 0, 0, 0, 0, 0],
                   [0, 0, 0, 1, 1, 1],
                   [2, 2, 2, 2, 3, 3]]


def _instances():
    masks = torch.zeros(5, 4, 6, dtype=torch.bool)
    masks[0, 0:2, 2:6] = True
    masks[1, 0:2, 0:3] = True
    masks[2] = True
    masks[3, 0:2, 1:4] = True
    return Instances((4, 6), scores=torch.tensor([0.7, 0.9, 0.3, 0.8, 0.6]), pred_classes=torch.tensor([0, 1, 3, 2, 1]),
                     pred_masks=masks, pred_boxes=Boxes(torch.zeros(5, 4)))


def _semantic_logits():
    """(4, 4, 6) logits: 5 on the argmax class, 0 elsewhere, but 3 on the first two pixels of class 2."""
    labels = torch.tensor(SEMANTIC_LABELS)
    logits = 5.0 * torch.nn.functional.one_hot(labels, 4).permute(2, 0, 1).float()
    logits[2, 3, 0:2] = 3.0
    return logits


def _stuff_prob(peak):
    return math.exp(peak) / (math.exp(peak) + 3)


@pytest.mark.parametrize("overlap, expected_ids, expected_things", [
    # B has 4/6 > 0.5 of its mask under A: dropped. C has 2/8 under A: kept on its 6 free pixels.
    (0.5, [[1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2],
           [0, 0, 0, 3, 3, 3],
           [4, 4, 4, 4, 0, 0]],
     [{"id": 1, "category_id": 1, "isthing": True, "score": 0.9, "area": 6, "instance_id": 1},
      {"id": 2, "category_id": 0, "isthing": True, "score": 0.7, "area": 6, "instance_id": 0}]),
    # B: 4/6 <= 0.7, kept on column 3; then C has 4/8 under A and B: kept on columns 4-5.
    (0.7, [[1, 1, 1, 2, 3, 3],
           [1, 1, 1, 2, 3, 3],
           [0, 0, 0, 4, 4, 4],
           [5, 5, 5, 5, 0, 0]],
     [{"id": 1, "category_id": 1, "isthing": True, "score": 0.9, "area": 6, "instance_id": 1},
      {"id": 2, "category_id": 2, "isthing": True, "score": 0.8, "area": 2, "instance_id": 3},
      {"id": 3, "category_id": 0, "isthing": True, "score": 0.7, "area": 4, "instance_id": 0}]),
])
def test_fusion_exact_ids_and_segments(overlap, expected_ids, expected_things):
    ids, segments = combine_semantic_and_instance_outputs(_instances(), _semantic_logits(), overlap_threshold=overlap,
                                                          stuff_area_thresh=3, instances_score_thresh=0.5)
    assert ids.dtype == torch.int32 and ids.tolist() == expected_ids
    num_things = len(expected_things)
    for seg in segments[:num_things]:
        seg["score"] = pytest.approx(seg["score"])
    assert segments[:num_things] == expected_things
    # Stuff on free pixels only: class 1 has 4 pixels but one is under an instance, 3 >= 3 is kept;
    # class 3 has 2 < 3 pixels and stays void; the "things" class 0 (3 free pixels) is never stuff.
    assert segments[num_things:] == [
        {"id": num_things + 1, "category_id": 1, "isthing": False, "score": pytest.approx(_stuff_prob(5)),
         "area": 3},
        {"id": num_things + 2, "category_id": 2, "isthing": False,
         "score": pytest.approx((2 * _stuff_prob(3) + 2 * _stuff_prob(5)) / 4), "area": 4},
    ]


def test_fusion_without_instances_and_with_area_limit_zero():
    empty = Instances((4, 6), scores=torch.zeros(0), pred_classes=torch.zeros(0, dtype=torch.int64),
                      pred_masks=torch.zeros(0, 4, 6, dtype=torch.bool))
    ids, segments = combine_semantic_and_instance_outputs(empty, _semantic_logits(), 0.5, 0, 0.5)
    labels = torch.tensor(SEMANTIC_LABELS)
    # every stuff class present becomes a segment (ids 1..3 in class order), "things" pixels stay void
    assert torch.equal(ids, labels.int())
    assert [(s["id"], s["category_id"], s["area"]) for s in segments] == [(1, 1, 4), (2, 2, 4), (3, 3, 2)]


def test_fusion_rejects_argmax_maps_other_sizes_and_missing_masks():
    with pytest.raises(ValueError, match=r"\(C, H, W\) semantic logits .* not their argmax"):
        combine_semantic_and_instance_outputs(_instances(), torch.tensor(SEMANTIC_LABELS), 0.5, 3, 0.5)
    with pytest.raises(ValueError, match=r"size \(4, 6\) but semantic_results of \(8, 6\)"):
        combine_semantic_and_instance_outputs(_instances(), torch.zeros(4, 8, 6), 0.5, 3, 0.5)
    no_masks = Instances((4, 6), scores=torch.ones(1), pred_classes=torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="MODEL.MASK_ON True"):
        combine_semantic_and_instance_outputs(no_masks, torch.zeros(4, 4, 6), 0.5, 3, 0.5)


# --------------------------------------------------------------------------- meta-architecture
def _training_inputs():
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=g)
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 8:40, 8:40] = True
    masks[1, 30:60, 20:50] = True
    instances = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[8.0, 8.0, 40.0, 40.0], [20.0, 30.0, 50.0, 60.0]])),
                          gt_classes=torch.tensor([3, 0]), gt_masks=BitMasks(masks))
    sem_seg = torch.full((64, 64), 2, dtype=torch.int64)
    sem_seg[:20] = 1
    sem_seg[masks.any(0)] = 0
    sem_seg[60:] = 255
    return [{"image": image, "instances": instances, "sem_seg": sem_seg},
            {"image": image.flip(-1)[:, :48], "instances": instances[:0], "sem_seg": sem_seg.flip(-1)[:48]}]


def test_training_returns_instance_and_semantic_losses_with_their_weights():
    cfg = _instant_cfg()
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, PanopticFPN) and model.training
    inputs = _training_inputs()

    def losses(instance_weight, semantic_weight):
        model.instance_loss_weight = instance_weight
        model.sem_seg_head.loss_weight = semantic_weight
        torch.manual_seed(1)  # the same RPN / ROI sampling
        return model(inputs)

    unweighted = losses(1.0, 1.0)
    assert set(unweighted) == INSTANCE_LOSSES | {"loss_sem_seg"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in unweighted.values())
    weighted = losses(2.0, 0.25)
    for key in INSTANCE_LOSSES:
        assert weighted[key].item() == pytest.approx(2.0 * unweighted[key].item(), rel=1e-6)
    assert weighted["loss_sem_seg"].item() == pytest.approx(0.25 * unweighted["loss_sem_seg"].item(), rel=1e-6)
    sum(weighted.values()).backward()
    assert model.sem_seg_head.predictor.weight.grad.abs().sum() > 0
    assert model.roi_heads.mask_head.predictor.weight.grad.abs().sum() > 0


def test_config_weights_and_thresholds_reach_the_model():
    cfg = _instant_cfg()
    cfg.merge_from_list(["MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT", 0.3, "MODEL.SEM_SEG_HEAD.LOSS_WEIGHT", 0.7,
                         "MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH", 0.4,
                         "MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT", 99,
                         "MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH", 0.6])
    model = build_model(cfg)
    assert (model.instance_loss_weight, model.sem_seg_head.loss_weight) == (0.3, 0.7)
    assert (model.combine_overlap_thresh, model.combine_stuff_area_thresh,
            model.combine_instances_score_thresh) == (0.4, 99, 0.6)
    cfg.MODEL.MASK_ON = False
    with pytest.raises(ConfigError, match="MASK_ON True"):
        build_model(cfg)


def test_training_without_semantic_targets_says_which_dataset_to_use():
    model = build_model(_instant_cfg())
    inputs = _training_inputs()
    del inputs[1]["sem_seg"]
    with pytest.raises(ValueError, match=r"inputs \[1\] lack one.*_panoptic_separated"):
        model(inputs)


def test_inference_returns_three_outputs_at_the_records_size():
    cfg = _instant_cfg()
    cfg.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.0
    cfg.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 1
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (out,) = model([{"image": image, "height": 96, "width": 128}])
        assert set(out) == {"sem_seg", "instances", "panoptic_seg"}
        assert out["sem_seg"].shape == (4, 96, 128)
        assert out["instances"].image_size == (96, 128) and out["instances"].pred_masks.shape[1:] == (96, 128)
        ids, segments = out["panoptic_seg"]
        assert ids.shape == (96, 128) and ids.dtype == torch.int32
        expected_ids, expected_segments = combine_semantic_and_instance_outputs(out["instances"], out["sem_seg"],
                                                                                0.5, 1, 0.0)
        assert torch.equal(ids, expected_ids) and segments == expected_segments
        assert segments and {s["id"] for s in segments} == set(ids.unique().tolist()) - {0}
        assert all(s["area"] == int((ids == s["id"]).sum()) for s in segments)
        model.combine_on = False
        (no_panoptic,) = model([{"image": image}])
    assert set(no_panoptic) == {"sem_seg", "instances"} and no_panoptic["sem_seg"].shape == (4, 48, 64)


# --------------------------------------------------------------------------- data and end to end
def test_separated_records_map_to_instances_and_stuff_labels():
    cfg = _instant_cfg()
    record = DatasetCatalog.get("shapes_train_panoptic_separated")[0]
    mapped = DatasetMapper(cfg, is_train=True, augmentations=[])(record)  # no flip: pixels stay aligned
    instances, sem_seg = mapped["instances"], mapped["sem_seg"]
    assert mapped["image"].shape == (3, 64, 64) and sem_seg.shape == (64, 64) and sem_seg.dtype == torch.int64
    assert instances.has("gt_masks") and len(instances) == sum(not a["iscrowd"] for a in record["annotations"])
    # the stuff labels are 0 exactly on the panoptic ground truth's thing segments (crowd included)
    ids = torch.from_numpy(read_panoptic_ids(record["pan_seg_file_name"]))
    thing_ids = [s["id"] for s in record["segments_info"] if s["isthing"]]
    is_thing = torch.isin(ids, torch.tensor(thing_ids))
    assert torch.equal(is_thing, sem_seg == 0)
    assert set(sem_seg.unique().tolist()) <= {0, 1, 2, 3, 255}


@pytest.mark.slow
def test_instant_config_trains_and_evaluates_pq_through_default_trainer(tmp_path):
    from seg_research.engine import DefaultTrainer

    cfg = _instant_cfg(str(tmp_path))
    cfg.SOLVER.MAX_ITER = 2
    cfg.SOLVER.CHECKPOINT_PERIOD = 100
    cfg.TEST.EVAL_PERIOD = 0  # evaluate once, after training
    cfg.freeze()
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()["panoptic_seg"]
    for key in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"):
        assert 0.0 <= results[key] <= 100.0 or math.isnan(results[key])
    assert {"PQ-circle", "PQ-sky", "PQ-water"} <= set(results)
    lines = [json.loads(line) for line in open(tmp_path / "metrics.json")]
    logged = {k for line in lines for k in line}
    assert INSTANCE_LOSSES | {"loss_sem_seg", "panoptic_seg/PQ"} <= logged
    predictions = json.load(open(tmp_path / "inference" / "shapes_val_panoptic_separated" /
                                 "panoptic_predictions.json"))
    # stuff segments carry dataset ids 5..7 (sky, ground, water), things 1..4
    categories = {s["category_id"]: s["isthing"] for a in predictions["annotations"] for s in a["segments_info"]}
    assert all((c <= 4) == isthing for c, isthing in categories.items()) and np.any(np.array(list(categories)) > 4)


def test_coco_config_names_registered_panoptic_datasets():
    from seg_research.data import MetadataCatalog

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "COCO-PanopticSegmentation", "panoptic_fpn_R_50_1x.yaml"))
    assert cfg.MODEL.META_ARCHITECTURE == "PanopticFPN" and cfg.MODEL.MASK_ON and cfg.MODEL.RESNETS.DEPTH == 50
    assert (cfg.MODEL.ROI_HEADS.NUM_CLASSES, cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES) == (80, 54)
    assert cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT == 0.5 and not cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        assert name in DatasetCatalog.list() and name.endswith("_panoptic_separated")
        assert MetadataCatalog.get(name).evaluator_type == "coco_panoptic_seg"
