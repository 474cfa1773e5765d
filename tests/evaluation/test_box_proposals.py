"""Box proposal average recall (ProposalNetwork through COCOEvaluator): values computed by hand."""
import numpy as np
import pytest
import torch

from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.evaluation import COCOEvaluator
from seg_research.evaluation.box_proposals import proposal_recall
from seg_research.structures import Boxes, BoxMode, Instances


def test_greedy_matching_recall_by_hand():
    gt = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)]
    # proposal 0 overlaps GT 0 with IoU 1.0; proposal 1 overlaps GT 1 with IoU 50/150 = 1/3 only when shifted:
    # [20, 20, 30, 40]: intersection 100, union 200 -> 0.5; proposal 2 is far away
    props = [np.array([[0, 0, 10, 10], [20, 20, 30, 40], [50, 50, 60, 60]], float)]
    ar, recalls = proposal_recall(gt, props, limit=100)
    # GT 0 overlap 1.0 (recalled at all 10 thresholds), GT 1 overlap 0.5 (recalled at t = 0.5 only)
    np.testing.assert_allclose(recalls, [1.0] + [0.5] * 9)
    assert ar == pytest.approx((1.0 + 0.5 * 9) / 10)
    # limit 1: only proposal 0 is used, GT 1 is missed
    ar1, _ = proposal_recall(gt, props, limit=1)
    assert ar1 == pytest.approx(0.5)


def test_one_proposal_is_matched_to_one_gt_only():
    gt = [np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)]  # two identical GT boxes
    ar, _ = proposal_recall(gt, [np.array([[0, 0, 10, 10]], float)], limit=10)
    assert ar == pytest.approx(0.5)
    assert np.isnan(proposal_recall([np.zeros((0, 4))], [np.zeros((0, 4))], 10)[0])


@pytest.fixture
def registered(tmp_path):
    name = "_proposal_eval_test"
    records = [{"file_name": str(tmp_path / "a.png"), "image_id": 1, "height": 200, "width": 200, "annotations": [
        # small (area 100), large (area 110 * 110 = 12100), crowd (ignored)
        {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0},
        {"bbox": [50, 50, 110, 110], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0},
        {"bbox": [150, 0, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 1},
    ]}]
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=["a"])
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_coco_evaluator_reports_detectron2s_box_proposal_keys(registered, tmp_path):
    evaluator = COCOEvaluator(registered, tasks=("bbox",), distributed=False, output_dir=str(tmp_path))
    proposals = Instances((200, 200), proposal_boxes=Boxes(torch.tensor([[50.0, 50.0, 160.0, 160.0],
                                                                          [150.0, 0.0, 170.0, 20.0]])),
                          objectness_logits=torch.tensor([3.0, 1.0]))
    evaluator.reset()
    evaluator.process([{"image_id": 1, "height": 200, "width": 200}], [{"proposals": proposals}])
    results = evaluator.evaluate()
    assert list(results) == ["box_proposals"]
    ar = results["box_proposals"]
    assert list(ar) == ["AR@100", "ARs@100", "ARm@100", "ARl@100", "AR@1000", "ARs@1000", "ARm@1000", "ARl@1000"]
    # the large box is found exactly, the small one not at all (the crowd region's proposal does not count)
    assert ar["AR@100"] == pytest.approx(50.0) and ar["ARl@100"] == pytest.approx(100.0)
    assert ar["ARs@100"] == pytest.approx(0.0) and np.isnan(ar["ARm@100"])
