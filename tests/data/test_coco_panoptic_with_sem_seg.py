"""Mask2Former's ``coco_2017_{train,val}_panoptic_with_sem_seg``: a tiny tree laid out like COCO 2017 (8x8 images,
panoptic json + PNGs, panoptic_semseg_*2017 label PNGs); exact records, class metadata from the json, errors; and
datasets/prepare_coco_semantic_from_panoptic.py writing those label PNGs (hand-written labels)."""
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.builtin import register_all_coco_panoptic_with_sem_seg
from seg_research.data.datasets.panoptic_sem_seg import semantic_labels

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "datasets",
                      "prepare_coco_semantic_from_panoptic.py")

#: a thing with id 1, stuff with ids 92 and 184 (COCO's "person", "banner", "tree-merged"), listed unsorted
CATEGORIES = [{"id": 184, "name": "tree-merged", "isthing": 0, "color": [0, 255, 0]},
              {"id": 1, "name": "person", "isthing": 1, "color": [220, 20, 60]},
              {"id": 92, "name": "banner", "isthing": 0, "color": [255, 255, 128]}]
NAMES = ["tree-merged", "person", "banner"]


def write_coco(root):
    """``root/coco`` with val2017 (image ids 139 and 285), its panoptic annotations and semantic PNGs."""
    coco = root / "coco"
    for sub in ("annotations", "val2017", "panoptic_val2017", "panoptic_semseg_val2017"):
        (coco / sub).mkdir(parents=True)
    images, annotations = [], []
    for image_id in (285, 139):
        stem = f"{image_id:012d}"
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(coco / "val2017" / f"{stem}.jpg")
        ids = np.zeros((8, 8, 3), np.uint8)
        ids[:4, :, 0], ids[4:, :4, 0] = 3, 5
        Image.fromarray(ids).save(coco / "panoptic_val2017" / f"{stem}.png")
        labels = np.full((8, 8), 255, np.uint8)
        labels[:4], labels[4:, :4] = 2, 0
        Image.fromarray(labels).save(coco / "panoptic_semseg_val2017" / f"{stem}.png")
        images.append({"id": image_id, "file_name": f"{stem}.jpg", "height": 8, "width": 8})
        annotations.append({"image_id": image_id, "file_name": f"{stem}.png", "segments_info": [
            {"id": 3, "category_id": 184, "iscrowd": 0, "area": 32, "bbox": [0, 0, 8, 4]},
            {"id": 5, "category_id": 1, "iscrowd": 0, "area": 16, "bbox": [0, 4, 4, 4]}]})
    (coco / "annotations" / "panoptic_val2017.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return coco


@pytest.fixture
def registered(tmp_path, set_aside_registrations):
    names = ["coco_2017_train_panoptic_with_sem_seg", "coco_2017_val_panoptic_with_sem_seg"]
    set_aside_registrations(names)
    register_all_coco_panoptic_with_sem_seg(str(tmp_path))
    return tmp_path


def test_exact_records_and_metadata_from_the_json(registered):
    meta = MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    coco = registered / "coco"
    assert (meta.evaluator_type, meta.ignore_label, meta.label_divisor) == ("coco_panoptic_seg", 255, 1000)
    assert meta.sem_seg_root == str(coco / "panoptic_semseg_val2017")
    assert meta.json_file == str(coco / "annotations" / "instances_val2017.json")
    assert meta.get("stuff_classes") is None  # read from the json at first load
    write_coco(registered)
    records = DatasetCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    assert [r["image_id"] for r in records] == [139, 285]
    assert records[0] == {
        "file_name": str(coco / "val2017" / "000000000139.jpg"), "height": 8, "width": 8, "image_id": 139,
        "pan_seg_file_name": str(coco / "panoptic_val2017" / "000000000139.png"),
        "sem_seg_file_name": str(coco / "panoptic_semseg_val2017" / "000000000139.png"),
        "segments_info": [
            {"id": 3, "category_id": 2, "iscrowd": 0, "isthing": False, "area": 32, "bbox": [0, 0, 8, 4]},
            {"id": 5, "category_id": 0, "iscrowd": 0, "isthing": True, "area": 16, "bbox": [0, 4, 4, 4]}]}
    # things first, then stuff by id: person 0, banner 1, tree-merged 2 (the labels of panoptic_semseg_*)
    assert meta.stuff_classes == ["person", "banner", "tree-merged"] and meta.thing_classes == ["person"]
    assert meta.stuff_dataset_id_to_contiguous_id == {1: 0, 92: 1, 184: 2}
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0}


def test_missing_semantic_pngs_say_how_to_make_them(registered):
    with pytest.raises(DataError, match=r"not found: .*coco/val2017"):
        DatasetCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    coco = write_coco(registered)
    panoptic_json = coco / "annotations" / "panoptic_val2017.json"
    text = panoptic_json.read_text()
    os.remove(panoptic_json)
    with pytest.raises(DataError, match=r"1 of 1 panoptic json do not exist: '.*panoptic_val2017.json'.*"
                                        r"panoptic_annotations_trainval2017.zip"):
        DatasetCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    panoptic_json.write_text(text)
    os.remove(coco / "panoptic_semseg_val2017" / "000000000285.png")
    with pytest.raises(DataError, match=r"1 of 2 COCO panoptic with semantic labels semantic label PNGs do not "
                                        r"exist: '.*000000000285.png'.*prepare_coco_semantic_from_panoptic.py"):
        DatasetCatalog.get("coco_2017_val_panoptic_with_sem_seg")


def test_semantic_labels_of_a_segment_map():
    ids = np.array([[0, 3, 3], [5, 5, 9]])
    # segment 3 -> class 2, segment 5 -> class 0; 9 is not listed and 0 is void: both 255
    np.testing.assert_array_equal(semantic_labels(ids, [3, 5], [2, 0]), [[255, 2, 2], [0, 0, 255]])


@pytest.mark.parametrize("workers", [0, 2])
def test_prepare_script_writes_the_labels_that_load(registered, workers):
    coco = write_coco(registered)
    expected = {p.name: np.asarray(Image.open(p)) for p in (coco / "panoptic_semseg_val2017").iterdir()}
    shutil.rmtree(coco / "panoptic_semseg_val2017")
    spec = importlib.util.spec_from_file_location("prepare_coco_semantic_from_panoptic", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--coco-dir", str(coco), "--splits", "val", "--workers", str(workers)]) == 0
    written = {p.name: np.asarray(Image.open(p)) for p in (coco / "panoptic_semseg_val2017").iterdir()}
    assert sorted(written) == sorted(expected) == ["000000000139.png", "000000000285.png"]
    for name, labels in expected.items():  # the hand-written labels of write_coco: tree 2, person 0, void 255
        assert written[name].dtype == np.uint8
        np.testing.assert_array_equal(written[name], labels)
    assert len(DatasetCatalog.get("coco_2017_val_panoptic_with_sem_seg")) == 2
