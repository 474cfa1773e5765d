"""ADE20K panoptic and instance (Mask2Former's ``ade20k_panoptic_*`` / ``ade20k_instance_*``): a tiny tree laid
out like ADEChallengeData2016 after Mask2Former's prepare_ade20k_{pan,ins}_seg.py (8x8 images, string image
ids, categories 0..149), exact records, the in-order class ids, metadata and errors; and our preparation from
a tree laid out like the two downloads (hand-computed segments, ids and masks)."""
import json
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.ade20k import ADE20K_LABEL_MAP
from seg_research.data.datasets.ade20k_panoptic import (
    ADE20K_INSTANCE_CLASSES,
    ADE20K_PANOPTIC_CATEGORIES,
    ADE20K_THING_IDS,
    load_ade20k_instance,
    load_ade20k_panoptic,
    prepare_ade20k_panoptic,
    register_all_ade20k_panoptic,
)
from seg_research.data.detection_utils import read_panoptic_ids, read_record_sem_seg

NAMES = {"train": ["ADE_train_00000001", "ADE_train_00000002"], "val": ["ADE_val_00000001"]}
FOLDER = {"train": "training", "val": "validation"}


def _labels():
    """Released labels (0 other, 1 wall, 8 bed): wall on top, a bed (thing, category 7) bottom left."""
    labels = np.ones((8, 8), np.uint8)
    labels[4:, :4] = 8
    labels[4:, 4:] = 0
    return labels


def write_ade20k_panoptic(root):
    """``root/ADEChallengeData2016`` with the prepare scripts' outputs; returns that folder."""
    ade = root / "ADEChallengeData2016"
    for split, names in NAMES.items():
        for sub in (f"images/{FOLDER[split]}", f"annotations/{FOLDER[split]}", f"ade20k_panoptic_{split}"):
            (ade / sub).mkdir(parents=True)
        images, annotations, instances = [], [], []
        for k, name in enumerate(names):
            Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(ade / "images" / FOLDER[split] / f"{name}.jpg")
            Image.fromarray(_labels()).save(ade / "annotations" / FOLDER[split] / f"{name}.png")
            ids = np.zeros((8, 8, 3), np.uint8)
            ids[:4, :, 0] = 1  # segment 1: wall
            ids[4:, :4, 0] = 2  # segment 2: bed
            Image.fromarray(ids).save(ade / f"ade20k_panoptic_{split}" / f"{name}.png")
            images.append({"id": name, "file_name": f"{name}.jpg", "width": 8, "height": 8})
            annotations.append({"image_id": name, "file_name": f"{name}.png", "segments_info": [
                {"id": 1, "category_id": 0, "area": 32, "bbox": [0, 0, 8, 4], "iscrowd": 0},
                {"id": 2, "category_id": 7, "area": 16, "bbox": [0, 4, 4, 4], "iscrowd": 0}]})
            instances.append({"id": k + 1, "image_id": name, "category_id": 7, "iscrowd": 0, "area": 16,
                              "bbox": [0, 4, 4, 4], "segmentation": [[0, 4, 4, 4, 4, 8, 0, 8]]})
        categories = [{"id": c["id"], "name": c["name"], "isthing": c["isthing"], "color": c["color"]}
                      for c in ADE20K_PANOPTIC_CATEGORIES]
        (ade / f"ade20k_panoptic_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
        (ade / f"ade20k_instance_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": instances,
             "categories": [{"id": i, "name": n} for i, n in zip(ADE20K_THING_IDS, ADE20K_INSTANCE_CLASSES, strict=True)]}))
    return ade


@pytest.fixture
def ade(tmp_path):
    return write_ade20k_panoptic(tmp_path)


def test_exact_panoptic_records(ade):
    records = load_ade20k_panoptic(str(ade), "train")
    assert [r["image_id"] for r in records] == NAMES["train"]
    first = dict(records[0])
    assert first.pop("sem_seg_label_map") is ADE20K_LABEL_MAP
    assert first == {
        "file_name": str(ade / "images" / "training" / "ADE_train_00000001.jpg"), "height": 8, "width": 8,
        "image_id": "ADE_train_00000001",
        "pan_seg_file_name": str(ade / "ade20k_panoptic_train" / "ADE_train_00000001.png"),
        "sem_seg_file_name": str(ade / "annotations" / "training" / "ADE_train_00000001.png"),
        "segments_info": [
            {"id": 1, "category_id": 0, "iscrowd": 0, "isthing": False, "area": 32, "bbox": [0, 0, 8, 4]},
            {"id": 2, "category_id": 7, "iscrowd": 0, "isthing": True, "area": 16, "bbox": [0, 4, 4, 4]}]}
    # semantic labels in the same class ids as the segments: wall 0, bed 7, "other" ignored
    expected = np.zeros((8, 8), np.uint8)
    expected[4:, :4], expected[4:, 4:] = 7, 255
    np.testing.assert_array_equal(read_record_sem_seg(records[0]), expected)


def test_exact_instance_records(ade):
    (record,) = load_ade20k_instance(str(ade), "val")
    assert record == {
        "file_name": str(ade / "images" / "validation" / "ADE_val_00000001.jpg"), "height": 8, "width": 8,
        "image_id": "ADE_val_00000001",
        "annotations": [{"iscrowd": 0, "bbox": [0, 4, 4, 4], "category_id": 0, "bbox_mode": record["annotations"][0][
            "bbox_mode"], "segmentation": [[0, 4, 4, 4, 4, 8, 0, 8]]}]}
    assert int(record["annotations"][0]["bbox_mode"]) == 1  # XYWH_ABS


def test_metadata_in_mask2formers_convention(tmp_path, set_aside_registrations):
    names = [f"ade20k_{kind}_{split}" for kind in ("panoptic", "instance") for split in ("train", "val")]
    set_aside_registrations(names)
    register_all_ade20k_panoptic(str(tmp_path))
    assert os.listdir(tmp_path) == []
    pan = MetadataCatalog.get("ade20k_panoptic_val")
    assert len(pan.stuff_classes) == 150 and pan.stuff_classes[:3] == ["wall", "building", "sky"]
    assert len(pan.thing_classes) == 100 and pan.thing_classes[:2] == ["bed", "window"]
    # contiguous id = ADE150 label - 1 for every class; things keep theirs (bed 7, flag 149)
    assert pan.stuff_dataset_id_to_contiguous_id == {i: i for i in range(150)}
    assert pan.thing_dataset_id_to_contiguous_id[7] == 7 and pan.thing_dataset_id_to_contiguous_id[149] == 149
    assert 0 not in pan.thing_dataset_id_to_contiguous_id and len(pan.thing_dataset_id_to_contiguous_id) == 100
    assert pan.stuff_colors[0] == [120, 120, 120] and pan.stuff_colors[149] == [92, 0, 255]
    assert (pan.evaluator_type, pan.ignore_label, pan.label_divisor) == ("ade20k_panoptic_seg", 255, 1000)
    ade = tmp_path / "ADEChallengeData2016"
    assert pan.panoptic_json == str(ade / "ade20k_panoptic_val.json")
    assert pan.json_file == str(ade / "ade20k_instance_val.json")
    assert pan.sem_seg_root == str(ade / "annotations" / "validation")
    ins = MetadataCatalog.get("ade20k_instance_val")
    assert len(ins.thing_dataset_id_to_contiguous_id) == 100
    assert ins.thing_dataset_id_to_contiguous_id[7] == 0 and ins.thing_dataset_id_to_contiguous_id[8] == 1
    assert ins.thing_classes[:3] == ["bed", "windowpane", "cabinet"] and ins.thing_classes[99] == "flag"
    assert ins.thing_dataset_id_to_contiguous_id[149] == 99 and ins.evaluator_type == "coco"

    with pytest.raises(DataError, match=r"not found: '.*ADEChallengeData2016/images/validation'.*"
                                        r"annotations_instance.tar.*prepare_ade20k_pan_seg.py"):
        DatasetCatalog.get("ade20k_panoptic_val")
    with pytest.raises(DataError, match="ADE20K instance json not found.*prepare_ade20k_ins_seg.py"):
        (ade / "images" / "validation").mkdir(parents=True)
        DatasetCatalog.get("ade20k_instance_val")


def test_registered_datasets_load_the_tree(tmp_path, set_aside_registrations):
    names = [f"ade20k_{kind}_{split}" for kind in ("panoptic", "instance") for split in ("train", "val")]
    set_aside_registrations(names)
    register_all_ade20k_panoptic(str(tmp_path))
    write_ade20k_panoptic(tmp_path)
    assert [len(DatasetCatalog.get(n)) for n in names] == [2, 1, 2, 1]


def test_missing_files_are_named(ade):
    os.remove(ade / "ade20k_panoptic_val.json")
    with pytest.raises(DataError, match="ADE20K panoptic: panoptic json not found.*prepare_ade20k_pan_seg.py"):
        load_ade20k_panoptic(str(ade), "val")
    os.remove(ade / "annotations" / "training" / "ADE_train_00000002.png")
    with pytest.raises(DataError, match=r"1 of 2 ADE20K panoptic semantic label PNGs do not exist: "
                                        r"'.*annotations/training/ADE_train_00000002.png'"):
        load_ade20k_panoptic(str(ade), "train")


def test_mask2former_panoptic_mapper_reads_the_records(ade):
    from seg_research.projects.mask2former import MaskFormerPanopticDatasetMapper

    mapper = MaskFormerPanopticDatasetMapper(True, augmentations=[], image_format="RGB", ignore_label=255,
                                             size_divisibility=-1)
    out = mapper(load_ade20k_panoptic(str(ade), "val")[0])
    assert out["instances"].gt_classes.tolist() == [0, 7]
    bed = np.zeros((8, 8), bool)
    bed[4:, :4] = True
    np.testing.assert_array_equal(out["instances"].gt_masks[1].numpy(), bed)
    assert sorted(np.unique(out["sem_seg"].numpy()).tolist()) == [0, 7, 255]


def write_ade20k_downloads(root):
    """``root/ADEChallengeData2016`` as the two downloads unpack (validation only): one 8x8 image with wall on
    top, a bed (instance class 1) bottom left, a window (instance class 2) over the wall's top-right corner,
    bed-labelled pixels bottom right outside every instance, and label 0 nowhere."""
    ade = root / "ADEChallengeData2016"
    for sub in ("images/validation", "annotations/validation", "annotations_instance/validation"):
        (ade / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(ade / "images" / "validation" / "ADE_val_00000001.jpg")
    labels = np.ones((8, 8), np.uint8)  # 1 wall
    labels[4:] = 8  # bed
    labels[:2, 6:] = 9  # window
    Image.fromarray(labels).save(ade / "annotations" / "validation" / "ADE_val_00000001.png")
    instance = np.zeros((8, 8, 3), np.uint8)
    instance[4:, :4] = (1, 1, 0)  # instance class 1 (bed), number 1
    instance[:2, 6:] = (2, 2, 0)  # instance class 2 (window), number 2
    Image.fromarray(instance).save(ade / "annotations_instance" / "validation" / "ADE_val_00000001.png")
    return ade


def test_prepare_from_the_downloads(tmp_path):
    ade = write_ade20k_downloads(tmp_path)
    assert prepare_ade20k_panoptic(str(ade), "val") == 1
    (record,) = load_ade20k_panoptic(str(ade), "val")
    assert record["segments_info"] == [
        {"id": 1, "category_id": 0, "iscrowd": 0, "isthing": False, "area": 28, "bbox": [0, 0, 8, 4]},
        {"id": 2, "category_id": 7, "iscrowd": 0, "isthing": True, "area": 16, "bbox": [0, 4, 4, 4]},
        {"id": 3, "category_id": 8, "iscrowd": 0, "isthing": True, "area": 4, "bbox": [6, 0, 2, 2]}]
    expected = np.zeros((8, 8), np.int64)  # bed pixels outside every instance are void
    expected[:4], expected[4:, :4], expected[:2, 6:] = 1, 2, 3
    np.testing.assert_array_equal(read_panoptic_ids(record["pan_seg_file_name"]), expected)

    (instances,) = load_ade20k_instance(str(ade), "val")
    assert [(a["category_id"], a["bbox"], a["iscrowd"]) for a in instances["annotations"]] == [
        (0, [0, 4, 4, 4], 0), (1, [6, 0, 2, 2], 0)]
    for annotation, segment in zip(instances["annotations"], (2, 3), strict=True):
        rle = dict(annotation["segmentation"], counts=annotation["segmentation"]["counts"].encode())
        mask = mask_utils.decode(rle).astype(bool)
        np.testing.assert_array_equal(mask, expected == segment)


def test_prepare_names_what_is_missing(tmp_path):
    ade = write_ade20k_downloads(tmp_path)
    os.remove(ade / "annotations_instance" / "validation" / "ADE_val_00000001.png")
    with pytest.raises(DataError, match=r"1 of 1 images have no instance PNG under '.*annotations_instance/"
                                        r"validation'.*annotations_instance.tar"):
        prepare_ade20k_panoptic(str(ade), "val")
    with pytest.raises(DataError, match=r"not found: '.*annotations_instance/training'"):
        prepare_ade20k_panoptic(str(ade), "train")
