"""ADE20K SceneParsing: a small tree laid out like ADEChallengeData2016.zip; exact records, the released
labels (0 = other) mapped to 0..149 / 255 by the mapper and the evaluator alike, metadata, errors and a
few Semantic FPN iterations on it."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.ade20k import ADE20K_LABEL_MAP, load_ade20k_sem_seg, register_all_ade20k
from seg_research.data.detection_utils import read_record_sem_seg
from seg_research.data.mapper import DatasetMapper
from seg_research.evaluation import SemSegEvaluator

from .semseg_catalog_training import train_semantic_fpn

TRAIN = [f"ADE_train_{i:08d}" for i in (1, 2, 7)]
VAL = [f"ADE_val_{i:08d}" for i in (1, 2)]
SIZE = (40, 56)


def _released(index):
    """The released label values of the index-th image: 0 "other", 1 wall, 3 sky, 150 flag."""
    labels = np.zeros(SIZE, np.uint8)
    labels[:20] = 3
    labels[20:, :28] = 1
    labels[30:, 40:] = 150 if index % 2 else 0
    return labels


def write_ade20k(root):
    """``root/ADEChallengeData2016`` as released; returns that folder."""
    ade = root / "ADEChallengeData2016"
    for split, names in (("training", TRAIN), ("validation", VAL)):
        (ade / "images" / split).mkdir(parents=True)
        (ade / "annotations" / split).mkdir(parents=True)
        for index, name in enumerate(names):
            Image.fromarray(np.full(SIZE + (3,), 30 * index, np.uint8)).save(ade / "images" / split / f"{name}.jpg")
            Image.fromarray(_released(index), mode="L").save(ade / "annotations" / split / f"{name}.png")
    (ade / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1576\t11664\t1172\twall\n")
    (ade / "sceneCategories.txt").write_text("".join(f"{name} bedroom\n" for name in TRAIN + VAL))
    return ade


@pytest.fixture
def ade(tmp_path):
    return write_ade20k(tmp_path)


def test_exact_records(ade):
    records = load_ade20k_sem_seg(str(ade), "train")
    assert [r["image_id"] for r in records] == TRAIN
    first = dict(records[0])
    assert first.pop("sem_seg_label_map") is ADE20K_LABEL_MAP
    assert first == {"file_name": str(ade / "images" / "training" / "ADE_train_00000001.jpg"),
                     "sem_seg_file_name": str(ade / "annotations" / "training" / "ADE_train_00000001.png"),
                     "height": 40, "width": 56, "image_id": "ADE_train_00000001"}
    assert [r["image_id"] for r in load_ade20k_sem_seg(str(ade), "val")] == VAL


def test_label_0_is_ignored_and_labels_shift_down_by_one():
    assert ADE20K_LABEL_MAP[0] == 255 and ADE20K_LABEL_MAP[1] == 0 and ADE20K_LABEL_MAP[150] == 149
    assert (ADE20K_LABEL_MAP[151:] == 255).all() and not ADE20K_LABEL_MAP.flags.writeable


def test_mapper_and_evaluator_read_the_same_mapped_labels(ade):
    record = load_ade20k_sem_seg(str(ade), "val")[1]
    expected = np.full(SIZE, 255, np.int64)
    expected[:20], expected[20:, :28], expected[30:, 40:] = 2, 0, 149
    np.testing.assert_array_equal(read_record_sem_seg(record), expected.astype(np.uint8))
    mapped = DatasetMapper(True, augmentations=[], image_format="BGR")(record)
    np.testing.assert_array_equal(mapped["sem_seg"].numpy(), expected)

    dataset = "test_ade20k_eval"
    MetadataCatalog.get(dataset).set(stuff_classes=["wall", "building", "sky"] + [f"c{i}" for i in range(147)],
                                     ignore_label=255)
    try:
        evaluator = SemSegEvaluator(dataset, distributed=False)
        sky_everywhere = torch.zeros((150,) + SIZE)
        sky_everywhere[2] = 1.0
        evaluator.process([record], [{"sem_seg": sky_everywhere}])
        result = evaluator.evaluate()["sem_seg"]
    finally:
        MetadataCatalog.remove(dataset)
    scored = int((expected != 255).sum())  # the "other" pixels are not scored
    assert result["pACC"] == pytest.approx(100 * 20 * 56 / scored)
    assert result["IoU-sky"] == pytest.approx(100 * 20 * 56 / scored)


def test_metadata_and_lazy_registration(tmp_path, set_aside_registrations):
    names = ["ade20k_sem_seg_train", "ade20k_sem_seg_val"]
    set_aside_registrations(names)
    register_all_ade20k(str(tmp_path))
    assert os.listdir(tmp_path) == []
    meta = MetadataCatalog.get("ade20k_sem_seg_val")
    assert len(meta.stuff_classes) == 150 and meta.stuff_classes[:3] == ["wall", "building", "sky"]
    assert meta.stuff_classes[149] == "flag" and len(meta.stuff_colors) == 150
    assert (meta.ignore_label, meta.evaluator_type) == (255, "sem_seg")
    assert meta.sem_seg_root == str(tmp_path / "ADEChallengeData2016" / "annotations" / "validation")
    with pytest.raises(DataError, match=r"not found: '.*ADEChallengeData2016/images/validation'"):
        DatasetCatalog.get("ade20k_sem_seg_val")
    write_ade20k(tmp_path)
    assert [len(DatasetCatalog.get(n)) for n in names] == [3, 2]


def test_image_without_label_is_named(ade):
    os.remove(ade / "annotations" / "training" / "ADE_train_00000007.png")
    with pytest.raises(DataError, match="ADE_train_00000007.jpg"):
        load_ade20k_sem_seg(str(ade), "train")


@pytest.mark.slow
def test_semantic_fpn_trains_and_evaluates_on_the_tree(ade, tmp_path):
    lines = train_semantic_fpn(str(tmp_path), str(tmp_path / "out"), "ade20k_sem_seg_train", "ade20k_sem_seg_val",
                               num_classes=150)
    results = [line for line in lines if "sem_seg/mIoU" in line][-1]
    assert 0.0 <= results["sem_seg/mIoU"] <= 100.0 and "sem_seg/IoU-flag" in results


def test_label_map_needs_8_bit_labels(tmp_path):
    label = tmp_path / "wide.png"
    Image.fromarray(np.full(SIZE, 300, np.uint16)).save(label)
    with pytest.raises(DataError, match="maps 8-bit label values, but the file holds uint16"):
        read_record_sem_seg({"sem_seg_file_name": str(label), "sem_seg_label_map": ADE20K_LABEL_MAP})
