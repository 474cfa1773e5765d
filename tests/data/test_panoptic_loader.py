"""COCO panoptic loaders (standard and separated) on a hand-written fixture."""
import copy
import json
import os

import cv2
import numpy as np
import pytest

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import (
    load_coco_panoptic_json,
    panoptic_metadata,
    register_coco_panoptic,
    register_coco_panoptic_separated,
)
from seg_research.structures import BoxMode

CATEGORIES = [
    {"id": 12, "name": "sky", "isthing": 0, "color": [0, 0, 200]},
    {"id": 7, "name": "dog", "isthing": 1, "color": [200, 0, 0]},
    {"id": 10, "name": "grass", "isthing": 0, "color": [0, 200, 0]},
    {"id": 3, "name": "cat", "isthing": 1, "color": [9, 9, 9]},
]
STANDARD = {
    "thing_classes": ["cat", "dog"],
    "stuff_classes": ["cat", "dog", "grass", "sky"],
    "thing_dataset_id_to_contiguous_id": {3: 0, 7: 1},
    "stuff_dataset_id_to_contiguous_id": {3: 0, 7: 1, 10: 2, 12: 3},
    "thing_colors": [[9, 9, 9], [200, 0, 0]],
    "stuff_colors": [[9, 9, 9], [200, 0, 0], [0, 200, 0], [0, 0, 200]],
}
SEPARATED = {
    "thing_classes": ["cat", "dog"],
    "stuff_classes": ["things", "grass", "sky"],
    "thing_dataset_id_to_contiguous_id": {3: 0, 7: 1},
    "stuff_dataset_id_to_contiguous_id": {10: 1, 12: 2},
    "thing_colors": [[9, 9, 9], [200, 0, 0]],
    "stuff_colors": [[128, 128, 128], [0, 200, 0], [0, 0, 200]],
}
SEG_A = [
    {"id": 259, "category_id": 7, "iscrowd": 0, "bbox": [0, 0, 2, 2], "area": 4},
    {"id": 1000, "category_id": 12, "iscrowd": 0, "bbox": [0, 0, 5, 4], "area": 16},
]
SEG_B = [
    {"id": 5, "category_id": 3, "iscrowd": 1, "bbox": [1, 1, 3, 2], "area": 6},
    {"id": 70000, "category_id": 10, "iscrowd": 0, "bbox": [0, 0, 5, 4], "area": 14},
]


@pytest.fixture
def names():
    created = ["test_pan_std", "test_pan_sep_separated"]
    yield created
    for name in created:
        MetadataCatalog.pop(name, None)
        DatasetCatalog.pop(name, None)


@pytest.fixture
def pan(tmp_path):
    """image_root (a.png id 4, b.png id 1), panoptic_root PNGs, stuff PNGs, panoptic and instances json."""
    roots = {k: tmp_path / k for k in ("images", "panoptic", "stuff")}
    for folder in roots.values():
        folder.mkdir()
        for name in ("a.png", "b.png"):
            cv2.imwrite(str(folder / name), np.zeros((4, 5, 3), np.uint8))
    images = [{"id": 4, "file_name": "a.png", "height": 4, "width": 5},
              {"id": 1, "file_name": "b.png", "height": 4, "width": 5}]
    panoptic = {"images": images, "categories": CATEGORIES, "annotations": [
        {"image_id": 4, "file_name": "a.png", "segments_info": copy.deepcopy(SEG_A)},
        {"image_id": 1, "file_name": "b.png", "segments_info": copy.deepcopy(SEG_B)},
    ]}
    instances = {"images": images, "categories": [c for c in CATEGORIES if c["isthing"]], "annotations": [
        {"id": 1, "image_id": 4, "category_id": 7, "bbox": [0, 0, 2, 2], "iscrowd": 0,
         "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
    ]}
    (tmp_path / "panoptic.json").write_text(json.dumps(panoptic))
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    paths = {k: str(v) for k, v in roots.items()}
    paths.update(panoptic_json=str(tmp_path / "panoptic.json"), instances_json=str(tmp_path / "instances.json"),
                 data=panoptic)
    return paths


def _expected_panoptic(pan, stuff_ids):
    """Records of the fixture; ``stuff_ids``: contiguous id of grass and sky."""
    grass, sky = stuff_ids
    return [
        {"file_name": os.path.join(pan["images"], "b.png"), "height": 4, "width": 5, "image_id": 1,
         "pan_seg_file_name": os.path.join(pan["panoptic"], "b.png"), "segments_info": [
             {"id": 5, "category_id": 0, "iscrowd": 1, "isthing": True, "area": 6, "bbox": [1, 1, 3, 2]},
             {"id": 70000, "category_id": grass, "iscrowd": 0, "isthing": False, "area": 14, "bbox": [0, 0, 5, 4]},
         ]},
        {"file_name": os.path.join(pan["images"], "a.png"), "height": 4, "width": 5, "image_id": 4,
         "pan_seg_file_name": os.path.join(pan["panoptic"], "a.png"), "segments_info": [
             {"id": 259, "category_id": 1, "iscrowd": 0, "isthing": True, "area": 4, "bbox": [0, 0, 2, 2]},
             {"id": 1000, "category_id": sky, "iscrowd": 0, "isthing": False, "area": 16, "bbox": [0, 0, 5, 4]},
         ]},
    ]


def test_panoptic_metadata_conventions():
    assert panoptic_metadata(CATEGORIES) == STANDARD
    assert panoptic_metadata(CATEGORIES, separated=True) == SEPARATED
    no_colors = [{k: v for k, v in c.items() if k != "color"} for c in CATEGORIES]
    assert "stuff_colors" not in panoptic_metadata(no_colors)


def test_load_standard_records_exact(pan):
    records = load_coco_panoptic_json(pan["panoptic_json"], pan["images"], pan["panoptic"], STANDARD)
    assert records == _expected_panoptic(pan, stuff_ids=(2, 3))


def test_register_coco_panoptic(pan, names):
    register_coco_panoptic("test_pan_std", STANDARD, pan["images"], pan["panoptic"], pan["panoptic_json"],
                           pan["instances_json"])
    assert MetadataCatalog.get("test_pan_std").as_dict() == {
        "name": "test_pan_std", "panoptic_root": pan["panoptic"], "image_root": pan["images"],
        "panoptic_json": pan["panoptic_json"], "json_file": pan["instances_json"],
        "evaluator_type": "coco_panoptic_seg", "ignore_label": 255, "label_divisor": 1000, **STANDARD,
    }
    assert DatasetCatalog.get("test_pan_std") == _expected_panoptic(pan, stuff_ids=(2, 3))


def test_register_separated_records_exact(pan, names):
    register_coco_panoptic_separated("test_pan_sep", SEPARATED, pan["images"], pan["panoptic"],
                                     pan["panoptic_json"], pan["stuff"], pan["instances_json"])
    meta = MetadataCatalog.get("test_pan_sep_separated")
    assert meta.as_dict() == {
        "name": "test_pan_sep_separated", "panoptic_root": pan["panoptic"], "image_root": pan["images"],
        "panoptic_json": pan["panoptic_json"], "sem_seg_root": pan["stuff"], "json_file": pan["instances_json"],
        "evaluator_type": "coco_panoptic_seg", "ignore_label": 255, "label_divisor": 1000, **SEPARATED,
    }
    panoptic_b, panoptic_a = _expected_panoptic(pan, stuff_ids=(1, 2))
    assert DatasetCatalog.get("test_pan_sep_separated") == [
        {**panoptic_b, "annotations": [], "sem_seg_file_name": os.path.join(pan["stuff"], "b.png")},
        {**panoptic_a, "sem_seg_file_name": os.path.join(pan["stuff"], "a.png"), "annotations": [
            {"bbox": [0, 0, 2, 2], "iscrowd": 0, "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1,
             "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]},
    ]


def test_separated_missing_stuff_png(pan, names):
    os.remove(os.path.join(pan["stuff"], "a.png"))
    register_coco_panoptic_separated("test_pan_sep", SEPARATED, pan["images"], pan["panoptic"],
                                     pan["panoptic_json"], pan["stuff"], pan["instances_json"])
    with pytest.raises(DataError, match=r"1 of 2 stuff label PNGs do not exist: '.*a\.png'"):
        DatasetCatalog.get("test_pan_sep_separated")


def test_metadata_errors(pan):
    with pytest.raises(ValueError, match="needs the separated metadata convention"):
        register_coco_panoptic_separated("test_pan_wrong", STANDARD, pan["images"], pan["panoptic"],
                                         pan["panoptic_json"], pan["stuff"], pan["instances_json"])
    with pytest.raises(ValueError, match=r"missing \['stuff_dataset_id_to_contiguous_id'\]"):
        load_coco_panoptic_json(pan["panoptic_json"], pan["images"], pan["panoptic"],
                                {"thing_dataset_id_to_contiguous_id": {3: 0, 7: 1}})
    assert "test_pan_wrong_separated" not in DatasetCatalog.list()


def test_unknown_segment_category(pan, tmp_path):
    data = pan["data"]
    data["annotations"][1]["segments_info"].append({"id": 9, "category_id": 99, "iscrowd": 0})
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as e:
        load_coco_panoptic_json(str(path), pan["images"], pan["panoptic"], STANDARD)
    assert "Segment 9 of image_id 1 has category_id 99" in str(e.value)
    assert e.value.file_name == str(path) and e.value.record == 1


def test_image_without_panoptic_annotation_and_missing_png(pan, tmp_path):
    data = pan["data"]
    data["images"].append({"id": 8, "file_name": "c.png", "height": 4, "width": 5})
    path = tmp_path / "unmatched.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"1 image_id\(s\) appear in only one of 'images' and 'annotations', e.g. \[8\]"):
        load_coco_panoptic_json(str(path), pan["images"], pan["panoptic"], STANDARD)
    os.remove(os.path.join(pan["panoptic"], "b.png"))
    with pytest.raises(DataError, match=r"1 of 4 images and panoptic PNGs listed in the json do not exist"):
        load_coco_panoptic_json(pan["panoptic_json"], pan["images"], pan["panoptic"], STANDARD)
