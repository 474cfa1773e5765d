"""The fast panoptic quality backend (hotcoco) counts as ours (the reference): TP, FP, FN and IoU sums per
category on generated problems and on the edge cases of the definition; its inputs are checked as ours
checks them; without the package the evaluator falls back to ours."""
import logging
import sys

import numpy as np
import pytest

from benchmarks.panoptic_synthetic import synthetic_panoptic_problem
from seg_research.config import get_cfg
from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import panoptic_metadata, register_coco_panoptic
from seg_research.data.detection_utils import write_panoptic_ids
from seg_research.evaluation import COCOPanopticEvaluator, build_evaluator
from seg_research.evaluation.fast_pq_api import (
    FAST_PQ_BACKEND,
    PQ_BACKEND_REGISTRY,
    REFERENCE_PQ_BACKEND,
    available_pq_backends,
    select_pq_backend,
)
from seg_research.evaluation.panoptic_quality import ImagePair, PanopticCategories, panoptic_problem, pq_from_stats

from .test_panoptic_evaluation import (
    CAR,
    CATEGORIES,
    GT,
    PRED,
    _gt_segments,
    _inputs,
    _model_output,
    _pred_segments,
    _write_fixture,
)

pytest.importorskip("hotcoco")  # pinned in requirements.lock; the fallback test below hides it

BUS = 12  # a thing category that only predictions have
EDGE_CATEGORIES = CATEGORIES + [{"id": BUS, "name": "bus", "isthing": 1}]
VOID_MAP = np.zeros((6, 8), dtype=np.int64)


def _stats(backend, pairs, categories, num_workers=0):
    return PQ_BACKEND_REGISTRY.get(backend)().stats(pairs, categories, num_workers)


def _assert_same_counts(pairs, categories):
    fast, reference = _stats(FAST_PQ_BACKEND, pairs, categories), _stats(REFERENCE_PQ_BACKEND, pairs, categories)
    np.testing.assert_array_equal(fast[:, :3], reference[:, :3])  # TP, FP, FN
    np.testing.assert_allclose(fast[:, 3], reference[:, 3], rtol=0, atol=1e-12)  # IoU sums
    fast_res, ref_res = pq_from_stats(fast, categories), pq_from_stats(reference, categories)
    for name in ("All", "Things", "Stuff"):
        assert fast_res[name]["n"] == ref_res[name]["n"]
        for metric in ("pq", "sq", "rq"):
            assert fast_res[name][metric] == pytest.approx(ref_res[name][metric], abs=1e-6, nan_ok=True), name
    for cid, values in ref_res["per_class"].items():
        assert fast_res["per_class"][cid] == pytest.approx(values, abs=1e-6), cid
    return reference


@pytest.mark.parametrize("seed", [1, 2])
def test_backends_count_the_same_on_generated_problems(tmp_path, seed):
    """Stuff bands, things with void outlines, crowds, relabelled, moved, dropped and spurious things."""
    gt_json, pred_json = synthetic_panoptic_problem(str(tmp_path), 8, height=240, width=320, segments=14, seed=seed)
    pairs, categories = panoptic_problem(gt_json, pred_json)
    assert any(s["iscrowd"] for p in pairs for s in p.gt_segments)
    stats = _assert_same_counts(pairs, categories)
    assert stats[:, :3].min(0).tolist() == [0, 0, 0] and stats[:, 0].sum() > 0 and stats[:, 1:3].sum(0).min() > 0


def _edge_images():
    """image id -> (gt map, gt segments_info, pred map, pred segments_info); string ids (hotcoco's are ints)."""
    big = 2**24 - 200  # near the largest id a PNG stores

    def shifted(ids, offset):
        return np.where(np.array(ids) > 0, np.array(ids) + offset, 0)

    bus_pred = [dict(s, category_id=BUS) if s["id"] == 5 else s for s in _pred_segments(1)]
    images = {f"fixture-{i}": (GT[i][0], _gt_segments(i), PRED[i][0], _pred_segments(i)) for i in GT}
    images.update({
        "void-both": (VOID_MAP, [], VOID_MAP, []),
        "void-gt": (VOID_MAP, [], PRED[1][0], bus_pred),  # predictions on void: no FP (bus: none anywhere else)
        "void-pred": (GT[1][0], _gt_segments(1), VOID_MAP, []),
        "unlisted-gt-id": (GT[1][0], [s for s in _gt_segments(1) if s["id"] != 12], PRED[1][0], bus_pred),
        "gt-listed-without-pixels": (GT[2][0], _gt_segments(2) + [{"id": 55, "category_id": CAR, "iscrowd": 0}],
                                     PRED[2][0], _pred_segments(2)),
        # hotcoco would take ground-truth areas from the json: the backend does not pass them
        "inconsistent-json-area": (GT[3][0], [dict(s, area=1000) for s in _gt_segments(3)], PRED[3][0],
                                   _pred_segments(3)),
        "large-ids": (shifted(GT[2][0], big), [dict(s, id=s["id"] + big) for s in _gt_segments(2)],
                      shifted(PRED[2][0], 65530), [dict(s, id=s["id"] + 65530) for s in _pred_segments(2)]),
    })
    return images


def _write_pairs(root, images):
    pairs = []
    for image_id, (gt_map, gt_segments, pred_map, pred_segments) in images.items():
        gt_file, pred_file = str(root / "gt" / f"{image_id}.png"), str(root / "pred" / f"{image_id}.png")
        write_panoptic_ids(gt_file, np.asarray(gt_map))
        write_panoptic_ids(pred_file, np.asarray(pred_map))
        pairs.append(ImagePair(image_id, gt_file, gt_segments, pred_file, pred_segments))
    return pairs


def test_backends_count_the_same_on_edge_cases(tmp_path):
    categories = PanopticCategories.from_json(EDGE_CATEGORIES)
    pairs = _write_pairs(tmp_path, _edge_images())
    stats = _assert_same_counts(pairs, categories)
    bus, tree = categories.ids.index(BUS), categories.ids.index(10)
    assert stats[bus].tolist() == [0, 1, 0, 0]  # predicted only, on unlisted ground truth: FP ("void-gt" none)
    assert stats[tree].tolist() == [0, 0, 0, 0]  # nowhere: left out of the means
    for name, image in _edge_images().items():  # and image by image
        _assert_same_counts(_write_pairs(tmp_path / name, {name: image}), categories)
    assert _stats(FAST_PQ_BACKEND, [], categories).tolist() == np.zeros((len(categories), 4)).tolist()


@pytest.mark.parametrize("change, message", [
    (lambda gt, pred: (gt + gt[:1], pred), r"Ground truth segments_info lists segment id\(s\) \[30\] more than once"),
    (lambda gt, pred: (gt, pred + pred[:1]), r"Predicted segments_info lists segment id\(s\) \[3\] more than once"),
    (lambda gt, pred: ([dict(s, category_id=2) if s["id"] == 12 else s for s in gt], pred),
     r"Ground truth has category_id\(s\) \[2\]"),
    (lambda gt, pred: (gt, [s for s in pred if s["id"] != 5]), r"\[5\] are in the PNG but not in segments_info"),
    (lambda gt, pred: (gt, pred + [{"id": 9, "category_id": CAR}]), r"\[9\] are in segments_info but have no pixel"),
])
def test_fast_backend_rejects_what_ours_rejects(tmp_path, change, message):
    """hotcoco accepts the first three (checked before it runs); the others it rejects, and ours names the file."""
    categories = PanopticCategories.from_json(CATEGORIES)
    gt_segments, pred_segments = change(_gt_segments(1), _pred_segments(1))
    pairs = _write_pairs(tmp_path, {1: (GT[1][0], gt_segments, PRED[1][0], pred_segments)})
    for backend in (REFERENCE_PQ_BACKEND, FAST_PQ_BACKEND):
        with pytest.raises(DataError, match=message) as error:
            _stats(backend, pairs, categories)
        assert "1.png" in str(error.value)  # the file at fault


def test_missing_png_is_reported_by_ours(tmp_path, caplog):
    categories = PanopticCategories.from_json(CATEGORIES)
    pair = _write_pairs(tmp_path, {1: (GT[1][0], _gt_segments(1), PRED[1][0], _pred_segments(1))})[0]
    missing = ImagePair(1, pair.gt_file, pair.gt_segments, str(tmp_path / "nowhere.png"), pair.pred_segments)
    with caplog.at_level(logging.WARNING), pytest.raises(DataError, match="nowhere.png"):
        _stats(FAST_PQ_BACKEND, [missing], categories)
    assert f"scoring them with {REFERENCE_PQ_BACKEND}" in caplog.text


@pytest.fixture
def dataset(tmp_path):
    """The hand-computed 3-image fixture of test_panoptic_evaluation, registered as a panoptic dataset."""
    name = "test_fast_pq_api"
    gt_json = _write_fixture(tmp_path, GT, _gt_segments, "gt")
    register_coco_panoptic(name, panoptic_metadata(CATEGORIES), str(tmp_path / "images"), str(tmp_path / "gt"),
                           gt_json)
    yield name, gt_json
    DatasetCatalog.pop(name, None)
    MetadataCatalog.pop(name, None)


def _evaluate(evaluator):
    evaluator.reset()
    for image_id in PRED:
        evaluator.process(_inputs(image_id), [_model_output(image_id)])
    return evaluator.evaluate()["panoptic_seg"]


def test_evaluator_uses_the_fast_backend_by_default_and_reports_the_same(dataset, tmp_path, caplog):
    name, _ = dataset
    evaluator = COCOPanopticEvaluator(name, distributed=False)
    assert evaluator.backend == FAST_PQ_BACKEND and available_pq_backends() == [FAST_PQ_BACKEND, REFERENCE_PQ_BACKEND]
    with caplog.at_level(logging.INFO, logger="seg_research.evaluation.panoptic_evaluation"):
        fast = _evaluate(evaluator)
    assert f"({FAST_PQ_BACKEND})" in caplog.text
    reference = _evaluate(COCOPanopticEvaluator(name, distributed=False, use_fast_impl=False))
    assert list(fast) == list(reference)
    for key, value in reference.items():
        assert fast[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key
    assert evaluator.with_backend(REFERENCE_PQ_BACKEND).backend == REFERENCE_PQ_BACKEND
    assert evaluator.backend == FAST_PQ_BACKEND
    with pytest.raises(KeyError, match="registered"):
        evaluator.with_backend("panopticapi")
    cfg = get_cfg()
    assert cfg.TEST.PANOPTIC_USE_FAST_IMPL is True
    assert build_evaluator(cfg, name, str(tmp_path)).backend == FAST_PQ_BACKEND
    cfg.TEST.PANOPTIC_USE_FAST_IMPL = False
    assert build_evaluator(cfg, name, str(tmp_path)).backend == REFERENCE_PQ_BACKEND


def test_fallback_to_ours_without_hotcoco(dataset, monkeypatch, caplog):
    name, _ = dataset
    expected = _evaluate(COCOPanopticEvaluator(name, distributed=False, use_fast_impl=False))
    for module in ("hotcoco", "hotcoco.panoptic"):
        monkeypatch.setitem(sys.modules, module, None)  # `import hotcoco` now raises ImportError
    with caplog.at_level(logging.WARNING):
        assert select_pq_backend(True) == REFERENCE_PQ_BACKEND
        evaluator = COCOPanopticEvaluator(name, distributed=False)
    assert "pip install hotcoco" in caplog.text
    assert evaluator.backend == REFERENCE_PQ_BACKEND and available_pq_backends() == [REFERENCE_PQ_BACKEND]
    res = _evaluate(evaluator)
    assert all(res[k] == pytest.approx(v, abs=1e-12, nan_ok=True) for k, v in expected.items())
    with pytest.raises(ImportError):
        PQ_BACKEND_REGISTRY.get(FAST_PQ_BACKEND)()
