"""detectron2's public surface at detectron2's import paths, with its signatures and behaviour.

``fixtures/d2_public_api.json`` holds every public module of detectron2 v0.6 with its public names
(``__all__``, else what the module defines) and the signatures compared here (written by ``fixtures/make_d2_api_fixture.py`` in the measurement-only
detectron2 environment); detectron2 itself is never imported.
"""
import importlib
import inspect
import json
import os

import numpy as np
import pytest
import torch
import torchvision

from seg_research.utils.absent import AbsentFromSegResearch

FIXTURE = json.load(open(os.path.join(os.path.dirname(__file__), "fixtures", "d2_public_api.json")))

# The names of issue 17 that user code imports, as `from detectron2.<module> import <name>`.
ISSUE_NAMES = [
    ("checkpoint", "DetectionCheckpointer"),
    ("data", "build_detection_train_loader"), ("data", "build_detection_test_loader"), ("data", "DatasetMapper"),
    ("data", "get_detection_dataset_dicts"), ("data", "DatasetFromList"), ("data", "MapDataset"),
    ("modeling", "GeneralizedRCNN"), ("modeling", "GeneralizedRCNNWithTTA"), ("modeling", "SemanticSegmentor"),
    ("modeling", "PanopticFPN"), ("modeling", "ROI_HEADS_REGISTRY"), ("modeling", "StandardROIHeads"),
    ("structures", "ROIMasks"),
    ("layers", "ROIAlign"), ("layers", "Conv2d"), ("layers", "cat"), ("layers", "paste_masks_in_image"),
    ("layers", "batched_nms"), ("layers", "nms"),
    ("solver", "WarmupMultiStepLR"),
    ("config", "LazyConfig"), ("config", "instantiate"),
    ("data.datasets", "register_pascal_voc"),
    ("evaluation", "verify_results"), ("evaluation", "CityscapesInstanceEvaluator"),
    ("evaluation", "CityscapesSemSegEvaluator"), ("evaluation", "PascalVOCDetectionEvaluator"),
    ("evaluation", "LVISEvaluator"),
]


@pytest.mark.parametrize("module,name", ISSUE_NAMES, ids=[f"{m}.{n}" for m, n in ISSUE_NAMES])
def test_issue_names_import_from_detectron2_paths(module, name):
    obj = getattr(importlib.import_module(f"seg_research.{module}"), name)
    assert callable(obj) or hasattr(obj, "get"), f"seg_research.{module}.{name} is {obj!r}"


def test_model_zoo_package_imports_with_detectron2_functions():
    model_zoo = importlib.import_module("seg_research.model_zoo")
    assert callable(model_zoo.get_config_file) and callable(model_zoo.get)


MODULES = FIXTURE["modules"]
# The detectron2 names deliberately left out, counted per top-level package over all its modules (rotated
# boxes, keypoints, one-stage detectors, mmdet, Caffe2 weights, LVIS, profiler hooks, some augmentations, ...):
# raising this bound is a reviewed decision.
MOST_ABSENT = {"checkpoint": 5, "config": 4, "data": 40, "engine": 3, "evaluation": 5, "layers": 20,
               "model_zoo": 0, "modeling": 60, "solver": 0, "structures": 8, "utils": 9}


def _absent_and_missing(module_path):
    try:
        module = importlib.import_module(f"seg_research.{module_path}")
    except ModuleNotFoundError:
        return [], list(MODULES[module_path]) or ["<module>"]
    absent, missing = [], []
    for name in MODULES[module_path]:
        try:
            assert getattr(module, name) is not None
        except AbsentFromSegResearch as e:  # an ImportError: `from ... import name` shows the advice
            assert f".{name} has no counterpart in seg_research." in str(e) and len(str(e)) > 80, str(e)
            absent.append(name)
        except AttributeError:
            missing.append(name)
    with pytest.raises(AttributeError):
        _ = module.no_such_name_in_detectron2
    return absent, missing


@pytest.mark.parametrize("module_path", sorted(MODULES))
def test_every_detectron2_module_and_name_exists_or_says_what_to_use(module_path):
    """detectron2.<module_path> imports as seg_research.<module_path>, and each of its public names is
    there or raises AbsentFromSegResearch with advice (fixtures/d2_public_api.json: every public module)."""
    _, missing = _absent_and_missing(module_path)
    assert not missing, f"seg_research.{module_path} lacks {missing}"


def test_absent_names_are_bounded_per_package():
    absent = {package: [] for package in MOST_ABSENT}
    for module_path in MODULES:
        absent[module_path.split(".")[0]] += [f"{module_path}.{n}" for n in _absent_and_missing(module_path)[0]]
    too_many = {p: len(names) for p, names in absent.items() if len(names) > MOST_ABSENT[p]}
    assert not too_many, f"more detectron2 names absent than reviewed: {too_many}"


@pytest.mark.parametrize("module_path,name", [
    ("data.build", "filter_images_with_few_keypoints"), ("engine.defaults", "DefaultPredictor"),
    ("data.dataset_mapper", "DatasetMapper"), ("data.samplers.distributed_sampler", "TrainingSampler"),
    ("layers.batch_norm", "FrozenBatchNorm2d"), ("modeling.roi_heads.roi_heads", "Res5ROIHeads"),
    ("structures.masks", "ROIMasks"), ("utils.registry", "locate"), ("engine", "DEFAULT_TIMEOUT"),
])
def test_re_exports_are_our_objects(module_path, name):
    """Names at detectron2's paths are the objects seg_research has elsewhere, not copies."""
    obj = getattr(importlib.import_module(f"seg_research.{module_path}"), name)
    home = {"filter_images_with_few_keypoints": "seg_research.data.build", "DefaultPredictor": "seg_research.engine",
            "DatasetMapper": "seg_research.data", "TrainingSampler": "seg_research.data.samplers",
            "FrozenBatchNorm2d": "seg_research.layers", "Res5ROIHeads": "seg_research.modeling.roi_heads",
            "ROIMasks": "seg_research.structures", "locate": "seg_research.utils.registry",
            "DEFAULT_TIMEOUT": "seg_research.engine.launch"}[name]
    assert getattr(importlib.import_module(home), name) is obj


def test_detectron2_helpers_behave_as_documented(caplog):
    import logging

    from seg_research.data.build import filter_images_with_few_keypoints, print_instances_class_histogram
    from seg_research.data.detection_utils import convert_image_to_rgb
    from seg_research.data.samplers import RandomSubsetTrainingSampler
    from seg_research.modeling.proposal_generator.proposal_utils import add_ground_truth_to_proposals
    from seg_research.solver.build import reduce_param_groups
    from seg_research.structures import Boxes, Instances
    from seg_research.structures.boxes import matched_pairwise_iou
    from seg_research.structures.masks import polygon_area, rasterize_polygons_within_box

    records = [{"annotations": [{"keypoints": [1, 1, 2, 5, 5, 0], "category_id": 0}]}, {"annotations": []}]
    assert filter_images_with_few_keypoints(records, 1) == records[:1]
    with caplog.at_level(logging.INFO, logger="seg_research"):
        print_instances_class_histogram(records, ["cat", "dog"])
    assert "cat       1" in caplog.text and "dog       0" in caplog.text
    bgr = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert (convert_image_to_rgb(bgr, "BGR") == bgr[:, :, ::-1]).all()
    assert convert_image_to_rgb(bgr[:, :, 0], "L").shape == (2, 2, 3)
    with pytest.raises(ValueError, match="YUV"):
        convert_image_to_rgb(bgr, "YUV-BT.601")
    import itertools
    sampler = RandomSubsetTrainingSampler(10, 0.3, seed_shuffle=0, seed_subset=1)
    assert len(set(itertools.islice(iter(sampler), 30))) == 3
    assert matched_pairwise_iou(Boxes(torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1]])),
                                Boxes(torch.tensor([[1.0, 0, 3, 2], [5, 5, 6, 6]]))).tolist() == pytest.approx([1 / 3, 0.0])
    assert polygon_area(np.array([0, 4, 4, 0]), np.array([0, 0, 2, 2])) == 8.0
    mask = rasterize_polygons_within_box([np.array([2.0, 2, 6, 2, 6, 6, 2, 6])], np.array([2.0, 2, 10, 10]), 8)
    assert mask.shape == (8, 8) and mask[:4, :4].all() and not mask[4:, :].any()
    proposals = Instances((8, 8), proposal_boxes=Boxes(torch.zeros(2, 4)), objectness_logits=torch.zeros(2))
    gt = Instances((8, 8), gt_boxes=Boxes(torch.ones(1, 4)))
    out = add_ground_truth_to_proposals([gt], [proposals])[0]
    assert len(out) == 3 and torch.equal(out.proposal_boxes.tensor[2], torch.ones(4)) and out.objectness_logits[2] > 20
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    groups = reduce_param_groups([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.1}, {"params": [b], "wd": 0}])
    assert [(g["lr"], g.get("wd"), len(g["params"])) for g in groups] == [(0.1, None, 1), (0.1, 0, 1)]


def test_absent_name_from_import_carries_the_advice():
    with pytest.raises(ImportError, match="torchvision.ops.DeformConv2d"):
        from seg_research.layers import DeformConv  # noqa: F401


def _signature(path):
    package, *attrs = path.split(".")
    obj = importlib.import_module(f"seg_research.{package}")
    for attr in attrs:
        obj = getattr(obj, attr)
    func = obj.__init__ if inspect.isclass(obj) else obj
    func = getattr(func, "__wrapped__", func)
    return [[p.name, str(p.kind), None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in inspect.signature(func).parameters.values() if p.name != "self"]


@pytest.mark.parametrize("path", sorted(FIXTURE["signatures"]))
def test_signatures_start_with_detectron2s(path):
    """Every detectron2 parameter, in order, with its kind and default (ours may add keyword-only ones)."""
    expected = FIXTURE["signatures"][path]
    assert _signature(path)[: len(expected)] == expected


@pytest.mark.parametrize("cls_name,kwargs,expected", [
    # values printed by detectron2 v0.6's schedulers (base LR 2.0, iterations 0-9)
    ("WarmupMultiStepLR", dict(milestones=[4, 7], gamma=0.5, warmup_factor=0.1, warmup_iters=3),
     [0.2, 0.8, 1.4, 2.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]),
    ("WarmupMultiStepLR", dict(milestones=[2], warmup_factor=0.2, warmup_iters=4, warmup_method="constant"),
     [0.4, 0.4, 0.04, 0.04, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]),
    ("WarmupCosineLR", dict(max_iters=10, warmup_factor=0.1, warmup_iters=3),
     [0.2, 0.780423, 1.266312, 1.587785, 1.309017, 1.0, 0.690983, 0.412215, 0.190983, 0.048943]),
])
def test_legacy_lr_schedulers_match_detectron2(cls_name, kwargs, expected):
    import seg_research.solver as solver

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    scheduler = getattr(solver, cls_name)(optimizer, **kwargs)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx(expected, abs=1e-6)


def test_layers_behave_as_detectron2s():
    from seg_research.layers import Conv2d, ROIAlign, cat, cross_entropy, nonzero_tuple, paste_masks_in_image
    from seg_research.structures import Boxes

    torch.manual_seed(0)
    features = torch.rand(2, 3, 16, 16)
    rois = torch.tensor([[0, 1.5, 2.0, 9.0, 12.5], [1, 0.0, 0.0, 15.0, 15.0]])
    expected = torchvision.ops.roi_align(features, rois, (4, 4), 0.5, 2, aligned=True)
    torch.testing.assert_close(ROIAlign((4, 4), 0.5, 2)(features, rois), expected, rtol=1e-5, atol=1e-6)
    conv = Conv2d(3, 4, 3, padding=1, bias=False, norm=torch.nn.BatchNorm2d(4), activation=torch.relu).eval()
    assert (conv(features) >= 0).all() and conv(features).shape == (2, 4, 16, 16)
    single = torch.ones(3)
    assert cat([single]) is single and cat([single, single]).shape == (6,)
    logits = torch.rand(0, 5, requires_grad=True)
    loss = cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad.shape == (0, 5)
    rows, cols = nonzero_tuple(torch.tensor([[0, 1], [1, 0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    boxes = torch.tensor([[2.0, 2.0, 10.0, 6.0]])
    masks = torch.ones(1, 7, 7)
    pasted = paste_masks_in_image(masks, boxes, (12, 12))
    assert torch.equal(paste_masks_in_image(masks, Boxes(boxes), (12, 12)), pasted) and pasted.sum() == 32


def test_roi_masks_paste_into_image():
    from seg_research.structures import BitMasks, Boxes, ROIMasks

    masks = ROIMasks(torch.ones(2, 5, 5))
    bitmasks = masks.to_bitmasks(Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0], [4.0, 2.0, 8.0, 3.0]])), 8, 10)
    assert isinstance(bitmasks, BitMasks) and bitmasks.tensor.shape == (2, 8, 10)
    assert bitmasks.tensor.sum(dim=(1, 2)).tolist() == [16, 4]  # 4x4 and 4x1 pixel boxes, fully inside
    assert len(masks[1]) == 1 and masks[torch.tensor([True, False])].tensor.shape == (1, 5, 5)
    with pytest.raises(ValueError, match=r"\(N, M, M\)"):
        ROIMasks(torch.ones(5, 5))


def test_detection_checkpointer_saves_and_resumes(tmp_path):
    from seg_research.checkpoint import DetectionCheckpointer

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpointer = DetectionCheckpointer(model, str(tmp_path), optimizer=optimizer)
    assert checkpointer.save_to_disk  # one process: the main one
    checkpointer.save("model_0000004", iteration=4)
    other = torch.nn.Linear(3, 2)
    loaded = DetectionCheckpointer(other, str(tmp_path), save_to_disk=False).resume_or_load("", resume=True)
    assert loaded["iteration"] == 4 and torch.equal(other.weight, model.weight)
    DetectionCheckpointer(other, str(tmp_path), save_to_disk=False).save("model_final")
    assert not (tmp_path / "model_final.pth").exists()


# ---------------------------------------------------------------------------- test-time augmentation


def _instant_cfg(name, **overrides):
    from seg_research.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(os.path.dirname(__file__), "..", "configs", "Shapes", name))
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    return cfg


@pytest.fixture(scope="module")
def rcnn():
    from seg_research.data import build_detection_test_loader
    from seg_research.modeling import build_model

    cfg = _instant_cfg("mask_rcnn_R_18_FPN_instant_test.yaml", **{"MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.0})
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = next(iter(build_detection_test_loader(cfg, "shapes_val")))
    return cfg, model, inputs


def test_dataset_mapper_tta_copies_and_transforms():
    from seg_research.modeling import DatasetMapperTTA

    mapper = DatasetMapperTTA(min_sizes=[32, 48], max_size=90, flip=True)
    image = torch.zeros(3, 40, 80, dtype=torch.uint8)  # already resized from a 20 x 40 original
    copies = mapper({"image": image, "height": 20, "width": 40, "image_id": 7})
    assert [tuple(c["image"].shape[1:]) for c in copies] == [(32, 64), (32, 64), (45, 90), (45, 90)]
    box = np.array([[4.0, 2.0, 10.0, 8.0]])  # in original (20 x 40) pixels: x1.6 onto the 32 x 64 copy
    np.testing.assert_allclose(copies[0]["transforms"].apply_box(box), [[6.4, 3.2, 16.0, 12.8]], rtol=1e-6)
    np.testing.assert_allclose(copies[1]["transforms"].apply_box(box), [[48.0, 3.2, 57.6, 12.8]], rtol=1e-6)
    assert all(c["image_id"] == 7 and c["height"] == 20 for c in copies)


def test_rcnn_tta_with_one_identity_copy_equals_the_model(rcnn):
    from seg_research.modeling import GeneralizedRCNNWithTTA

    cfg, model, inputs = rcnn
    cfg = cfg.clone()
    cfg.merge_from_list(["TEST.AUG.MIN_SIZES", (cfg.INPUT.MIN_SIZE_TEST,), "TEST.AUG.FLIP", False])
    with torch.no_grad():
        plain = model(inputs)[0]["instances"]
        tta = GeneralizedRCNNWithTTA(cfg, model)(inputs)[0]["instances"]
    assert len(plain) > 0 and len(tta) == len(plain)
    torch.testing.assert_close(tta.pred_boxes.tensor, plain.pred_boxes.tensor)
    torch.testing.assert_close(tta.scores, plain.scores)
    assert torch.equal(tta.pred_classes, plain.pred_classes) and torch.equal(tta.pred_masks, plain.pred_masks)


def test_rcnn_tta_merges_sizes_and_flips(rcnn):
    from seg_research.modeling import GeneralizedRCNNWithTTA

    cfg, model, inputs = rcnn
    cfg = cfg.clone()
    cfg.merge_from_list(["TEST.AUG.MIN_SIZES", (48, 64, 80), "TEST.AUG.MAX_SIZE", 200])
    with torch.no_grad():
        out = GeneralizedRCNNWithTTA(cfg, model, batch_size=2)(inputs)[0]["instances"]
    height, width = inputs[0]["height"], inputs[0]["width"]
    assert out.image_size == (height, width) and 0 < len(out) <= cfg.TEST.DETECTIONS_PER_IMAGE
    assert out.pred_masks.shape == (len(out), height, width) and out.pred_masks.dtype == torch.bool
    assert (out.scores[:-1] >= out.scores[1:]).all()
    boxes = out.pred_boxes.tensor
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()


def test_semantic_tta_is_flip_equivariant():
    from seg_research.data import build_detection_test_loader
    from seg_research.modeling import SemanticSegmentorWithTTA, build_model

    cfg = _instant_cfg("semantic_fpn_R_18_instant_test.yaml", **{"TEST.AUG.MIN_SIZES": (48, 64)})
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = next(iter(build_detection_test_loader(cfg, "shapes_val_sem_seg")))
    flipped = [{**inputs[0], "image": inputs[0]["image"].flip(dims=[2])}]
    tta = SemanticSegmentorWithTTA(cfg, model)
    with torch.no_grad():
        probs = tta(inputs)[0]["sem_seg"]
        probs_of_flipped = tta(flipped)[0]["sem_seg"]
    assert probs.shape == (cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, inputs[0]["height"], inputs[0]["width"])
    torch.testing.assert_close(probs.sum(dim=0), torch.ones(probs.shape[1:]))
    torch.testing.assert_close(probs_of_flipped.flip(dims=[2]), probs, atol=1e-5, rtol=1e-4)


def test_test_with_tta_evaluates_into_inference_tta(rcnn, tmp_path):
    from seg_research.engine import DefaultTrainer
    from seg_research.modeling import build_model

    cfg, model, _ = rcnn
    cfg = cfg.clone()
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path), "TEST.AUG.MIN_SIZES", (64,), "DATASETS.TEST", ("shapes_val",)])
    results = DefaultTrainer.test_with_TTA(cfg, model)
    assert list(results) == ["bbox_TTA", "segm_TTA"] and "AP" in results["segm_TTA"]
    assert (tmp_path / "inference_TTA" / "shapes_val" / "results.json").exists()
    panoptic = _instant_cfg("panoptic_fpn_R_18_instant_test.yaml")
    with pytest.raises(TypeError, match="not available for PanopticFPN"):
        DefaultTrainer.test_with_TTA(panoptic, build_model(panoptic))


@pytest.mark.slow
def test_train_net_eval_only_adds_tta_results(tmp_path):
    from seg_research.engine import default_argument_parser, train_net_main

    config = os.path.join(os.path.dirname(__file__), "..", "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml")
    args = default_argument_parser().parse_args([
        "--config-file", config, "--eval-only", "OUTPUT_DIR", str(tmp_path), "TEST.AUG.ENABLED", "True",
        "TEST.AUG.MIN_SIZES", "(64,)", "TEST.AUG.FLIP", "False", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
    ])
    results = train_net_main(args)
    # one identity copy: TTA's detections are the model's, so are the metrics
    assert sorted(results) == ["bbox", "bbox_TTA", "segm", "segm_TTA"]
    assert results["segm_TTA"]["AP"] == pytest.approx(results["segm"]["AP"])
