"""COCO-Stuff-10k and ADE20K-full (Mask2Former's ``coco_2017_*_stuff_10k_sem_seg`` / ``ade20k_full_sem_seg_*``): tiny
trees in the layout MaskFormer's prepare scripts write (8x8 images, uint8 PNG / 16-bit TIFF labels); exact records,
metadata and errors."""
import os

import numpy as np
import pytest
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.mask2former_sem_seg import (
    load_ade20k_full,
    load_coco_stuff_10k,
    register_all_mask2former_sem_seg,
)
from seg_research.data.detection_utils import read_record_sem_seg


def write_coco_stuff_10k(root):
    base = root / "coco" / "coco_stuff_10k"
    for split, names in (("train", ["COCO_train2014_000000000077", "COCO_train2014_000000000113"]),
                         ("test", ["COCO_train2014_000000000321"])):
        (base / "images_detectron2" / split).mkdir(parents=True)
        (base / "annotations_detectron2" / split).mkdir(parents=True)
        for name in names:
            Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(base / "images_detectron2" / split / f"{name}.jpg")
            labels = np.full((8, 6), 170, np.uint8)
            labels[0] = 255
            Image.fromarray(labels).save(base / "annotations_detectron2" / split / f"{name}.png")
    return base


def write_ade20k_full(root):
    base = root / "ADE20K_2021_17_01"
    for folder, names in (("training", ["ADE_train_00000001"]), ("validation", ["ADE_val_00000001",
                                                                                "ADE_frame_00000007"])):
        (base / "images_detectron2" / folder).mkdir(parents=True)
        (base / "annotations_detectron2" / folder).mkdir(parents=True)
        for name in names:
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(base / "images_detectron2" / folder / f"{name}.jpg")
            labels = np.full((8, 8), 846, np.uint16)
            labels[:2] = 65535
            labels[2:4] = 300
            Image.fromarray(labels).save(base / "annotations_detectron2" / folder / f"{name}.tif")
    return base


def test_coco_stuff_10k_records(tmp_path):
    base = write_coco_stuff_10k(tmp_path)
    records = load_coco_stuff_10k(str(base), "train")
    assert records[1] == {
        "file_name": str(base / "images_detectron2" / "train" / "COCO_train2014_000000000113.jpg"),
        "sem_seg_file_name": str(base / "annotations_detectron2" / "train" / "COCO_train2014_000000000113.png"),
        "height": 8, "width": 6, "image_id": "COCO_train2014_000000000113"}
    assert len(records) == 2 and len(load_coco_stuff_10k(str(base), "test")) == 1
    labels = read_record_sem_seg(records[0])
    assert labels.dtype == np.uint8 and labels[0, 0] == 255 and labels[1, 0] == 170


def test_ade20k_full_records_with_16_bit_labels(tmp_path):
    base = write_ade20k_full(tmp_path)
    records = load_ade20k_full(str(base), "val")
    assert [r["image_id"] for r in records] == ["ADE_frame_00000007", "ADE_val_00000001"]
    assert records[1] == {
        "file_name": str(base / "images_detectron2" / "validation" / "ADE_val_00000001.jpg"),
        "sem_seg_file_name": str(base / "annotations_detectron2" / "validation" / "ADE_val_00000001.tif"),
        "height": 8, "width": 8, "image_id": "ADE_val_00000001"}
    labels = read_record_sem_seg(records[1])
    assert labels.dtype == np.uint16
    assert (labels[0, 0], labels[2, 0], labels[7, 7]) == (65535, 300, 846)


def test_metadata_and_errors(tmp_path, set_aside_registrations):
    names = ["coco_2017_train_stuff_10k_sem_seg", "coco_2017_test_stuff_10k_sem_seg", "ade20k_full_sem_seg_train",
             "ade20k_full_sem_seg_val"]
    set_aside_registrations(names)
    register_all_mask2former_sem_seg(str(tmp_path))
    assert os.listdir(tmp_path) == []
    stuff = MetadataCatalog.get("coco_2017_test_stuff_10k_sem_seg")
    assert len(stuff.stuff_classes) == 171 and stuff.stuff_classes[:2] == ["person", "bicycle"]
    assert stuff.stuff_classes[80] == "banner" and stuff.stuff_classes[170] == "wood"
    assert stuff.stuff_dataset_id_to_contiguous_id[92] == 80 and stuff.stuff_dataset_id_to_contiguous_id[182] == 170
    assert (stuff.ignore_label, stuff.evaluator_type) == (255, "sem_seg")
    full = MetadataCatalog.get("ade20k_full_sem_seg_val")
    assert len(full.stuff_classes) == 847 and full.stuff_classes[:2] == ["wall", "building, edifice"]
    assert full.stuff_dataset_id_to_contiguous_id[2978] == 0 and full.ignore_label == 65535
    assert full.sem_seg_root == str(tmp_path / "ADE20K_2021_17_01" / "annotations_detectron2" / "validation")
    with pytest.raises(DataError, match=r"not found: '.*coco_stuff_10k/images_detectron2/test'.*"
                                        r"cocostuff-10k-v1.1.zip.*prepare_coco_stuff_10k_sem_seg.py"):
        DatasetCatalog.get("coco_2017_test_stuff_10k_sem_seg")
    with pytest.raises(DataError, match=r"not found: '.*ADE20K_2021_17_01/images_detectron2/training'.*"
                                        r"prepare_ade20k_full_sem_seg.py"):
        DatasetCatalog.get("ade20k_full_sem_seg_train")
    write_coco_stuff_10k(tmp_path)
    write_ade20k_full(tmp_path)
    assert [len(DatasetCatalog.get(n)) for n in names] == [2, 1, 1, 2]
    os.remove(tmp_path / "ADE20K_2021_17_01" / "annotations_detectron2" / "training" / "ADE_train_00000001.tif")
    with pytest.raises(DataError, match="No '.tif' file found under"):
        DatasetCatalog.get("ade20k_full_sem_seg_train")
