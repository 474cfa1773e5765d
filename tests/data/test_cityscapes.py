"""Cityscapes fine: a small tree laid out like leftImg8bit/gtFine_trainvaltest.zip; semantic records with
labelIds -> trainIds (cityscapesscripts' table), instances from instanceIds.png (crowd groups included),
panoptic from cityscapesscripts' own createPanopticImgs run on the tree, metadata, errors, and a few
Semantic FPN iterations on it."""
import json
import os

import numpy as np
import pytest
from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.cityscapes import (
    CITYSCAPES_LABEL_MAP,
    load_cityscapes_instances,
    load_cityscapes_semantic,
    register_all_cityscapes,
)
from seg_research.data.datasets.cityscapes_panoptic import load_cityscapes_panoptic, register_all_cityscapes_panoptic
from seg_research.data.mapper import DatasetMapper
from seg_research.structures import BoxMode

from .semseg_catalog_training import train_semantic_fpn

SPLITS = {"train": ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"],
          "val": ["frankfurt_000000_000294"], "test": ["berlin_000000_000019"]}
SIZE = (32, 64)  # the real images are 1024x2048
CAR1, CAR2, PERSONS = (slice(18, 26), slice(4, 20)), (slice(18, 26), slice(24, 36)), (slice(20, 30), slice(40, 48))


def _ids():
    """(labelIds, instanceIds) of every image: sky / building / road, two cars, a person group
    (crowd: label id without an instance number) and the ego vehicle (ignored)."""
    label_ids = np.full(SIZE, 7, np.uint8)  # road
    label_ids[:8], label_ids[8:16] = 23, 11  # sky, building
    instance_ids = label_ids.astype(np.uint16)  # 16-bit PNGs, as released
    for region, label, instance in ((CAR1, 26, 26000), (CAR2, 26, 26001), (PERSONS, 24, 24)):
        label_ids[region], instance_ids[region] = label, instance
    label_ids[30:], instance_ids[30:] = 1, 1  # ego vehicle
    return label_ids, instance_ids


def write_cityscapes(root):
    """``root/cityscapes`` as released; returns that folder."""
    cityscapes = root / "cityscapes"
    label_ids, instance_ids = _ids()
    for split, image_ids in SPLITS.items():
        for image_id in image_ids:
            city = image_id.split("_")[0]
            images, gt = cityscapes / "leftImg8bit" / split / city, cityscapes / "gtFine" / split / city
            images.mkdir(parents=True, exist_ok=True)
            gt.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full(SIZE + (3,), 90, np.uint8)).save(images / f"{image_id}_leftImg8bit.png")
            Image.fromarray(label_ids).save(gt / f"{image_id}_gtFine_labelIds.png")
            Image.fromarray(instance_ids).save(gt / f"{image_id}_gtFine_instanceIds.png")
            Image.fromarray(np.zeros(SIZE + (3,), np.uint8)).save(gt / f"{image_id}_gtFine_color.png")
            (gt / f"{image_id}_gtFine_polygons.json").write_text(
                json.dumps({"imgHeight": SIZE[0], "imgWidth": SIZE[1], "objects": []}))
    return cityscapes


@pytest.fixture
def cityscapes(tmp_path):
    return write_cityscapes(tmp_path)


def _dirs(cityscapes, split):
    return str(cityscapes / "leftImg8bit" / split), str(cityscapes / "gtFine" / split)


def test_semantic_records_and_train_ids(cityscapes):
    records = load_cityscapes_semantic(*_dirs(cityscapes, "train"))
    assert [r["image_id"] for r in records] == SPLITS["train"]
    first = dict(records[0])
    assert first.pop("sem_seg_label_map") is CITYSCAPES_LABEL_MAP
    assert first == {
        "file_name": str(cityscapes / "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"),
        "image_id": "aachen_000000_000019", "height": 32, "width": 64,
        "sem_seg_file_name": str(cityscapes / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png")}
    mapped = DatasetMapper(True, augmentations=[], image_format="BGR")(records[0])["sem_seg"].numpy()
    label_ids, _ = _ids()
    expected = {7: 0, 11: 2, 23: 10, 24: 11, 26: 13, 1: 255}  # road, building, sky, person, car, ego vehicle
    np.testing.assert_array_equal(mapped, np.vectorize(expected.get)(label_ids))
    assert CITYSCAPES_LABEL_MAP[[0, 6, 9, 10, 14, 15, 16, 29, 30]].tolist() == [255] * 9


def test_instances_from_instance_ids_with_crowd_group(cityscapes):
    records = load_cityscapes_instances(*_dirs(cityscapes, "val"))
    assert len(records) == 1 and records[0]["image_id"] == "frankfurt_000000_000294"
    annotations = records[0]["annotations"]
    assert [(a["category_id"], a["iscrowd"], a["bbox"], a["area"]) for a in annotations] == [
        (0, 1, [40.0, 20.0, 8.0, 10.0], 80), (2, 0, [4.0, 18.0, 16.0, 8.0], 128), (2, 0, [24.0, 18.0, 12.0, 8.0], 96)]
    assert all(a["bbox_mode"] == BoxMode.XYWH_ABS for a in annotations)
    mapped = DatasetMapper(True, augmentations=[], image_format="BGR", use_instance_mask=True,
                           instance_mask_format="bitmask")(records[0])
    instances = mapped["instances"]  # the crowd group is not a training instance
    assert instances.gt_classes.tolist() == [2, 2]
    assert instances.gt_masks.tensor.sum(dim=(1, 2)).tolist() == [128, 96]


def test_panoptic_from_createPanopticImgs(cityscapes, capsys):
    gt_fine = str(cityscapes / "gtFine")
    convert2panoptic(cityscapesPath=gt_fine, outputFolder=gt_fine, setNames=["val"])
    capsys.readouterr()
    meta = MetadataCatalog.get("cityscapes_fine_panoptic_val")
    records = load_cityscapes_panoptic(str(cityscapes / "leftImg8bit" / "val"),
                                       str(cityscapes / "gtFine" / "cityscapes_panoptic_val"),
                                       str(cityscapes / "gtFine" / "cityscapes_panoptic_val.json"), meta.as_dict())
    assert len(records) == 1
    record = records[0]
    assert record["file_name"] == str(cityscapes / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png")
    assert record["pan_seg_file_name"].endswith("cityscapes_panoptic_val/frankfurt_000000_000294_gtFine_panoptic.png")
    segments = {s["id"]: (s["category_id"], s["isthing"], s["iscrowd"], s["area"]) for s in record["segments_info"]}
    # contiguous ids of the standard convention: 8 things first (car 2), then stuff by label id (road 8,
    # building 10, sky 18); the ego vehicle (ignoreInEval) has no segment
    road = 14 * 64 - 128 - 96 - 80  # rows 16..29 less the cars and the person group
    assert segments == {7: (8, False, 0, road), 11: (10, False, 0, 8 * 64), 23: (18, False, 0, 8 * 64),
                        24: (0, True, 1, 80), 26000: (2, True, 0, 128), 26001: (2, True, 0, 96)}


def test_metadata_and_lazy_registration(tmp_path, set_aside_registrations):
    names = [f"cityscapes_fine_{task}_{split}" for task in ("sem_seg", "instance_seg") for split in SPLITS]
    names += ["cityscapes_fine_panoptic_train", "cityscapes_fine_panoptic_val"]
    set_aside_registrations(names)
    register_all_cityscapes(str(tmp_path))
    register_all_cityscapes_panoptic(str(tmp_path))
    assert os.listdir(tmp_path) == []
    sem = MetadataCatalog.get("cityscapes_fine_sem_seg_val")
    assert len(sem.stuff_classes) == 19 and sem.stuff_classes[:3] == ["road", "sidewalk", "building"]
    assert sem.stuff_colors[0] == [128, 64, 128] and sem.ignore_label == 255
    assert sem.thing_classes == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    assert sem.evaluator_type == "cityscapes_sem_seg" and sem.gt_dir == str(tmp_path / "cityscapes/gtFine/val")
    assert MetadataCatalog.get("cityscapes_fine_instance_seg_train").evaluator_type == "cityscapes_instance"
    pan = MetadataCatalog.get("cityscapes_fine_panoptic_val")
    assert pan.stuff_classes[:8] == sem.thing_classes and len(pan.stuff_classes) == 19
    assert pan.thing_dataset_id_to_contiguous_id == {24: 0, 25: 1, 26: 2, 27: 3, 28: 4, 31: 5, 32: 6, 33: 7}
    assert (pan.label_divisor, pan.ignore_label) == (1000, 255)
    with pytest.raises(DataError, match=r"not found: '.*cityscapes/leftImg8bit/val', '.*cityscapes/gtFine/val'"):
        DatasetCatalog.get("cityscapes_fine_sem_seg_val")
    write_cityscapes(tmp_path)
    assert {n: len(DatasetCatalog.get(n)) for n in names if "panoptic" not in n} == {
        n: len(SPLITS[n.rsplit("_", 1)[1]]) for n in names if "panoptic" not in n}
    with pytest.raises(DataError, match="createPanopticImgs"):
        DatasetCatalog.get("cityscapes_fine_panoptic_val")


def test_missing_ground_truth_is_named(cityscapes):
    os.remove(cityscapes / "gtFine/train/bochum/bochum_000000_000313_gtFine_labelIds.png")
    with pytest.raises(DataError, match=r"1 of 3 Cityscapes ground-truth files .*bochum_000000_000313_gtFine_labelIds"):
        load_cityscapes_semantic(*_dirs(cityscapes, "train"))


@pytest.mark.slow
def test_semantic_fpn_trains_on_the_tree(cityscapes, tmp_path):
    lines = train_semantic_fpn(str(tmp_path), str(tmp_path / "out"), "cityscapes_fine_sem_seg_train", "",
                               num_classes=19)
    losses = [line["total_loss"] for line in lines if "total_loss" in line]
    assert len(losses) >= 1 and all(np.isfinite(losses))
