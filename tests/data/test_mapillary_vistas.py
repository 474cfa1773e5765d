"""Mapillary Vistas v1.2: a tiny tree laid out like the release (8x8 images, palette label PNGs, panoptic_2018.json
with string image keys and categories 1..65); exact records, class ids, metadata and errors."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.mapillary_vistas import (
    load_mapillary_vistas_panoptic,
    load_mapillary_vistas_sem_seg,
    register_all_mapillary_vistas,
)
from seg_research.data.detection_utils import read_record_sem_seg

KEYS = {"training": ["--a7Qe3b0mV0uS3DZzAjXw", "0035fkbjWljhaftpVM37-g"], "validation": ["-0qN9mh2xrIBN8iNvcSO5w"]}


def _labels():
    """Class indices: 27 sky (stuff) on top, 19 person (thing) bottom left, 65 unlabeled bottom right."""
    labels = np.full((8, 8), 27, np.uint8)
    labels[4:, :4] = 19
    labels[4:, 4:] = 65
    return labels


def write_mapillary(root):
    """``root/mapillary_vistas`` as released; returns that folder."""
    mv = root / "mapillary_vistas"
    palette = [v for i in range(256) for v in (i, 255 - i, 0)]
    for folder, keys in KEYS.items():
        for sub in ("images", "labels", "instances", "panoptic"):
            (mv / folder / sub).mkdir(parents=True)
        images, annotations = [], []
        for k, key in enumerate(keys):
            Image.fromarray(np.full((8, 8, 3), 50 * k, np.uint8)).save(mv / folder / "images" / f"{key}.jpg")
            label = Image.fromarray(_labels(), mode="P")
            label.putpalette(palette)
            label.save(mv / folder / "labels" / f"{key}.png")
            ids = np.zeros((8, 8, 3), np.uint8)
            ids[:4, :, 0], ids[4:, :4, 1] = 7, 1  # segments 7 (sky) and 256 (person)
            Image.fromarray(ids).save(mv / folder / "panoptic" / f"{key}.png")
            images.append({"file_name": f"{key}.jpg", "height": 8, "width": 8, "id": key})
            annotations.append({"image_id": key, "file_name": f"{key}.png", "segments_info": [
                {"id": 7, "category_id": 28, "area": 32, "bbox": [0, 0, 8, 4], "iscrowd": 0},
                {"id": 256, "category_id": 20, "area": 16, "bbox": [0, 4, 4, 4], "iscrowd": 0}]})
        categories = [{"id": 28, "name": "Sky", "supercategory": "nature--sky", "isthing": 0, "color": [70, 130, 180]},
                      {"id": 20, "name": "Person", "supercategory": "human--person", "isthing": 1,
                       "color": [220, 20, 60]}]
        (mv / folder / "panoptic" / "panoptic_2018.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
    return mv


@pytest.fixture
def mv(tmp_path):
    return write_mapillary(tmp_path)


def test_exact_sem_seg_records(mv):
    records = load_mapillary_vistas_sem_seg(str(mv), "train")
    key = "--a7Qe3b0mV0uS3DZzAjXw"
    assert records[0] == {"file_name": str(mv / "training" / "images" / f"{key}.jpg"),
                          "sem_seg_file_name": str(mv / "training" / "labels" / f"{key}.png"),
                          "height": 8, "width": 8, "image_id": key}
    assert [r["image_id"] for r in records] == sorted(KEYS["training"])
    # the palette PNG's indices are the class ids; 65 (unlabeled) is the ignore label
    np.testing.assert_array_equal(read_record_sem_seg(records[0]), _labels())


def test_exact_panoptic_records(mv):
    (record,) = load_mapillary_vistas_panoptic(str(mv), "val")
    key = KEYS["validation"][0]
    assert record == {
        "file_name": str(mv / "validation" / "images" / f"{key}.jpg"), "height": 8, "width": 8, "image_id": key,
        "pan_seg_file_name": str(mv / "validation" / "panoptic" / f"{key}.png"),
        "sem_seg_file_name": str(mv / "validation" / "labels" / f"{key}.png"),
        "segments_info": [
            {"id": 7, "category_id": 27, "iscrowd": 0, "isthing": False, "area": 32, "bbox": [0, 0, 8, 4]},
            {"id": 256, "category_id": 19, "iscrowd": 0, "isthing": True, "area": 16, "bbox": [0, 4, 4, 4]}]}


def test_metadata(tmp_path, set_aside_registrations):
    names = [f"mapillary_vistas_{kind}_{split}" for kind in ("sem_seg", "panoptic") for split in ("train", "val")]
    set_aside_registrations(names)
    register_all_mapillary_vistas(str(tmp_path))
    assert os.listdir(tmp_path) == []
    sem = MetadataCatalog.get("mapillary_vistas_sem_seg_train")
    assert len(sem.stuff_classes) == 65 and sem.stuff_classes[:2] == ["Bird", "Ground Animal"]
    assert sem.stuff_classes[27] == "Sky" and sem.stuff_classes[64] == "Ego Vehicle"
    assert sem.stuff_colors[27] == [70, 130, 180]
    assert (sem.ignore_label, sem.evaluator_type) == (65, "sem_seg")
    assert sem.sem_seg_root == str(tmp_path / "mapillary_vistas" / "training" / "labels")
    pan = MetadataCatalog.get("mapillary_vistas_panoptic_val")
    assert len(pan.thing_dataset_id_to_contiguous_id) == 37
    assert pan.thing_dataset_id_to_contiguous_id[20] == 19 and 28 not in pan.thing_dataset_id_to_contiguous_id
    assert pan.stuff_dataset_id_to_contiguous_id == {i + 1: i for i in range(65)}
    assert pan.thing_classes == pan.stuff_classes and len(pan.thing_classes) == 65  # upstream's metadata
    assert (pan.ignore_label, pan.label_divisor, pan.evaluator_type) == (65, 1000, "mapillary_vistas_panoptic_seg")
    assert pan.panoptic_json == str(tmp_path / "mapillary_vistas" / "validation" / "panoptic" / "panoptic_2018.json")
    with pytest.raises(DataError, match=r"not found: '.*mapillary_vistas/validation/images'.*Mapillary Vistas v1.2"):
        DatasetCatalog.get("mapillary_vistas_panoptic_val")
    write_mapillary(tmp_path)
    assert [len(DatasetCatalog.get(n)) for n in names] == [2, 1, 2, 1]


def test_missing_files_are_named(mv):
    os.remove(mv / "training" / "labels" / "0035fkbjWljhaftpVM37-g.png")
    with pytest.raises(DataError, match="0035fkbjWljhaftpVM37-g.jpg"):
        load_mapillary_vistas_sem_seg(str(mv), "train")
    with pytest.raises(DataError, match=r"1 of 2 Mapillary Vistas panoptic semantic label PNGs do not exist"):
        load_mapillary_vistas_panoptic(str(mv), "train")
    os.remove(mv / "validation" / "panoptic" / "panoptic_2018.json")
    with pytest.raises(DataError, match="panoptic json not found.*mapillary_vistas/"):
        load_mapillary_vistas_panoptic(str(mv), "val")


def test_mask2former_mappers_ignore_the_unlabeled_index(mv):
    """Mask2Former's training mappers read these records: class 65 (unlabeled) is ignored, not a class."""
    from seg_research.projects.mask2former import MaskFormerPanopticDatasetMapper, MaskFormerSemanticDatasetMapper

    kwargs = dict(augmentations=[], image_format="RGB", ignore_label=65, size_divisibility=-1)
    semantic = MaskFormerSemanticDatasetMapper(True, **kwargs)(load_mapillary_vistas_sem_seg(str(mv), "train")[0])
    assert semantic["instances"].gt_classes.tolist() == [19, 27]
    np.testing.assert_array_equal(semantic["sem_seg"].numpy(), _labels())
    panoptic = MaskFormerPanopticDatasetMapper(True, **kwargs)(load_mapillary_vistas_panoptic(str(mv), "train")[0])
    assert panoptic["instances"].gt_classes.tolist() == [27, 19]  # the segments, in segments_info order
    np.testing.assert_array_equal(panoptic["instances"].gt_masks[1].numpy(), _labels() == 19)
