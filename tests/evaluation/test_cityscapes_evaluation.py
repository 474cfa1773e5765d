"""Cityscapes evaluators on a gtFine tree laid out as the download, against hand-computed scores."""
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data.catalog import MetadataCatalog
from seg_research.evaluation import CityscapesInstanceEvaluator, CityscapesSemSegEvaluator
from seg_research.structures import Instances

pytest.importorskip("cityscapesscripts")
from cityscapesscripts.helpers.labels import labels  # noqa: E402

H, W = 40, 80
FRAME = "frankfurt_000000_000294"
UNSCORED_FRAME = "frankfurt_000000_000576"  # in gtFine, never predicted
ROAD, PERSON, CAR = 7, 24, 26  # label ids
THINGS = [label.name for label in sorted(labels, key=lambda l: l.trainId)
          if label.hasInstances and not label.ignoreInEval]
TRAIN_ID = {label.id: label.trainId for label in labels}

# instance regions: (label id, instance id, rows, cols); row 0 is "unlabeled" (id 0, ignored)
REGIONS = [(CAR, 26000, slice(5, 25), slice(5, 25)),     # car A, 400 px
           (CAR, 26001, slice(5, 25), slice(30, 55)),    # car B, 500 px
           (PERSON, 24000, slice(5, 25), slice(60, 80))]  # person, 400 px


@pytest.fixture()
def cityscapes_root(tmp_path):
    """cityscapes/{leftImg8bit,gtFine}/val/frankfurt/ with labelIds and instanceIds PNGs."""
    label_ids = np.full((H, W), ROAD, dtype=np.uint8)
    label_ids[0] = 0
    instance_ids = label_ids.astype(np.uint16)  # 16-bit PNG, as the download
    for label_id, instance_id, rows, cols in REGIONS:
        label_ids[rows, cols] = label_id
        instance_ids[rows, cols] = instance_id
    gt = tmp_path / "cityscapes" / "gtFine" / "val" / "frankfurt"
    images = tmp_path / "cityscapes" / "leftImg8bit" / "val" / "frankfurt"
    gt.mkdir(parents=True)
    images.mkdir(parents=True)
    for frame in (FRAME, UNSCORED_FRAME):
        Image.fromarray(label_ids).save(gt / f"{frame}_gtFine_labelIds.png")
        Image.fromarray(instance_ids).save(gt / f"{frame}_gtFine_instanceIds.png")
        Image.new("RGB", (W, H)).save(images / f"{frame}_leftImg8bit.png")
    return tmp_path / "cityscapes"


def _register(name, root):
    MetadataCatalog.get(name).set(gt_dir=str(root / "gtFine" / "val"), thing_classes=THINGS,
                                  evaluator_type="cityscapes_instance")


def _input(root):
    return {"file_name": str(root / "leftImg8bit" / "val" / "frankfurt" / f"{FRAME}_leftImg8bit.png"),
            "image_id": FRAME, "height": H, "width": W}


def test_instance_ap_matches_hand_computed_value(cityscapes_root, caplog):
    # car A predicted exactly (IoU 1, score 0.9); car B: 20 x 19 of its 20 x 25 pixels (IoU 0.76, 0.8);
    # person: 12 x 19 of its 20 x 20 (IoU 0.57, 0.7). Overlap thresholds 0.50, 0.55, ..., 0.95:
    #   car: AP 1 while both match (6 thresholds up to 0.75); above, B is a false positive and a
    #        miss: the package's step integral of precision (1/2, 1) over recall (1/2, 1/2, 0) gives 0.5
    #   person: AP 1 at 0.50 and 0.55, 0 above. Classes without ground truth are NaN (left out).
    #   AP = mean(6 * [1] + 4 * [0.5] + 2 * [1] + 8 * [0]) = 0.5; AP50 = 1.
    masks = np.zeros((3, H, W), dtype=bool)
    masks[0, 5:25, 5:25] = True
    masks[1, 5:25, 30:49] = True
    masks[2, 5:17, 60:79] = True
    instances = Instances((H, W), pred_masks=torch.from_numpy(masks), scores=torch.tensor([0.9, 0.8, 0.7]),
                          pred_classes=torch.tensor([THINGS.index("car"), THINGS.index("car"),
                                                     THINGS.index("person")]))
    _register("cityscapes_test_instances", cityscapes_root)
    evaluator = CityscapesInstanceEvaluator("cityscapes_test_instances")
    evaluator.reset()
    evaluator.process([_input(cityscapes_root)], [{"instances": instances}])
    with caplog.at_level(logging.WARNING):
        results = evaluator.evaluate()
    assert "1 ground-truth images" in caplog.text  # UNSCORED_FRAME
    assert list(results) == ["segm"]
    assert results["segm"]["AP"] == pytest.approx(50.0)
    assert results["segm"]["AP50"] == pytest.approx(100.0)


def test_sem_seg_iou_matches_hand_computed_value(cityscapes_root):
    # Prediction: road everywhere except car A (car), 20 x 19 of car B (car; its other 120 px road)
    # and the person (person). Row 0 is unlabeled in the ground truth and not scored.
    #   road 1820 px: IoU 1820 / (1820 + 120); car: 780 / 900; person: 1 (other classes NaN)
    #   iIoU: car instances weighted by 1 / size: tp = 400/400 + 380/500 = 1.76, fn = 120/500 = 0.24
    #         -> 0.88; person 1 -> mean 0.94. Categories (flat, vehicle, human) give the same numbers.
    train_ids = np.full((H, W), TRAIN_ID[ROAD], dtype=np.int64)
    train_ids[5:25, 5:25] = TRAIN_ID[CAR]
    train_ids[5:25, 30:49] = TRAIN_ID[CAR]
    train_ids[5:25, 60:80] = TRAIN_ID[PERSON]
    logits = torch.nn.functional.one_hot(torch.from_numpy(train_ids), 19).permute(2, 0, 1).float()
    _register("cityscapes_test_sem_seg", cityscapes_root)
    evaluator = CityscapesSemSegEvaluator("cityscapes_test_sem_seg")
    evaluator.reset()
    evaluator.process([_input(cityscapes_root)], [{"sem_seg": logits}])
    results = evaluator.evaluate()["sem_seg"]
    iou = 100 * np.mean([1820 / 1940, 780 / 900, 1.0])
    assert results["IoU"] == pytest.approx(iou) and results["IoU_sup"] == pytest.approx(iou)
    assert results["iIoU"] == pytest.approx(94.0) and results["iIoU_sup"] == pytest.approx(94.0)


def test_missing_gt_dir_metadata_is_named():
    MetadataCatalog.get("cityscapes_no_gt_dir").set(thing_classes=THINGS)
    with pytest.raises(KeyError, match="gt_dir"):
        CityscapesSemSegEvaluator("cityscapes_no_gt_dir")
