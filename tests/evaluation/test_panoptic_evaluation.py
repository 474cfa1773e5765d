"""PQ/SQ/RQ against values computed by hand on tiny panoptic maps, and the evaluator against pq_compute
on the files it writes.

The three 6x8 images below cover, with dataset category ids person 1 and car 3 (things), sky 7,
road 8 and tree 10 (stuff; tree appears nowhere, so it is left out of every mean):

image 1 - void in the union, an unmatched ground truth, false positives:
  * person gt 11 (6 px) vs pred 1 (8 px: the 6 of gt 11 + 2 on void): union = 8 + 6 - 6 - 2 = 6,
    IoU 1 (0.75 if void were not left out of the union).
  * person gt 12 overlaps only predictions of other classes: FN person.
  * pred 5 (car, 3 px on gt 12): FP car. pred 2 (person, 4 px on road): FP person.
  * road gt 40 (16 px) vs pred 4 (15 px, 12 shared): IoU 12 / 19. sky: IoU 1.
image 2 - crowd regions and the IoU threshold:
  * pred 1 (person, 6 px) lies entirely on the person crowd 91: not a FP (and crowds never match).
  * crowds 91 (person) and 92 (car) are unmatched: not FN.
  * car gt 21 (8 px) vs pred 7 (8 px, 6 shared, 2 on the person crowd): union 10, IoU 0.6.
  * pred 6 (car, 6 px on sky and gt 21): FP car (IoU 2/12 with gt 21, no void or car crowd under it).
  * pred 8 (person, 8 px: 4 on void, 4 on the *car* crowd 92): void + same-class crowd = 4/8, not
    more than half: FP person (a crowd of another class does not excuse it).
  * road gt 40 (8 px) vs pred 4 (4 px inside it): IoU exactly 0.5 is no match: FN road and FP road.
  * sky gt 30 (16 px) vs pred 3 (12 px inside it): IoU 0.75.
image 3 - several crowds of one class, void and crowd together:
  * person crowds 93 (listed first) and 94 (listed last): as in the reference, only the last listed
    crowd of a class excuses predictions.
  * pred 1 (person, 6 px: 4 on crowd 93, 2 on void): 2/6 ignored: FP person.
  * pred 2 (person, 9 px: 2 on void, 4 on crowd 94, 3 on road): (2 + 4)/9 > 1/2: not a FP, though
    neither void nor crowd alone covers half of it.
  * road gt 40 (32 px) vs pred 4 (29 px inside it): IoU 29/32.

Totals: person TP 1 (IoU 1), FP 3, FN 1; car TP 1 (0.6), FP 2; sky TP 2 (1 + 0.75);
road TP 2 (12/19 + 29/32), FP 1, FN 1.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from seg_research.config import get_cfg
from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import panoptic_metadata, register_coco_panoptic
from seg_research.data.detection_utils import read_panoptic_ids, write_panoptic_ids
from seg_research.evaluation import (
    COCOPanopticEvaluator,
    build_evaluator,
    panoptic_evaluation,
    panoptic_quality,
    pq_compute,
)
from seg_research.evaluation.panoptic_evaluation import PanopticCategories, image_pq_stats
from seg_research.utils import comm

PERSON, CAR, SKY, ROAD, TREE = 1, 3, 7, 8, 10
CATEGORIES = [{"id": PERSON, "name": "person", "isthing": 1}, {"id": CAR, "name": "car", "isthing": 1},
              {"id": SKY, "name": "sky", "isthing": 0}, {"id": ROAD, "name": "road", "isthing": 0},
              {"id": TREE, "name": "tree", "isthing": 0}]

GT = {
    1: ([[30, 30, 30, 30, 30, 30, 30, 30],
         [30, 30, 30, 30, 30, 30, 30, 30],
         [11, 11, 11, 0, 0, 12, 12, 12],
         [11, 11, 11, 0, 0, 12, 12, 12],
         [40, 40, 40, 40, 40, 40, 40, 40],
         [40, 40, 40, 40, 40, 40, 40, 40]],
        [(30, SKY, 0), (11, PERSON, 0), (12, PERSON, 0), (40, ROAD, 0)]),
    2: ([[30, 30, 30, 30, 30, 30, 30, 30],
         [30, 30, 30, 30, 30, 30, 30, 30],
         [91, 91, 91, 91, 21, 21, 21, 21],
         [91, 91, 91, 91, 21, 21, 21, 21],
         [0, 0, 92, 92, 40, 40, 40, 40],
         [0, 0, 92, 92, 40, 40, 40, 40]],
        [(30, SKY, 0), (91, PERSON, 1), (21, CAR, 0), (92, CAR, 1), (40, ROAD, 0)]),
    3: ([[93, 93, 0, 0, 94, 94, 94, 94],
         [93, 93, 0, 0, 94, 94, 94, 94],
         [40, 40, 40, 40, 40, 40, 40, 40],
         [40, 40, 40, 40, 40, 40, 40, 40],
         [40, 40, 40, 40, 40, 40, 40, 40],
         [40, 40, 40, 40, 40, 40, 40, 40]],
        [(93, PERSON, 1), (94, PERSON, 1), (40, ROAD, 0)]),
}
PRED = {
    1: ([[3, 3, 3, 3, 3, 3, 3, 3],
         [3, 3, 3, 3, 3, 3, 3, 3],
         [1, 1, 1, 1, 0, 5, 5, 5],
         [1, 1, 1, 1, 0, 4, 4, 4],
         [4, 4, 4, 4, 4, 4, 4, 4],
         [2, 2, 2, 2, 4, 4, 4, 4]],
        [(3, SKY), (1, PERSON), (5, CAR), (4, ROAD), (2, PERSON)]),
    2: ([[3, 3, 3, 3, 3, 3, 3, 3],
         [3, 3, 3, 3, 6, 6, 6, 6],
         [1, 1, 1, 7, 7, 7, 7, 6],
         [1, 1, 1, 7, 7, 7, 7, 6],
         [8, 8, 8, 8, 4, 4, 0, 0],
         [8, 8, 8, 8, 4, 4, 0, 0]],
        [(3, SKY), (6, CAR), (1, PERSON), (7, CAR), (8, PERSON), (4, ROAD)]),
    3: ([[1, 1, 1, 2, 2, 2, 0, 0],
         [1, 1, 1, 2, 2, 2, 0, 0],
         [4, 4, 4, 2, 2, 2, 4, 4],
         [4, 4, 4, 4, 4, 4, 4, 4],
         [4, 4, 4, 4, 4, 4, 4, 4],
         [4, 4, 4, 4, 4, 4, 4, 4]],
        [(1, PERSON), (2, PERSON), (4, ROAD)]),
}
ROAD_IOU = 12 / 19 + 29 / 32
# (PQ, SQ, RQ) per category by hand from the totals of the module doc; tree is not counted.
EXPECTED = {
    PERSON: (1 / (1 + 1.5 + 0.5), 1.0, 1 / 3),
    CAR: (0.6 / (1 + 1), 0.6, 1 / 2),
    SKY: (1.75 / 2, 1.75 / 2, 1.0),
    ROAD: (ROAD_IOU / (2 + 0.5 + 0.5), ROAD_IOU / 2, 2 / 3),
}


def _mean(ids, k):
    return sum(EXPECTED[c][k] for c in ids) / len(ids)


def _gt_segments(image_id):
    return [{"id": s, "category_id": c, "iscrowd": crowd} for s, c, crowd in GT[image_id][1]]


def _pred_segments(image_id):
    return [{"id": s, "category_id": c} for s, c in PRED[image_id][1]]


def _write_fixture(root, maps, segments, name):
    """COCO panoptic json ``root/name.json`` with its PNGs in ``root/name/``."""
    annotations = []
    for image_id in maps:
        write_panoptic_ids(str(root / name / f"{image_id:03d}.png"), np.array(maps[image_id][0]))
        annotations.append({"image_id": image_id, "file_name": f"{image_id:03d}.png",
                            "segments_info": segments(image_id)})
    images = [{"id": i, "file_name": f"{i:03d}.jpg", "height": 6, "width": 8} for i in maps]
    path = root / f"{name}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return str(path)


@pytest.fixture
def files(tmp_path):
    return (_write_fixture(tmp_path, GT, _gt_segments, "gt"), _write_fixture(tmp_path, PRED, _pred_segments, "pred"))


def _assert_hand_computed(res):
    for cid, (pq, sq, rq) in EXPECTED.items():
        assert res["per_class"][cid] == pytest.approx({"pq": pq, "sq": sq, "rq": rq}, abs=1e-9)
    assert res["per_class"][TREE] == {"pq": 0.0, "sq": 0.0, "rq": 0.0}
    for name, ids in (("All", list(EXPECTED)), ("Things", [PERSON, CAR]), ("Stuff", [SKY, ROAD])):
        assert res[name]["n"] == len(ids)
        for k, metric in enumerate(("pq", "sq", "rq")):
            assert res[name][metric] == pytest.approx(_mean(ids, k), abs=1e-9), (name, metric)


def test_pq_compute_matches_hand_computed_values(files):
    gt_json, pred_json = files
    res = pq_compute(gt_json, pred_json)  # PNG folders default to the json paths without ".json"
    _assert_hand_computed(res)
    assert res["All"]["pq"] == pytest.approx((1 / 3 + 0.3 + 0.875 + ROAD_IOU / 3) / 4, abs=1e-9)


@pytest.mark.parametrize("image_id, expected", [
    # rows person, car, sky, road, tree; columns TP, FP, FN, sum of IoU
    (1, [[1, 1, 1, 1.0], [0, 1, 0, 0], [1, 0, 0, 1.0], [1, 0, 0, 12 / 19], [0, 0, 0, 0]]),
    (2, [[0, 1, 0, 0], [1, 1, 0, 0.6], [1, 0, 0, 0.75], [0, 1, 1, 0], [0, 0, 0, 0]]),
    (3, [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 29 / 32], [0, 0, 0, 0]]),
])
def test_image_statistics(image_id, expected):
    """Per-image (TP, FP, FN, IoU sum): the void, crowd and threshold cases of the module doc, one image each."""
    stats = image_pq_stats(np.array(GT[image_id][0]), _gt_segments(image_id), np.array(PRED[image_id][0]),
                           _pred_segments(image_id), PanopticCategories.from_json(CATEGORIES))
    np.testing.assert_allclose(stats, expected, rtol=0, atol=1e-12)


def test_image_without_ground_truth_segments():
    """An all-void ground truth (no segments): every prediction is on void, so none is a FP; nothing is a FN."""
    cats = PanopticCategories.from_json(CATEGORIES)
    void = np.zeros((6, 8), dtype=np.int64)
    stats = image_pq_stats(void, [], np.array(PRED[1][0]), _pred_segments(1), cats)
    np.testing.assert_array_equal(stats, np.zeros((len(CATEGORIES), 4)))
    unlisted = np.full((6, 8), 5, dtype=np.int64)  # ids not listed in segments_info: no segment, but not void
    stats = image_pq_stats(unlisted, [], np.array(PRED[1][0]), _pred_segments(1), cats)
    np.testing.assert_array_equal(stats[:, 1], [2, 1, 1, 1, 0])  # person (2), car, sky, road: FP


def test_worker_pool_equals_in_process(files):
    gt_json, pred_json = files
    assert pq_compute(gt_json, pred_json, num_workers=2) == pq_compute(gt_json, pred_json, num_workers=0)


def test_inconsistent_predictions_raise_actionable_errors(files, tmp_path):
    gt_json, pred_json = files
    cats = PanopticCategories.from_json(CATEGORIES)
    gt_ids, pred_ids = np.array(GT[1][0]), np.array(PRED[1][0])
    with pytest.raises(DataError, match=r"\[5\] are in the PNG but not in segments_info"):
        image_pq_stats(gt_ids, _gt_segments(1), pred_ids, [s for s in _pred_segments(1) if s["id"] != 5], cats)
    with pytest.raises(DataError, match=r"\[9\] are in segments_info but have no pixel"):
        image_pq_stats(gt_ids, _gt_segments(1), pred_ids, _pred_segments(1) + [{"id": 9, "category_id": CAR}], cats)
    with pytest.raises(DataError, match=r"category_id\(s\) \[2\]"):
        image_pq_stats(gt_ids, _gt_segments(1), pred_ids, [{**s, "category_id": 2} for s in _pred_segments(1)], cats)
    with pytest.raises(DataError, match=r"size \(6, 7\)"):
        image_pq_stats(gt_ids, _gt_segments(1), pred_ids[:, :7], _pred_segments(1), cats)
    pred = json.loads(open(pred_json).read())
    pred["annotations"] = pred["annotations"][:2]
    (tmp_path / "partial.json").write_text(json.dumps(pred))
    with pytest.raises(DataError, match="No prediction for image_id 3"):
        pq_compute(gt_json, str(tmp_path / "partial.json"), pred_folder=str(tmp_path / "pred"))


@pytest.fixture
def dataset(files, tmp_path):
    name = "test_panoptic_eval"
    register_coco_panoptic(name, panoptic_metadata(CATEGORIES), str(tmp_path / "images"), str(tmp_path / "gt"),
                           files[0])
    yield name, files[0]
    DatasetCatalog.pop(name, None)
    MetadataCatalog.pop(name, None)


def _model_output(image_id, contiguous=True, void=0):
    """``panoptic_seg`` as a model returns it: ids (void 0 or -1) and contiguous ids with ``isthing``
    (thing ids index thing_classes, stuff ids stuff_classes), or dataset ids without ``isthing``."""
    thing_ids, stuff_ids = {PERSON: 0, CAR: 1}, {PERSON: 0, CAR: 1, SKY: 2, ROAD: 3, TREE: 4}
    ids = torch.tensor(PRED[image_id][0], dtype=torch.int32)
    ids[ids == 0] = void
    segments = []
    for seg_id, cat in PRED[image_id][1]:
        seg = {"id": seg_id, "category_id": cat, "score": 0.5}
        if contiguous:
            isthing = cat in thing_ids
            seg.update(category_id=(thing_ids if isthing else stuff_ids)[cat], isthing=isthing)
        segments.append(seg)
    return {"panoptic_seg": (ids, segments)}


def _inputs(image_id):
    return [{"image_id": image_id, "file_name": f"{image_id:03d}.jpg", "height": 6, "width": 8}]


def test_evaluator_equals_pq_compute_on_its_files(dataset, tmp_path):
    name, gt_json = dataset
    out = tmp_path / "inference"
    ev = COCOPanopticEvaluator(name, str(out), distributed=False)
    ev.reset()
    ev.process(_inputs(1), [_model_output(1)])
    ev.process(_inputs(2), [_model_output(2, void=-1)])
    ev.process(_inputs(3), [_model_output(3, contiguous=False)])
    res = ev.evaluate()["panoptic_seg"]

    written = json.loads((out / "panoptic_predictions.json").read_text())
    assert [a["image_id"] for a in written["annotations"]] == [1, 2, 3]
    assert written["annotations"][0]["segments_info"][2] == {"id": 5, "category_id": CAR, "isthing": True,
                                                             "score": 0.5}
    assert written["annotations"][1]["segments_info"][5] == {"id": 4, "category_id": ROAD, "isthing": False,
                                                             "score": 0.5}
    np.testing.assert_array_equal(read_panoptic_ids(str(out / "panoptic_predictions" / "002.png")), PRED[2][0])
    reference = pq_compute(gt_json, str(out / "panoptic_predictions.json"), str(tmp_path / "gt"))
    _assert_hand_computed(reference)
    for key, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        for metric in ("pq", "sq", "rq"):
            assert res[metric.upper() + suffix] == pytest.approx(100 * reference[key][metric], abs=1e-9)
    for cid, cname in ((PERSON, "person"), (CAR, "car"), (SKY, "sky"), (ROAD, "road")):
        for metric in ("pq", "sq", "rq"):
            assert res[f"{metric.upper()}-{cname}"] == pytest.approx(100 * reference["per_class"][cid][metric])
    assert all(math.isnan(res[f"{m}-tree"]) for m in ("PQ", "SQ", "RQ"))  # no TP, FP or FN: not counted


def test_evaluator_rejects_bad_outputs(dataset):
    name, _ = dataset
    ev = COCOPanopticEvaluator(name, distributed=False)
    ids, segments = _model_output(1)["panoptic_seg"]
    with pytest.raises(DataError, match=r"size \(6, 7\).*\(6, 8\)"):
        ev.process(_inputs(1), [{"panoptic_seg": (ids[:, :7], segments)}])
    with pytest.raises(DataError, match=r"id\(s\) \[5\] that are not in segments_info"):
        ev.process(_inputs(1), [{"panoptic_seg": (ids, [s for s in segments if s["id"] != 5])}])
    bad = [dict(s, category_id=7) if s["id"] == 5 else s for s in segments]
    with pytest.raises(DataError, match="isthing=True and contiguous category_id 7"):
        ev.process(_inputs(1), [{"panoptic_seg": (ids, bad)}])
    with pytest.raises(DataError, match="image_id 4 is not in the panoptic ground truth"):
        ev.process(_inputs(4), [_model_output(1)])


def test_distributed_sums_statistics_and_gathers_json(dataset, tmp_path, monkeypatch):
    """Two ranks (comm faked in-process): rank 0 scores images 1 and 2, rank 1 image 3."""
    name, _ = dataset
    rank0, rank1 = (COCOPanopticEvaluator(name, str(tmp_path / "out"), distributed=True) for _ in range(2))
    for image_id in (1, 2):
        rank0.process(_inputs(image_id), [_model_output(image_id)])
    rank1.process(_inputs(3), [_model_output(3)])
    rank1_stats = panoptic_quality.accumulate_stats(rank1._pairs(), rank1._categories, 0)
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(panoptic_evaluation, "_all_reduce_sum", lambda stats: stats + rank1_stats)
    monkeypatch.setattr(comm, "is_main_process", lambda: False)
    monkeypatch.setattr(comm, "gather", lambda data, dst=0: [])
    assert rank1.evaluate() is None
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    monkeypatch.setattr(comm, "gather", lambda data, dst=0: [data, rank1._predictions])
    res = rank0.evaluate()["panoptic_seg"]
    assert res["PQ"] == pytest.approx(100 * _mean(EXPECTED, 0), abs=1e-9)
    written = json.loads((tmp_path / "out" / "panoptic_predictions.json").read_text())
    assert [a["image_id"] for a in written["annotations"]] == [1, 2, 3]


def test_all_reduce_sums_float64_with_gloo(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        stats = np.array([[1.0, 2.0, 3.0, 1 / 3]])
        out = panoptic_evaluation._all_reduce_sum(stats.copy())
        assert out.dtype == np.float64 and out.tolist() == stats.tolist()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("dataset_name", ["shapes_val_panoptic", "shapes_val_panoptic_separated"])
def test_ground_truth_fed_back_gives_pq_100(dataset_name, tmp_path):
    """Shapes val (6 images, with crowds) through the builder: ground truth as predictions scores 100."""
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    ev = build_evaluator(cfg, dataset_name)
    assert isinstance(ev, COCOPanopticEvaluator)
    ev.reset()
    records = DatasetCatalog.get(dataset_name)
    for record in records:
        segments = [{k: s[k] for k in ("id", "category_id", "isthing")} for s in record["segments_info"]]
        ev.process([record], [{"panoptic_seg": (torch.from_numpy(read_panoptic_ids(record["pan_seg_file_name"])),
                                                segments)}])
    res = ev.evaluate()["panoptic_seg"]
    for key in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"):
        assert res[key] == pytest.approx(100.0, abs=1e-9), key
    assert any(s["iscrowd"] for r in records for s in r["segments_info"])  # crowd regions were exercised
    assert (tmp_path / "inference" / dataset_name / "panoptic_predictions.json").is_file()


def test_builder_takes_worker_count_from_config(dataset, tmp_path):
    name, _ = dataset
    cfg = get_cfg()
    assert cfg.TEST.PANOPTIC_NUM_WORKERS == 0
    cfg.TEST.PANOPTIC_NUM_WORKERS = 3
    assert build_evaluator(cfg, name, str(tmp_path))._num_workers == 3


@pytest.mark.slow
def test_benchmark_smoke():
    """benchmarks/pq_eval.py runs end to end (and checks that ours, pooled and naive results agree)."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "pq_eval.py"
    out = subprocess.run([sys.executable, str(script), "--num-images", "3", "--height", "48", "--width", "64"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("images/s") == 4 and "all implementations agree" in out.stdout
