"""load_coco_json / register_coco_instances / load_sem_seg / resolve_under_root on hand-written fixtures."""
import json
import logging
import os

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import load_coco_json, load_sem_seg, register_coco_instances, resolve_under_root
from seg_research.structures import BoxMode


def _png(path, h, w, value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w), value, np.uint8))


def _crowd_rle():
    mask = np.zeros((4, 6), np.uint8)
    mask[0:2, 0:3] = 1
    rle = mask_util.encode(np.asfortranarray(mask))
    return {"size": [4, 6], "counts": rle["counts"].decode("ascii")}


def _write_json(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


@pytest.fixture
def dataset_name():
    name = "test_coco_loader_ds"
    yield name
    MetadataCatalog.pop(name, None)
    DatasetCatalog.pop(name, None)


@pytest.fixture
def coco_fixture(tmp_path):
    """3 images (ids 5, 2, 11), categories 7 'dog' and 3 'cat' (listed unsorted), 5 annotations."""
    image_root = tmp_path / "images"
    _png(image_root / "a.png", 4, 6)
    _png(image_root / "sub" / "b.png", 8, 10)
    _png(image_root / "empty.png", 3, 3)
    data = {
        "images": [
            {"id": 5, "file_name": "a.png", "height": 4, "width": 6},
            {"id": 2, "file_name": "sub/b.png", "height": 8, "width": 10},
            {"id": 11, "file_name": "empty.png", "height": 3, "width": 3},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 7, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0,
             "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]], "score_hint": 0.5},
            {"id": 2, "image_id": 5, "category_id": 3, "bbox": [0, 0, 3, 2], "area": 6, "iscrowd": 1,
             "segmentation": _crowd_rle()},
            {"id": 3, "image_id": 5, "category_id": 3, "bbox": [0, 0, 2, 2], "area": 4,
             "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2], [1, 1, 2, 2], [0, 0, 1, 1, 2]]},
            {"id": 4, "image_id": 2, "category_id": 7, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0,
             "segmentation": [[0, 0, 1, 1]]},
            {"id": 5, "image_id": 2, "category_id": 3, "bbox": [0, 0, 2, 8], "area": 10, "iscrowd": 1,
             "segmentation": {"size": [8, 10], "counts": [5, 10, 65]}},
        ],
    }
    return _write_json(tmp_path / "instances.json", data), str(image_root), data


@pytest.fixture
def coco_log(caplog, monkeypatch):
    """caplog fed directly by the loader's logger (whatever setup_logger did to propagation)."""
    logger = logging.getLogger("seg_research.data.datasets.coco")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_records_exact(coco_fixture, dataset_name, coco_log):
    json_file, image_root, _ = coco_fixture
    records = load_coco_json(json_file, image_root, dataset_name, extra_annotation_keys=["score_hint"])

    assert records == [
        {"file_name": os.path.join(image_root, "sub/b.png"), "height": 8, "width": 10, "image_id": 2,
         "annotations": [
             {"bbox": [0, 0, 2, 8], "iscrowd": 1, "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
              "segmentation": {"size": [8, 10], "counts": [5, 10, 65]}},
         ]},
        {"file_name": os.path.join(image_root, "a.png"), "height": 4, "width": 6, "image_id": 5,
         "annotations": [
             {"bbox": [1, 1, 2, 2], "iscrowd": 0, "score_hint": 0.5, "bbox_mode": BoxMode.XYWH_ABS,
              "category_id": 1, "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]},
             {"bbox": [0, 0, 3, 2], "iscrowd": 1, "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
              "segmentation": _crowd_rle()},
             {"bbox": [0, 0, 2, 2], "iscrowd": 0, "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
              "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
         ]},
        {"file_name": os.path.join(image_root, "empty.png"), "height": 3, "width": 3, "image_id": 11,
         "annotations": []},
    ]
    meta = MetadataCatalog.get(dataset_name)
    assert meta.thing_classes == ["cat", "dog"]
    assert meta.thing_dataset_id_to_contiguous_id == {3: 0, 7: 1}
    warnings = [r.getMessage() for r in coco_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "dropped 3 invalid polygon(s)" in warnings[0]
    assert "removed 1 annotation(s)" in warnings[0]


def test_no_metadata_without_name_and_conflicting_metadata(coco_fixture, dataset_name):
    json_file, image_root, _ = coco_fixture
    load_coco_json(json_file, image_root)
    assert dataset_name not in MetadataCatalog.list()
    MetadataCatalog.get(dataset_name).set(thing_dataset_id_to_contiguous_id={3: 1, 7: 0})
    with pytest.raises(DataError, match=r"already has thing_dataset_id_to_contiguous_id=\{3: 1, 7: 0\}"):
        load_coco_json(json_file, image_root, dataset_name)


def test_unknown_category(coco_fixture, tmp_path):
    _, image_root, data = coco_fixture
    data["annotations"].append({"id": 42, "image_id": 5, "category_id": 4, "bbox": [0, 0, 1, 1], "iscrowd": 0})
    json_file = _write_json(tmp_path / "bad_category.json", data)
    with pytest.raises(DataError) as e:
        load_coco_json(json_file, image_root)
    assert e.value.file_name == json_file
    assert e.value.record == 42
    assert "Annotation 42 (image_id 5) has category_id 4, which is not in 'categories' (ids [3, 7])" in str(e.value)


def test_duplicate_and_orphan_annotations(coco_fixture, tmp_path):
    _, image_root, data = coco_fixture
    dup = dict(data, annotations=data["annotations"] + [dict(data["annotations"][0])])
    with pytest.raises(DataError, match="Annotation id 1 appears more than once"):
        load_coco_json(_write_json(tmp_path / "dup.json", dup), image_root)
    orphan = dict(data, annotations=[dict(data["annotations"][0], image_id=99)])
    with pytest.raises(DataError, match="Annotation 1 refers to image_id 99, which is not listed in 'images'"):
        load_coco_json(_write_json(tmp_path / "orphan.json", orphan), image_root)


def test_missing_images(tmp_path):
    images = [{"id": i, "file_name": f"missing{i}.png", "height": 2, "width": 2} for i in range(7)]
    json_file = _write_json(tmp_path / "m.json", {"images": images, "annotations": [], "categories": []})
    root = str(tmp_path / "imgs")
    with pytest.raises(DataError) as e:
        load_coco_json(json_file, root)
    msg = str(e.value)
    assert "7 of 7 images listed in the json do not exist" in msg
    assert f"'{os.path.join(root, 'missing4.png')}' and 2 more" in msg
    assert "missing5.png" not in msg
    assert f"Check that image_root '{root}'" in msg
    assert e.value.file_name == json_file


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "images": [,]\n}')
    with pytest.raises(DataError) as e:
        load_coco_json(str(path), str(tmp_path))
    assert "Malformed JSON: Expecting value at line 2, column 14 (char 15)" in str(e.value)
    assert e.value.file_name == str(path)


def test_path_outside_root_refused_unless_allowed(tmp_path):
    root = tmp_path / "data" / "images"
    root.mkdir(parents=True)
    _png(tmp_path / "x.png", 2, 2)
    images = [{"id": 1, "file_name": "../../x.png", "height": 2, "width": 2}]
    json_file = _write_json(tmp_path / "escape.json", {"images": images, "annotations": [], "categories": []})
    with pytest.raises(DataError, match=r"Path '\.\./\.\./x\.png' resolves to .* outside the dataset root") as e:
        load_coco_json(json_file, str(root))
    assert e.value.record == 1
    records = load_coco_json(json_file, str(root), allow_outside_root=True)
    assert records[0]["file_name"] == os.path.join(str(root), "../../x.png")


def test_resolve_under_root():
    assert resolve_under_root("/data/imgs", "a/b.png") == "/data/imgs/a/b.png"
    assert resolve_under_root("/data/imgs/", "a/../b.png") == "/data/imgs/a/../b.png"
    for escaping in ("../x.png", "a/../../x.png", "/etc/passwd", "../imgs2/x.png"):
        with pytest.raises(DataError, match="outside the dataset root '/data/imgs'"):
            resolve_under_root("/data/imgs", escaping, record=3)
    assert resolve_under_root("/data/imgs", "/elsewhere/x.png", allow_outside=True) == "/elsewhere/x.png"
    assert resolve_under_root("relative/root", "x.png") == "relative/root/x.png"


def test_register_coco_instances(coco_fixture, dataset_name):
    json_file, image_root, _ = coco_fixture
    register_coco_instances(dataset_name, {"thing_colors": [[1, 2, 3], [4, 5, 6]]}, json_file, image_root)
    meta = MetadataCatalog.get(dataset_name)
    assert meta.as_dict() == {"name": dataset_name, "json_file": json_file, "image_root": image_root,
                              "evaluator_type": "coco", "thing_colors": [[1, 2, 3], [4, 5, 6]]}
    records = DatasetCatalog.get(dataset_name)
    assert [r["image_id"] for r in records] == [2, 5, 11]
    assert meta.thing_classes == ["cat", "dog"]


def test_load_sem_seg_pairs_by_relative_stem(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    for stem, (h, w) in {"x": (3, 5), "sub/y": (4, 2)}.items():
        _png(images / f"{stem}.jpg", h, w)
        _png(labels / f"{stem}.png", h, w, value=255)
    (images / "notes.txt").write_text("not an image")
    records = load_sem_seg(str(labels), str(images))
    assert records == [
        {"file_name": str(images / "sub/y.jpg"), "sem_seg_file_name": str(labels / "sub/y.png"), "height": 4,
         "width": 2, "image_id": "sub/y"},
        {"file_name": str(images / "x.jpg"), "sem_seg_file_name": str(labels / "x.png"), "height": 3, "width": 5,
         "image_id": "x"},
    ]


def test_load_sem_seg_unpaired_and_empty(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    _png(images / "x.jpg", 2, 2)
    _png(images / "lonely.jpg", 2, 2)
    _png(labels / "x.png", 2, 2)
    _png(labels / "sub/orphan.png", 2, 2)
    with pytest.raises(DataError) as e:
        load_sem_seg(str(labels), str(images))
    msg = str(e.value)
    assert "2 file(s) have no partner (2 images under" in msg
    assert f"'{images / 'lonely.jpg'}'" in msg and f"'{labels / 'sub/orphan.png'}'" in msg
    with pytest.raises(DataError, match=r"No '\.bmp' file found under"):
        load_sem_seg(str(labels), str(images), image_ext="bmp")


def test_json_without_categories(tmp_path):
    """A json with no 'categories' key (hypothesis found a pycocotools KeyError): images without
    annotations load; an annotation's category is then reported as unknown, naming the file."""
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    image = {"id": 1, "file_name": "a.png", "height": 4, "width": 4}
    json_file = tmp_path / "instances.json"
    json_file.write_text(json.dumps({"images": [image], "annotations": []}))
    assert load_coco_json(str(json_file), str(tmp_path / "images")) == [
        {"file_name": str(tmp_path / "images" / "a.png"), "height": 4, "width": 4, "image_id": 1, "annotations": []}]
    annotation = {"id": 7, "image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2], "iscrowd": 0}
    json_file.write_text(json.dumps({"images": [image], "annotations": [annotation]}))
    with pytest.raises(DataError, match=r"category_id 3, which is not in 'categories' \(ids \[\]\)") as e:
        load_coco_json(str(json_file), str(tmp_path / "images"))
    assert str(json_file) in str(e.value)
