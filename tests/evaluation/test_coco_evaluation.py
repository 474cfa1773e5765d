"""COCOEvaluator against pycocotools' COCOeval run directly on the same json files, and COCO export."""
import contextlib
import io
import json
import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from seg_research.config import get_cfg
from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import register_coco_instances
from seg_research.data.datasets.coco_export import convert_to_coco_dict, convert_to_coco_json
from seg_research.evaluation import COCOEvaluator, build_evaluator
from seg_research.structures import Boxes, BoxMode, Instances, polygons_to_bitmask
from seg_research.utils import comm

H, W = 60, 80
METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
# Non-contiguous dataset ids: 5 -> 0 "cat", 9 -> 1 "dog", 11 -> 2 "bird" (no ground truth).
CATEGORIES = [{"id": 5, "name": "cat"}, {"id": 9, "name": "dog"}, {"id": 11, "name": "bird"}]
POLYGONS = {  # annotation id -> (image id, category id, polygons)
    1: (1, 5, [[10, 10, 50, 10, 50, 50, 10, 50]]),  # 40x40: medium
    2: (1, 9, [[55, 5, 75, 5, 75, 25, 55, 25]]),  # 20x20: small
    3: (2, 5, [[5, 30, 25, 30, 25, 50, 5, 50], [30, 40, 35, 40, 35, 45, 30, 45]]),  # two parts
    5: (2, 9, [[40, 20, 60, 20, 60, 40, 40, 40]]),
}


def _crowd_rle():
    mask = np.zeros((H, W), np.uint8)
    mask[0:10, 60:80] = 1
    rle = mask_util.encode(np.asfortranarray(mask))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def _gt_json():
    annotations = []
    for ann_id, (image_id, cat, polys) in POLYGONS.items():
        rle = mask_util.merge(mask_util.frPyObjects(polys, H, W))
        annotations.append({"id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": polys,
                            "area": float(mask_util.area(rle)), "bbox": mask_util.toBbox(rle).tolist(), "iscrowd": 0})
    crowd = _crowd_rle()
    annotations.append({"id": 4, "image_id": 2, "category_id": 9, "segmentation": crowd, "iscrowd": 1,
                        "area": float(mask_util.area(crowd)), "bbox": mask_util.toBbox(crowd).tolist()})
    images = [{"id": 1, "file_name": "a.png", "height": H, "width": W},
              {"id": 2, "file_name": "b.png", "height": H, "width": W}]
    return {"images": images, "annotations": sorted(annotations, key=lambda a: a["id"]), "categories": CATEGORIES}


@pytest.fixture
def coco_files(tmp_path):
    """(dataset name registered from the json, json path, json dict)."""
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / name)
    data = _gt_json()
    json_file = tmp_path / "gt.json"
    json_file.write_text(json.dumps(data))
    name = "test_coco_eval_json"
    register_coco_instances(name, {}, str(json_file), str(tmp_path))
    yield name, str(json_file), data
    DatasetCatalog.pop(name, None)
    MetadataCatalog.pop(name, None)


def _box_mask(boxes):
    masks = torch.zeros(len(boxes), H, W, dtype=torch.bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        masks[i, y0:y1, x0:x1] = True
    return masks


def _instances(boxes, scores, classes, masks=None):
    inst = Instances((H, W), pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
                     scores=torch.tensor(scores, dtype=torch.float32), pred_classes=torch.tensor(classes))
    inst.pred_masks = _box_mask(boxes) if masks is None else masks
    return inst


def _predictions():
    """TP, duplicate FP, a partial overlap (box IoU 0.818), a FP, a detection on the crowd, a class without GT."""
    boxes1 = [[10, 10, 50, 50], [12, 12, 50, 50], [57, 5, 77, 25], [0, 50, 10, 60]]
    masks1 = _box_mask(boxes1)
    masks1[0, 40:] = False  # the exact box's mask covers 3/4 of the cat: mask IoU 0.75, box IoU 1
    image1 = _instances(boxes1, [0.9, 0.8, 0.7, 0.95], [0, 0, 1, 1], masks1)
    cat2 = _box_mask([[5, 30, 25, 50]])[0] | _box_mask([[30, 40, 35, 45]])[0]
    boxes2 = [[5, 30, 35, 50], [60, 0, 80, 10], [40, 20, 60, 40], [0, 0, 5, 5]]
    masks2 = torch.cat([cat2[None], _box_mask(boxes2[1:])])
    image2 = _instances(boxes2, [0.6, 0.5, 0.3, 0.4], [0, 1, 1, 2], masks2)
    return [({"image_id": 1, "height": H, "width": W}, {"instances": image1}),
            ({"image_id": 2, "height": H, "width": W}, {"instances": image2})]


def _run(evaluator, pairs):
    evaluator.reset()
    for inp, out in pairs:
        evaluator.process([inp], [out])
    return evaluator.evaluate()


def _reference(json_file, results, iou_type):
    """COCOeval on the files, as a user would run it; a segm results file carries no bbox (loadRes
    would otherwise take the box area as the mask area), a bbox one no segmentation."""
    drop = "segmentation" if iou_type == "bbox" else "bbox"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(json_file)
        coco_eval = COCOeval(gt, gt.loadRes([{k: v for k, v in r.items() if k != drop} for r in results]), iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _pct(value):
    return float("nan") if value == -1 else value * 100


def _assert_same(actual, expected):
    assert (math.isnan(actual) and math.isnan(expected)) or actual == expected, (actual, expected)


def test_matches_cocoeval_on_the_same_files(coco_files, tmp_path):
    name, json_file, _ = coco_files
    out_dir = tmp_path / "out"
    res = _run(COCOEvaluator(name, distributed=False, output_dir=str(out_dir)), _predictions())
    results = json.loads((out_dir / "coco_instances_results.json").read_text())
    assert len(results) == 8
    assert list(res) == ["bbox", "segm"]
    for task in ("bbox", "segm"):
        ref = _reference(json_file, results, task)
        for i, metric in enumerate(METRICS):
            _assert_same(res[task][metric], _pct(ref.stats[i]))
        for k, cls in enumerate(["cat", "dog", "bird"]):  # catIds sorted: 5, 9, 11
            p = ref.eval["precision"][:, :, k, 0, -1]
            _assert_same(res[task][f"AP-{cls}"], float(np.mean(p[p > -1])) * 100 if (p > -1).any() else float("nan"))
        assert math.isnan(res[task]["AP-bird"]) and math.isnan(res[task]["APl"])
    # Hand-computed box AP50: cat TP, FP(dup), TP over 2 GT -> (51 * 1 + 50 * 2/3) / 101 recall points;
    # dog FP, TP, (crowd: ignored), TP over 2 GT -> 2/3 everywhere; bird has no GT.
    assert res["bbox"]["AP50"] == pytest.approx(100 * ((51 + 50 * 2 / 3) / 101 + 2 / 3) / 2, abs=1e-9)


def test_results_file_records(coco_files, tmp_path):
    name, _, _ = coco_files
    _run(COCOEvaluator(name, distributed=False, output_dir=str(tmp_path)), _predictions())
    results = json.loads((tmp_path / "coco_instances_results.json").read_text())
    first = results[0]
    assert first["image_id"] == 1 and first["category_id"] == 5 and first["bbox"] == [10.0, 10.0, 40.0, 40.0]
    assert first["score"] == pytest.approx(0.9)
    assert first["segmentation"]["size"] == [H, W] and isinstance(first["segmentation"]["counts"], str)
    assert int(mask_util.area(first["segmentation"])) == 1200
    assert [r["category_id"] for r in results] == [5, 5, 9, 9, 5, 9, 9, 11]  # mapped back to dataset ids


def test_perfect_predictions_give_100_and_nan_without_gt(coco_files, tmp_path):
    name, json_file, data = coco_files
    pairs = []
    for image_id in (1, 2):
        anns = [a for a in data["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
        boxes = [BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in anns]
        masks = torch.from_numpy(np.stack([polygons_to_bitmask(a["segmentation"], H, W) for a in anns]))
        classes = [{5: 0, 9: 1}[a["category_id"]] for a in anns]
        pairs.append(({"image_id": image_id, "height": H, "width": W},
                      {"instances": _instances(boxes, [1.0] * len(anns), classes, masks)}))
    res = _run(COCOEvaluator(name, distributed=False), pairs)
    for task in ("bbox", "segm"):
        # pycocotools' precision is tp / (tp + fp + eps): 100 up to rounding.
        assert [res[task][m] for m in ("AP", "AP50", "AP75", "APs", "APm")] == pytest.approx([100.0] * 5, abs=1e-9)
        assert res[task]["AP-cat"] == pytest.approx(100.0, abs=1e-9) and res[task]["AP-dog"] == pytest.approx(100.0)
        assert math.isnan(res[task]["APl"]) and math.isnan(res[task]["AP-bird"])


def test_no_detections_gives_zero_and_warns(coco_files, tmp_path, caplog):
    name, _, _ = coco_files
    empty = [({"image_id": i, "height": H, "width": W}, {"instances": _instances([], [], [])}) for i in (1, 2)]
    with caplog.at_level(logging.WARNING):
        res = _run(COCOEvaluator(name, distributed=False, output_dir=str(tmp_path)), empty)
    assert "no detection" in caplog.text
    assert json.loads((tmp_path / "coco_instances_results.json").read_text()) == []
    for task in ("bbox", "segm"):
        assert res[task]["AP"] == 0.0 and res[task]["AP-cat"] == 0.0 and res[task]["AP-dog"] == 0.0
        assert math.isnan(res[task]["AP-bird"]) and math.isnan(res[task]["APl"])


def test_nothing_processed_gives_nan_and_warns(coco_files, caplog):
    name, _, _ = coco_files
    with caplog.at_level(logging.WARNING):
        res = _run(COCOEvaluator(name, tasks=("bbox",), distributed=False), [])
    assert "no predictions" in caplog.text
    assert all(math.isnan(v) for v in res["bbox"].values())


def test_only_processed_images_are_evaluated(coco_files):
    name, _, _ = coco_files
    res = _run(COCOEvaluator(name, tasks=("bbox",), distributed=False), _predictions()[:1])
    # image 1 only: cat TP, dup FP over 1 GT -> AP50 100; dog FP(0.95), TP(IoU 0.818) over 1 GT -> 50.
    assert res["bbox"]["AP-cat"] > 0 and res["bbox"]["AP50"] == pytest.approx((100 + 50) / 2, abs=1e-9)


def test_max_dets_per_image_limits_detections_per_class(coco_files):
    name, _, _ = coco_files
    res = _run(COCOEvaluator(name, tasks=("bbox",), distributed=False, max_dets_per_image=1), _predictions())
    # Top detection per image and class: cat TP, TP over 2 GT -> 100; dog FP (image 1), the crowd one
    # (ignored, image 2) over 2 GT -> 0.
    assert res["bbox"]["AP50"] == pytest.approx(50.0, abs=1e-9) and res["bbox"]["AP-dog"] == 0.0


def test_distributed_gathers_on_rank0_through_shard_files(coco_files, tmp_path, monkeypatch):
    """Two ranks, one image each (comm faked in-process: spawning workers costs ~20 s on 2 cores): rank 1
    writes its shard and returns None, rank 0 writes its own, reads both, deletes them and scores all."""
    name, _, _ = coco_files
    expected = _run(COCOEvaluator(name, distributed=False), _predictions())
    rank0, rank1 = (COCOEvaluator(name, distributed=True, output_dir=str(tmp_path)) for _ in range(2))
    for evaluator, (inp, out) in zip((rank0, rank1), _predictions(), strict=True):
        evaluator.process([inp], [out])
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "synchronize", lambda: None)
    monkeypatch.setattr(comm, "gather", lambda *a, **k: pytest.fail("predictions must not go through comm.gather"))
    monkeypatch.setattr(comm, "get_rank", lambda: 1)
    monkeypatch.setattr(comm, "is_main_process", lambda: False)
    assert rank1.evaluate() is None
    shard = tmp_path / "coco_instances_predictions.rank-00001-of-00002.jsonl"
    assert [json.loads(line)["image_id"] for line in shard.read_text().splitlines()] == [2]
    monkeypatch.setattr(comm, "get_rank", lambda: 0)
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    res = rank0.evaluate()
    assert len(json.loads((tmp_path / "coco_instances_results.json").read_text())) == 8
    assert not list(tmp_path.glob("*.jsonl"))  # shards deleted once read
    for task in ("bbox", "segm"):
        for key, value in expected[task].items():
            _assert_same(res[task][key], value)


@pytest.fixture
def dict_dataset(coco_files):
    """The json's records registered as plain dicts (XYXY boxes), without json_file metadata."""
    json_name, json_file, _ = coco_files
    records = DatasetCatalog.get(json_name)
    for r in records:
        for a in r["annotations"]:
            a["bbox"] = BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
            a["bbox_mode"] = BoxMode.XYXY_ABS
    name = "test_coco_eval_dicts"
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=["cat", "dog", "bird"],
                                  thing_dataset_id_to_contiguous_id={5: 0, 9: 1, 11: 2})
    yield name, json_name
    DatasetCatalog.pop(name, None)
    MetadataCatalog.pop(name, None)


def test_dataset_without_json_is_converted_and_cached(dict_dataset, tmp_path):
    name, json_name = dict_dataset
    expected = _run(COCOEvaluator(json_name, distributed=False), _predictions())
    res = _run(COCOEvaluator(name, distributed=False, output_dir=str(tmp_path)), _predictions())
    cached = tmp_path / f"{name}_coco_format.json"
    assert cached.is_file()
    for task in ("bbox", "segm"):
        for key, value in expected[task].items():
            _assert_same(res[task][key], value)
    mtime = cached.stat().st_mtime_ns
    _run(COCOEvaluator(name, distributed=False, output_dir=str(tmp_path)), _predictions())
    assert cached.stat().st_mtime_ns == mtime  # reused, not rewritten


def test_convert_to_coco_dict_round_trip(coco_files, dict_dataset, tmp_path):
    _, _, original = coco_files
    for name in dict_dataset:  # XYXY dicts and the json-registered (XYWH) dataset
        converted = convert_to_coco_dict(name)
        assert converted["categories"] == CATEGORIES
        assert [(i["id"], i["height"], i["width"]) for i in converted["images"]] == [(1, H, W), (2, H, W)]
        assert converted["images"][0]["file_name"].endswith("a.png")
        key = ("image_id", "category_id", "bbox", "area", "iscrowd", "segmentation")
        got = sorted((tuple(a[k] for k in key) for a in converted["annotations"]), key=repr)
        want = sorted((tuple(a[k] for k in key) for a in original["annotations"]), key=repr)
        assert got == want
    out = tmp_path / "export.json"
    convert_to_coco_json(dict_dataset[0], str(out))
    assert json.loads(out.read_text())["annotations"] == convert_to_coco_dict(dict_dataset[0])["annotations"]


def test_convert_rejects_bad_category():
    bad = "test_coco_eval_bad"
    anno = {"bbox": [0, 0, 2, 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 3, "iscrowd": 0}
    DatasetCatalog.register(bad, lambda: [{"file_name": "x.png", "height": H, "width": W, "image_id": 1,
                                           "annotations": [anno]}])
    MetadataCatalog.get(bad).set(thing_classes=["cat", "dog", "bird"])
    try:
        with pytest.raises(DataError, match="NUM_CLASSES"):
            convert_to_coco_dict(bad)
    finally:
        DatasetCatalog.pop(bad)
        MetadataCatalog.pop(bad)


def test_bad_predictions_raise_actionable_errors(coco_files):
    name, _, _ = coco_files
    ev = COCOEvaluator(name, distributed=False)
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        ev.process([{"image_id": 1, "height": H, "width": W}], [{"instances": _instances([[0, 0, 5, 5]], [0.5], [3])}])
    small = _instances([[0, 0, 5, 5]], [0.5], [0], masks=torch.zeros(1, 10, 10, dtype=torch.bool))
    with pytest.raises(DataError, match="original height/width"):
        ev.process([{"image_id": 1, "height": H, "width": W}], [{"instances": small}])
    no_masks = Instances((H, W), pred_boxes=Boxes(torch.zeros(0, 4)), scores=torch.zeros(0),
                         pred_classes=torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError, match="pred_masks"):
        ev.process([{"image_id": 1}], [{"instances": no_masks}])
    with pytest.raises(ValueError, match="subset"):
        COCOEvaluator(name, tasks=("keypoints",))


def test_registry_builds_tasks_from_mask_on(coco_files, tmp_path):
    name, _, _ = coco_files
    cfg = get_cfg()
    cfg.MODEL.MASK_ON = False
    res = _run(build_evaluator(cfg, name, str(tmp_path)), _predictions())
    assert list(res) == ["bbox"]
    cfg.MODEL.MASK_ON = True
    assert list(_run(build_evaluator(cfg, name, str(tmp_path)), _predictions())) == ["bbox", "segm"]


def test_uint8_masks_match_bool_masks(coco_files):
    """pred_masks given as uint8 (N, H, W) are encoded like bool ones."""
    name, _, _ = coco_files
    pairs = _predictions()
    as_uint8 = [(inp, {"instances": _instances(out["instances"].pred_boxes.tensor.int().tolist(),
                                               out["instances"].scores.tolist(), out["instances"].pred_classes.tolist(),
                                               out["instances"].pred_masks.to(torch.uint8))}) for inp, out in pairs]
    expected = _run(COCOEvaluator(name, tasks=("segm",), distributed=False), pairs)
    res = _run(COCOEvaluator(name, tasks=("segm",), distributed=False), as_uint8)
    for key, value in expected["segm"].items():
        _assert_same(res["segm"][key], value)
