"""The fast COCO backend (hotcoco) gives pycocotools' numbers: every metric COCOEvaluator reports, on
generated problems and through the evaluator; without the package the evaluator falls back to pycocotools."""
import json
import logging
import math
import sys

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util

from benchmarks.coco_synthetic import synthetic_coco_problem
from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.coco import index_coco
from seg_research.evaluation import COCOEvaluator
from seg_research.evaluation.coco_evaluation import coco_metrics
from seg_research.evaluation.fast_eval_api import (
    COCO_EVAL_BACKEND_REGISTRY,
    FAST_BACKEND,
    REFERENCE_BACKEND,
    select_backend,
)
from seg_research.evaluation.testing import max_metric_difference
from seg_research.structures import Boxes, BoxMode, Instances

pytest.importorskip("hotcoco")  # pinned in requirements.lock; the fallback test below hides it


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-6


def _problem(seed, num_images=60, num_categories=12):
    gt, results = synthetic_coco_problem(num_images, num_categories=num_categories, seed=seed)
    for r in results[:40:2]:  # score ties: COCOeval breaks them by results order (a stable sort)
        r["score"] = 0.5
    return gt, results


def test_generated_problem_has_the_hard_cases():
    gt, results = _problem(seed=0)
    annotated = {a["image_id"] for a in gt["annotations"]}
    detected = {r["image_id"] for r in results}
    images = {i["id"] for i in gt["images"]}
    assert sum(a["iscrowd"] for a in gt["annotations"]) >= 1
    assert images - annotated, "an image without annotations"
    assert annotated - detected, "an annotated image without detections"
    without_gt = {c["id"] for c in gt["categories"]} - {a["category_id"] for a in gt["annotations"]}
    assert without_gt and without_gt & {r["category_id"] for r in results}, "a detected category without GT"
    areas = [a["area"] for a in gt["annotations"]]
    assert min(areas) < 32 ** 2 < 96 ** 2 < max(areas)  # small, medium and large objects
    assert len({r["score"] for r in results}) < len(results)  # ties


@pytest.mark.parametrize("seed, max_dets", [(0, [1, 10, 100]), (1, [1, 10, 20]), (2, [1, 3])])
@pytest.mark.parametrize("task", ["bbox", "segm"])
def test_backends_agree_on_generated_problems(seed, max_dets, task):
    gt, results = _problem(seed)
    coco_gt = index_coco(gt, "<generated>")
    drop = "segmentation" if task == "bbox" else "bbox"
    task_results = [{k: v for k, v in r.items() if k != drop} for r in results]
    image_ids = sorted(i["id"] for i in gt["images"])[5:]  # a subset, as COCOEvaluator evaluates seen images
    out = {name: COCO_EVAL_BACKEND_REGISTRY.get(name)(coco_gt).precision(task_results, task, image_ids, max_dets)
           for name in (REFERENCE_BACKEND, FAST_BACKEND)}
    ref, fast = out[REFERENCE_BACKEND], out[FAST_BACKEND]
    assert fast.cat_ids == ref.cat_ids and fast.area_labels == ref.area_labels and fast.max_dets == max_dets
    np.testing.assert_array_equal(fast.iou_thrs, ref.iou_thrs)
    np.testing.assert_allclose(fast.precision, ref.precision, rtol=0, atol=1e-12)
    names = [c["name"] for c in gt["categories"]]
    ids = [c["id"] for c in gt["categories"]]
    expected, actual = coco_metrics(ref, names, ids), coco_metrics(fast, names, ids)
    assert list(actual) == list(expected) and len(expected) == 6 + 12
    assert all(_same(actual[k], expected[k]) for k in expected), {k: (actual[k], expected[k]) for k in expected}
    assert 0 < expected["AP"] < 100 and math.isnan(expected[f"AP-{names[-1]}"])  # last category: no GT


def test_results_dicts_not_modified():
    gt, results = _problem(seed=3, num_images=10)
    task_results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    before = json.dumps(task_results)
    for name in (REFERENCE_BACKEND, FAST_BACKEND):
        COCO_EVAL_BACKEND_REGISTRY.get(name)(index_coco(gt, "<generated>")).precision(
            task_results, "segm", [i["id"] for i in gt["images"]], [1, 10, 100])
    assert json.dumps(task_results) == before


@pytest.fixture
def generated_dataset(tmp_path):
    """A generated problem registered as a dataset by its json (json_file metadata, no images needed)."""
    gt, results = _problem(seed=4, num_images=30)
    json_file = tmp_path / "gt.json"
    json_file.write_text(json.dumps(gt))
    name = "test_fast_eval_generated"
    DatasetCatalog.register(name, lambda: [])
    MetadataCatalog.get(name).set(json_file=str(json_file), thing_classes=[c["name"] for c in gt["categories"]],
                                  thing_dataset_id_to_contiguous_id={c["id"]: i for i, c in
                                                                     enumerate(gt["categories"])})
    yield name, gt, results
    DatasetCatalog.pop(name, None)
    MetadataCatalog.pop(name, None)


def _evaluate(name, gt, results, **kwargs):
    """COCOEvaluator fed with the results as model outputs would give them, then evaluate()."""
    evaluator = COCOEvaluator(name, distributed=False, **kwargs)
    evaluator.reset()
    to_contiguous = {c["id"]: i for i, c in enumerate(gt["categories"])}
    for image in gt["images"][1:]:  # the first image is not seen: it must not count
        mine = [r for r in results if r["image_id"] == image["id"]]
        boxes = torch.tensor([r["bbox"] for r in mine], dtype=torch.float64).reshape(-1, 4)
        masks = torch.from_numpy(np.stack([mask_util.decode(r["segmentation"]) for r in mine])
                                 if mine else np.zeros((0, image["height"], image["width"]), np.uint8))
        instances = Instances((image["height"], image["width"]),
                              pred_boxes=Boxes(BoxMode.convert(boxes, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS).float()),
                              scores=torch.tensor([r["score"] for r in mine], dtype=torch.float32),
                              pred_classes=torch.tensor([to_contiguous[r["category_id"]] for r in mine],
                                                        dtype=torch.int64),
                              pred_masks=masks.bool())
        evaluator.process([{"image_id": image["id"], "height": image["height"], "width": image["width"]}],
                          [{"instances": instances}])
    return evaluator.evaluate()


def test_evaluator_reports_the_same_with_both_backends(generated_dataset, caplog):
    name, gt, results = generated_dataset
    with caplog.at_level(logging.INFO, logger="seg_research.evaluation.coco_evaluation"):
        fast = _evaluate(name, gt, results)  # use_fast_impl defaults to True
    assert f"({FAST_BACKEND}, maxDets=100)" in caplog.text
    reference = _evaluate(name, gt, results, use_fast_impl=False, max_dets_per_image=100)
    for task in ("bbox", "segm"):
        assert list(fast[task]) == list(reference[task]) and len(fast[task]) == 6 + 12
        for key, value in reference[task].items():
            assert _same(fast[task][key], value), (task, key, fast[task][key], value)


def test_fallback_to_pycocotools_without_the_fast_package(generated_dataset, monkeypatch, caplog):
    name, gt, results = generated_dataset
    expected = _evaluate(name, gt, results, use_fast_impl=False)
    monkeypatch.setitem(sys.modules, "hotcoco", None)  # `import hotcoco` now raises ImportError
    with caplog.at_level(logging.INFO):
        assert select_backend(True) == REFERENCE_BACKEND
        res = _evaluate(name, gt, results, use_fast_impl=True)
    assert "pip install hotcoco" in caplog.text
    assert f"({REFERENCE_BACKEND}, maxDets=100)" in caplog.text
    for task in ("bbox", "segm"):
        assert all(_same(res[task][k], v) for k, v in expected[task].items())
    with pytest.raises(ImportError):
        COCO_EVAL_BACKEND_REGISTRY.get(FAST_BACKEND)(index_coco(gt, "<generated>"))


def test_with_backend_copies_the_evaluator_and_coco_results_can_be_given_directly(generated_dataset):
    name, gt, results = generated_dataset
    evaluator = COCOEvaluator(name, distributed=False)
    assert evaluator.backend == FAST_BACKEND
    with pytest.raises(KeyError, match="registered"):
        evaluator.with_backend("nope")
    evaluated = {}
    for backend in (FAST_BACKEND, REFERENCE_BACKEND):
        other = evaluator.with_backend(backend)
        assert other.backend == backend and other is not evaluator
        for image in gt["images"]:
            other.process_coco_results(image["id"], [r for r in results if r["image_id"] == image["id"]])
        evaluated[backend] = other.evaluate()
    assert evaluator.backend == FAST_BACKEND and evaluator.evaluate() is not None  # the original is untouched
    assert max_metric_difference(evaluated[FAST_BACKEND], evaluated[REFERENCE_BACKEND]) <= 1e-6
    assert 0 < evaluated[REFERENCE_BACKEND]["segm"]["AP"] < 100
