import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data import DataError, MetadataCatalog
from seg_research.evaluation import SemSegEvaluator

GT = np.array([[0, 0, 1, 255], [1, 1, 0, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 2], [1, 2, 0, 0]])


@pytest.fixture
def dataset(tmp_path):
    name = "test_semseg_eval"
    MetadataCatalog.get(name).set(stuff_classes=["a", "b", "c", "d"], ignore_label=255)
    path = tmp_path / "gt.png"
    Image.fromarray(GT).save(path)
    yield name, str(path)
    MetadataCatalog.remove(name)


def _logits(pred, k=4):
    return torch.nn.functional.one_hot(torch.as_tensor(pred), k).permute(2, 0, 1).float()


def test_hand_computed_confusion_with_ignore_and_absent_class(dataset, tmp_path):
    name, gt_file = dataset
    ev = SemSegEvaluator(name, distributed=False, output_dir=str(tmp_path), per_image_csv=True)
    ev.reset()
    ev.process([{"sem_seg_file_name": gt_file, "image_id": 7}], [{"sem_seg": _logits(PRED)}])
    np.testing.assert_array_equal(ev._conf, [[2, 1, 0, 0], [0, 2, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    res = ev.evaluate()["sem_seg"]
    assert res["mIoU"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 0) / 3, abs=1e-9)
    assert res["fwIoU"] == pytest.approx(100 * (3 * 2 / 3 + 3 * 0.5) / 6, abs=1e-9)
    assert res["mACC"] == pytest.approx(100 * 2 / 3, abs=1e-9)
    assert res["pACC"] == pytest.approx(100 * 4 / 6, abs=1e-9)
    assert res["mDice"] == pytest.approx(100 * (4 / 5 + 4 / 6 + 0) / 3, abs=1e-9)
    assert res["IoU-a"] == pytest.approx(100 * 2 / 3) and res["IoU-b"] == pytest.approx(50.0)
    assert res["IoU-c"] == 0.0 and math.isnan(res["ACC-c"])  # predicted, never in GT
    assert math.isnan(res["IoU-d"]) and math.isnan(res["Dice-d"])  # absent: excluded and marked
    rows = list(csv.reader(open(tmp_path / "sem_seg_per_image.csv")))
    assert rows[0][:4] == ["image_id", "file_name", "IoU-a", "Dice-a"]
    assert rows[1][0] == "7" and float(rows[1][2]) == pytest.approx(100 * 2 / 3, abs=1e-3)


def test_per_image_dice_is_the_mean_of_each_images_dice(dataset, tmp_path):
    name, gt_file = dataset
    gt2 = tmp_path / "gt2.png"
    Image.fromarray(np.zeros((2, 4), dtype=np.uint8)).save(gt2)  # all "a"
    pred2 = np.array([[0, 0, 1, 1], [1, 1, 1, 1]])
    ev = SemSegEvaluator(name, distributed=False)
    ev.reset()
    ev.process([{"sem_seg_file_name": gt_file}, {"sem_seg_file_name": str(gt2)}],
               [{"sem_seg": _logits(PRED)}, {"sem_seg": _logits(pred2)}])
    res = ev.evaluate()["sem_seg"]
    # image 1: Dice-a 2*2/(3+2), Dice-b 2*2/(3+3), Dice-c 0/(0+1); image 2: Dice-a 2*2/(8+2), Dice-b 0/(0+6)
    assert res["Dice-per-image-a"] == pytest.approx(100 * (4 / 5 + 4 / 10) / 2, abs=1e-9)
    assert res["Dice-per-image-b"] == pytest.approx(100 * (4 / 6 + 0) / 2, abs=1e-9)
    assert res["Dice-per-image-c"] == 0.0  # defined on image 1 only
    assert math.isnan(res["Dice-per-image-d"])  # in no image's ground truth or prediction
    assert res["Dice-a"] == pytest.approx(100 * 2 * 4 / (11 + 4), abs=1e-9)  # pooled over both images: differs


def test_size_mismatch_names_file(dataset):
    name, gt_file = dataset
    ev = SemSegEvaluator(name, distributed=False)
    with pytest.raises(DataError, match="gt.png"):
        ev.process([{"sem_seg_file_name": gt_file}], [{"sem_seg": _logits(np.zeros((3, 4), dtype=int))}])


def test_out_of_range_label_names_file(dataset, tmp_path):
    name, _ = dataset
    bad = tmp_path / "bad.png"
    Image.fromarray(np.full((2, 4), 9, dtype=np.uint8)).save(bad)
    ev = SemSegEvaluator(name, distributed=False)
    with pytest.raises(DataError, match=r"bad.png.*|\[9\]"):
        ev.process([{"sem_seg_file_name": str(bad)}], [{"sem_seg": _logits(PRED)}])
