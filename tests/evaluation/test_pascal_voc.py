"""PASCAL VOC: load_voc_instances on a VOCdevkit tree, and PascalVOCDetectionEvaluator's
VOC2007 11-point and VOC2012 area AP against values computed by hand (see the comments)."""
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.pascal_voc import CLASS_NAMES, load_voc_instances, register_pascal_voc
from seg_research.data.errors import DataError
from seg_research.evaluation import PascalVOCDetectionEvaluator
from seg_research.evaluation.pascal_voc_evaluation import voc_ap
from seg_research.structures import Boxes, BoxMode, Instances

# image id -> (width, height, [(class, VOC box xmin, ymin, xmax, ymax (1-based, inclusive), difficult)])
GROUND_TRUTH = {
    "000001": (100, 80, [("dog", 11, 11, 50, 50, 0), ("cat", 61, 11, 90, 40, 1)]),
    "000002": (120, 90, [("dog", 21, 21, 60, 60, 0), ("dog", 1, 1, 10, 10, 0)]),
    "000003": (100, 100, [("cat", 31, 31, 70, 70, 0)]),
}

# (image, class, XYXY absolute 0-based box, score). A VOC box (x0, y0, x1, y1) is the prediction
# (x0 - 1, y0 - 1, x1, y1).
PREDICTIONS = [
    ("000001", "dog", (10, 10, 50, 50), 0.9),   # exact: TP
    ("000002", "dog", (20, 20, 60, 60), 0.8),   # exact: TP
    ("000001", "dog", (10, 10, 50, 50), 0.7),   # duplicate: FP
    ("000003", "dog", (5, 5, 30, 30), 0.6),     # no dog in the image: FP
    ("000002", "dog", (0, 0, 10, 16), 0.5),     # VOC (1, 1, 10, 16) vs (1, 1, 10, 10): IoU 100/160 = 0.625
    ("000003", "cat", (30, 30, 70, 70), 0.95),  # exact: TP
    ("000001", "cat", (60, 10, 90, 40), 0.85),  # the difficult cat: neither TP nor FP
    ("000002", "cat", (70, 50, 110, 85), 0.3),  # FP
]


def _xml(width, height, objects):
    body = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}"
        f"</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, x0, y0, x1, y1, difficult in objects)
    return (f"<annotation><folder>VOC2007</folder><filename>x.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>{body}</annotation>")


@pytest.fixture()
def voc_root(tmp_path):
    """VOCdevkit/VOC2007 as unpacked from the official tarball (3 images, split 'test')."""
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / sub).mkdir(parents=True)
    for image_id, (w, h, objects) in GROUND_TRUTH.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(_xml(w, h, objects))
        Image.new("RGB", (w, h), (90, 90, 90)).save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets" / "Main" / "test.txt").write_text("000001\n000002\n000003\n")
    (root / "ImageSets" / "Main" / "train.txt").write_text("000002\n")
    return str(root)


def test_load_voc_instances_reads_the_devkit_layout(voc_root):
    records = load_voc_instances(voc_root, "test", CLASS_NAMES)
    assert [r["image_id"] for r in records] == ["000001", "000002", "000003"]
    assert sum(len(r["annotations"]) for r in records) == 5
    first = records[0]
    assert first["file_name"] == os.path.join(voc_root, "JPEGImages", "000001.jpg")
    assert (first["height"], first["width"]) == (80, 100)
    assert first["annotations"][0] == {"bbox": [10.0, 10.0, 50.0, 50.0], "bbox_mode": BoxMode.XYXY_ABS,
                                       "category_id": CLASS_NAMES.index("dog")}
    assert first["annotations"][1]["category_id"] == CLASS_NAMES.index("cat")  # difficult objects are loaded
    assert len(load_voc_instances(voc_root, "train")) == 1

    with pytest.raises(DataError, match="'cat' is not one of the 1 class_names"):
        load_voc_instances(voc_root, "test", ["dog"])
    with pytest.raises(DataError, match="val"):
        load_voc_instances(voc_root, "val")


def _evaluate(name):
    evaluator = PascalVOCDetectionEvaluator(name)
    evaluator.reset()
    for image_id in GROUND_TRUTH:
        mine = [p for p in PREDICTIONS if p[0] == image_id]
        instances = Instances((100, 120), pred_boxes=Boxes(torch.tensor([p[2] for p in mine], dtype=torch.float32)),
                              scores=torch.tensor([p[3] for p in mine]),
                              pred_classes=torch.tensor([CLASS_NAMES.index(p[1]) for p in mine]))
        evaluator.process([{"image_id": image_id}], [{"instances": instances}])
    return evaluator.evaluate()


def test_voc2012_and_voc2007_ap_match_hand_computed_values(voc_root, caplog):
    # dog, 3 positives; detections by score: TP, TP, FP, FP, then the IoU-0.625 one (TP below 0.625).
    #   IoU 0.50-0.60: rec 1/3, 2/3, 2/3, 2/3, 1; prec 1, 1, 2/3, 1/2, 3/5
    #     area AP = 1/3 * 1 + 1/3 * 1 + 1/3 * 0.6 = 13/15; 11-point AP = (7 * 1 + 4 * 0.6) / 11 = 47/55
    #   IoU 0.65-0.95: recall stops at 2/3: area AP = 2/3; 11-point AP = 7/11 (levels 0 .. 0.6)
    # cat, 1 positive (the other is difficult): TP, ignored, FP -> AP 1 at every IoU, both metrics.
    for year, dog_low_iou, dog_high_iou in ((2012, 13 / 15, 2 / 3), (2007, 47 / 55, 7 / 11)):
        name = f"voc_test_tree_{year}"
        register_pascal_voc(name, voc_root, "test", year)
        assert MetadataCatalog.get(name).evaluator_type == "pascal_voc"
        assert len(DatasetCatalog.get(name)) == 3
        with caplog.at_level(logging.WARNING):
            results = _evaluate(name)
        assert "18 classes have no non-difficult ground truth" in caplog.text
        per_iou = [(dog_low_iou + 1) / 2] * 3 + [(dog_high_iou + 1) / 2] * 7
        assert list(results) == ["bbox"] and list(results["bbox"]) == ["AP", "AP50", "AP75"]
        np.testing.assert_allclose(results["bbox"]["AP50"], 100 * per_iou[0], rtol=1e-9)
        np.testing.assert_allclose(results["bbox"]["AP75"], 100 * per_iou[5], rtol=1e-9)
        np.testing.assert_allclose(results["bbox"]["AP"], 100 * np.mean(per_iou), rtol=1e-9)
    # 2012: AP50 93.33, AP75 83.33, AP 86.33; 2007: AP50 92.73, AP75 81.82, AP 85.09
    assert round(results["bbox"]["AP50"], 2) == 92.73


def test_voc_ap_metrics():
    rec, prec = np.array([0.5, 1.0]), np.array([1.0, 0.5])
    assert voc_ap(rec, prec) == pytest.approx(0.75)  # 0.5 * 1 + 0.5 * 0.5
    assert voc_ap(rec, prec, use_07_metric=True) == pytest.approx((6 * 1 + 5 * 0.5) / 11)
    # the devkit's levels: np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > a recall of exactly 0.3
    assert voc_ap(np.array([0.3]), np.array([1.0]), use_07_metric=True) == pytest.approx(3 / 11)


def test_evaluator_needs_voc_metadata():
    MetadataCatalog.get("voc_no_meta_test").set(thing_classes=["a"])
    with pytest.raises(KeyError, match="register_pascal_voc"):
        PascalVOCDetectionEvaluator("voc_no_meta_test")


def test_builtin_voc_names_are_detectron2s():
    from seg_research.data.datasets import get_datasets_root

    names = [n for n in DatasetCatalog.list() if n.startswith("voc_20") and "sem_seg" not in n]
    assert sorted(names) == sorted(["voc_2007_trainval", "voc_2007_train", "voc_2007_val", "voc_2007_test",
                                    "voc_2012_trainval", "voc_2012_train", "voc_2012_val"])
    meta = MetadataCatalog.get("voc_2007_test")
    assert (meta.year, meta.split, meta.evaluator_type, len(meta.thing_classes)) == (2007, "test", "pascal_voc", 20)
    assert meta.dirname in (os.path.join(get_datasets_root(), "VOC2007"),
                            os.path.join(get_datasets_root(), "VOCdevkit", "VOC2007"))
