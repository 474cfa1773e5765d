"""datasets/prepare_panoptic_fpn.py (stuff label PNGs of the ``_separated`` convention) and the
builtin ``coco_2017_{train,val}_panoptic[_separated]`` registration that reads them."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

import seg_research.data.datasets.builtin  # noqa: F401  (registers shapes_* and coco_2017_*)
from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.builtin import get_datasets_root
from seg_research.data.detection_utils import write_panoptic_ids

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "datasets", "prepare_panoptic_fpn.py")
_spec = importlib.util.spec_from_file_location("prepare_panoptic_fpn", SCRIPT)
prepare = importlib.util.module_from_spec(_spec)
sys.modules["prepare_panoptic_fpn"] = prepare  # so that the worker pool can pickle its functions
_spec.loader.exec_module(prepare)

# Categories listed out of id order: things 3 and 1, stuff 20, 7, 12 -> stuff labels 7:1, 12:2, 20:3.
CATEGORIES = [{"id": 3, "name": "cat", "isthing": 1}, {"id": 20, "name": "wall", "isthing": 0},
              {"id": 1, "name": "dog", "isthing": 1}, {"id": 7, "name": "grass", "isthing": 0},
              {"id": 12, "name": "sky", "isthing": 0}]
SEGMENT_MAP = [[0, 11, 11, 500],
               [70000, 70000, 12, 300],
               [4, 4, 999, 300]]
SEGMENTS = [{"id": 11, "category_id": 3}, {"id": 12, "category_id": 1, "iscrowd": 1},
            {"id": 300, "category_id": 20}, {"id": 4, "category_id": 7}, {"id": 70000, "category_id": 12},
            {"id": 500, "category_id": 1}]
# void 0 and the unlisted id 999 -> 255; things (crowd too) -> 0; stuff by increasing category id.
EXPECTED = [[255, 0, 0, 0],
            [2, 2, 0, 3],
            [1, 1, 255, 3]]


def _write_fixture(root, segments=SEGMENTS):
    write_panoptic_ids(os.path.join(root, "pan", "a.png"), np.array(SEGMENT_MAP))
    annotations = [{"image_id": 1, "file_name": "a.png", "segments_info": segments}]
    with open(os.path.join(root, "pan.json"), "w") as f:
        json.dump({"images": [{"id": 1, "file_name": "a.jpg", "height": 3, "width": 4}],
                   "annotations": annotations, "categories": CATEGORIES}, f)
    return os.path.join(root, "pan.json"), os.path.join(root, "pan")


def test_labels_by_category_and_exact_label_map(tmp_path):
    assert prepare.stuff_labels_by_category(CATEGORIES) == {3: 0, 1: 0, 7: 1, 12: 2, 20: 3}
    panoptic_json, panoptic_root = _write_fixture(str(tmp_path))
    assert prepare.separate_stuff(panoptic_json, panoptic_root, str(tmp_path / "out"), workers=0) == 1
    written = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8 and written.tolist() == EXPECTED


def test_no_segments_is_all_void():
    assert prepare.stuff_label_map(np.array(SEGMENT_MAP), [], []).tolist() == [[255] * 4] * 3


def test_matches_the_stuff_pngs_of_the_shapes_generator(tmp_path):
    DatasetCatalog.get("shapes_val_panoptic")  # generates the split
    shapes = os.path.join(get_datasets_root(), "shapes")
    out = tmp_path / "stuff"
    count = prepare.separate_stuff(os.path.join(shapes, "annotations", "panoptic_val.json"),
                                   os.path.join(shapes, "panoptic_val"), str(out), workers=2)
    reference = os.path.join(shapes, "panoptic_stuff_val")
    names = sorted(os.listdir(reference))
    assert count == len(names) == 6 and sorted(os.listdir(out)) == names
    for name in names:
        ours = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        theirs = cv2.imread(os.path.join(reference, name), cv2.IMREAD_UNCHANGED)
        assert ours.dtype == theirs.dtype == np.uint8 and np.array_equal(ours, theirs), name
        assert (out / name).read_bytes() == open(os.path.join(reference, name), "rb").read()


def test_bad_inputs_raise_data_errors(tmp_path):
    bad = SEGMENTS + [{"id": 9, "category_id": 99}]
    panoptic_json, panoptic_root = _write_fixture(str(tmp_path), segments=bad)
    with pytest.raises(DataError, match=r"category_id\(s\) \[99\]"):
        prepare.separate_stuff(panoptic_json, panoptic_root, str(tmp_path / "out"))
    panoptic_json, _ = _write_fixture(str(tmp_path))
    with pytest.raises(DataError, match=r"does not exist.*nowhere/a.png"):
        prepare.separate_stuff(panoptic_json, str(tmp_path / "nowhere"), str(tmp_path / "out"), workers=0)
    with open(tmp_path / "inst.json", "w") as f:
        json.dump({"images": [], "annotations": []}, f)
    with pytest.raises(DataError, match="no 'categories' list"):
        prepare.separate_stuff(str(tmp_path / "inst.json"), panoptic_root, str(tmp_path / "out"))


@pytest.mark.slow
def test_coco_panoptic_builtin_reads_metadata_lazily_and_loads_prepared_stuff():
    """coco_2017_val_panoptic[_separated] are registered without files; after laying out COCO's
    files (here: Shapes val renamed) and running the script, they load with the json's classes."""
    coco = os.path.join(get_datasets_root(), "coco")
    assert not os.path.exists(coco)
    meta = MetadataCatalog.get("coco_2017_val_panoptic_separated")
    assert meta.evaluator_type == "coco_panoptic_seg" and meta.get("thing_classes") is None
    assert meta.sem_seg_root == os.path.join(coco, "panoptic_stuff_val2017")
    assert meta.panoptic_json == os.path.join(coco, "annotations", "panoptic_val2017.json")
    assert MetadataCatalog.get("coco_2017_train_panoptic").image_root == os.path.join(coco, "train2017")

    DatasetCatalog.get("shapes_val_panoptic")  # generates the split
    shapes = os.path.join(get_datasets_root(), "shapes")
    try:
        os.makedirs(os.path.join(coco, "annotations"))
        for src, dst in (("annotations/panoptic_val.json", "annotations/panoptic_val2017.json"),
                         ("annotations/instances_val.json", "annotations/instances_val2017.json"),
                         ("panoptic_val", "panoptic_val2017"), ("val/images", "val2017")):
            os.symlink(os.path.join(shapes, src), os.path.join(coco, dst))
        run = subprocess.run([sys.executable, SCRIPT, "--splits", "val", "--workers", "2"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert f"Wrote 6 stuff label PNGs to {os.path.join(coco, 'panoptic_stuff_val2017')}" in run.stdout

        records = DatasetCatalog.get("coco_2017_val_panoptic_separated")
        assert meta.thing_classes == ["circle", "square", "triangle", "star"]
        assert meta.stuff_classes == ["things", "sky", "ground", "water"]
        assert meta.stuff_dataset_id_to_contiguous_id == {5: 1, 6: 2, 7: 3}
        assert len(records) == 6 and {"annotations", "segments_info", "sem_seg_file_name"} <= set(records[0])
        assert records[0]["sem_seg_file_name"] == os.path.join(coco, "panoptic_stuff_val2017", "000000.png")
        standard = DatasetCatalog.get("coco_2017_val_panoptic")
        assert len(standard) == 6 and MetadataCatalog.get("coco_2017_val_panoptic").stuff_classes[4:] == [
            "sky", "ground", "water"]
    finally:
        shutil.rmtree(coco)
