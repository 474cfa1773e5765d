"""LVISEvaluator on a small LVIS-format json, against hand-computed AP (and its error without lvis)."""
import builtins
import json
import math

import numpy as np
import pytest
import torch

from seg_research.data.catalog import MetadataCatalog
from seg_research.evaluation import LVISEvaluator
from seg_research.structures import Boxes, Instances

H, W = 100, 120
# (category id, frequency, XYXY box); boxes are also the (rectangular) masks
GROUND_TRUTH = [(1, "f", (10, 10, 30, 30)), (2, "r", (50, 50, 70, 70))]


def _polygon(box):
    x0, y0, x1, y1 = box
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture()
def lvis_json(tmp_path):
    data = {
        "images": [{"id": 7, "height": H, "width": W, "file_name": "000000000007.jpg",
                    "neg_category_ids": [], "not_exhaustive_category_ids": []}],
        "categories": [{"id": cid, "name": f"class{cid}", "frequency": freq, "image_count": 1, "instance_count": 1,
                        "synset": f"class{cid}.n.01"} for cid, freq, _ in GROUND_TRUTH],
        "annotations": [{"id": k + 1, "image_id": 7, "category_id": cid, "area": float((x1 - x0) * (y1 - y0)),
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": _polygon((x0, y0, x1, y1))}
                        for k, (cid, _, (x0, y0, x1, y1)) in enumerate(GROUND_TRUTH)],
    }
    path = tmp_path / "lvis_v1_val_tiny.json"
    path.write_text(json.dumps(data))
    return str(path)


def _instances(boxes, scores, classes):
    masks = torch.zeros(len(boxes), H, W, dtype=torch.bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = True
    return Instances((H, W), pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                     scores=torch.tensor(scores), pred_classes=torch.tensor(classes), pred_masks=masks)


def test_lvis_ap_matches_hand_computed_values(lvis_json, tmp_path):
    pytest.importorskip("lvis")
    # class 1 (frequent): one exact detection -> AP 1 at every IoU.
    # class 2 (rare): a false positive (0.8) above the exact detection (0.7): precision 1/2 at
    #   recall 1 -> AP 0.5. Means: AP = AP50 = AP75 = APs = 0.75 (both boxes are 400 px, small),
    #   APf 1, APr 0.5; no common class and no medium/large object: NaN.
    MetadataCatalog.get("lvis_test_tiny").set(json_file=lvis_json)
    evaluator = LVISEvaluator("lvis_test_tiny", output_dir=str(tmp_path))
    evaluator.reset()
    predictions = _instances([(10, 10, 30, 30), (85, 5, 105, 25), (50, 50, 70, 70)], [0.9, 0.8, 0.7], [0, 1, 1])
    evaluator.process([{"image_id": 7}], [{"instances": predictions}])
    results = evaluator.evaluate()
    assert list(results) == ["bbox", "segm"]  # segm inferred from pred_masks
    for task in ("bbox", "segm"):
        r = results[task]
        assert list(r) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"]
        for metric, expected in (("AP", 75.0), ("AP50", 75.0), ("AP75", 75.0), ("APs", 75.0), ("APr", 50.0),
                                 ("APf", 100.0)):
            assert r[metric] == pytest.approx(expected, abs=1e-6), (task, metric)
        assert math.isnan(r["APc"]) and math.isnan(r["APm"]) and math.isnan(r["APl"])
    written = json.loads((tmp_path / "lvis_instances_results.json").read_text())
    assert [d["category_id"] for d in written] == [1, 2, 2]  # contiguous 0, 1 -> LVIS ids 1, 2
    assert np.allclose(written[0]["bbox"], [10, 10, 20, 20])


def test_clear_error_without_the_lvis_package(lvis_json, monkeypatch):
    real_import = builtins.__import__

    def no_lvis(name, *args, **kwargs):
        if name == "lvis" or name.startswith("lvis."):
            raise ImportError("No module named 'lvis'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lvis)
    MetadataCatalog.get("lvis_test_missing").set(json_file=lvis_json)
    with pytest.raises(ImportError, match=r"pip install --no-deps lvis==0\.5\.3"):
        LVISEvaluator("lvis_test_missing")
