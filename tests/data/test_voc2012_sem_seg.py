"""PASCAL VOC 2012 segmentation: a small tree laid out like VOCtrainval_11-May-2012.tar (palette PNGs,
ImageSets/Segmentation) plus SBD's SegmentationClassAug; exact records, labels, metadata, errors and
a few Semantic FPN iterations on it."""
import os

import numpy as np
import pytest
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets.voc2012_sem_seg import (
    VOC_SEM_SEG_CLASSES,
    load_voc_sem_seg,
    register_all_voc2012_sem_seg,
    voc_colormap,
)
from seg_research.data.mapper import DatasetMapper

from .semseg_catalog_training import train_semantic_fpn

TRAIN = ["2007_000032", "2007_000039", "2008_000008"]
VAL = ["2007_000033", "2009_000012"]
AUG_ONLY = ["2008_000002"]  # in SBD's train_aug, not in the segmentation lists
SIZE = (48, 64)  # (height, width); the real images are about 375x500


def _labels(index):
    """Class ids of the index-th image: background, a class-(index+1) box and the 255 border around it."""
    labels = np.zeros(SIZE, np.uint8)
    labels[10:30, 12:40] = 255
    labels[12:28, 14:38] = 1 + index % 20
    return labels


def write_voc(root):
    """``root/VOCdevkit/VOC2012`` as released (+ SBD aug); returns that folder."""
    voc = root / "VOCdevkit" / "VOC2012"
    palette = [v for rgb in voc_colormap() for v in rgb]
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation",
                   "ImageSets/SegmentationAug", "ImageSets/Main", "Annotations", "SegmentationObject"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    for index, image_id in enumerate(TRAIN + VAL + AUG_ONLY):
        rgb = np.full(SIZE + (3,), 40 * (index + 1) % 255, np.uint8)
        Image.fromarray(rgb).save(voc / "JPEGImages" / f"{image_id}.jpg")
        label = Image.fromarray(_labels(index), mode="L")
        Image.fromarray(_labels(index), mode="L").save(voc / "SegmentationClassAug" / f"{image_id}.png")
        if image_id not in AUG_ONLY:
            label = label.convert("P")
            label.putpalette(palette)
            label.save(voc / "SegmentationClass" / f"{image_id}.png")
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(TRAIN) + "\n")
    (lists / "val.txt").write_text("\n".join(VAL) + "\n")
    (lists / "trainval.txt").write_text("\n".join(sorted(TRAIN + VAL)) + "\n")
    (voc / "ImageSets" / "SegmentationAug" / "train_aug.txt").write_text(
        "".join(f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png\n" for i in TRAIN + AUG_ONLY))
    return voc


@pytest.fixture
def voc(tmp_path):
    return write_voc(tmp_path)


def test_palette_is_the_devkit_colour_map():
    colors = voc_colormap()
    assert colors[:4] == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert colors[15] == [192, 128, 128]  # person
    assert colors[255] == [224, 224, 192]  # the border colour of the released PNGs


def test_exact_records_of_each_split(voc):
    records = load_voc_sem_seg(str(voc), "train")
    assert [r["image_id"] for r in records] == TRAIN
    assert records[0] == {"file_name": str(voc / "JPEGImages" / "2007_000032.jpg"),
                          "sem_seg_file_name": str(voc / "SegmentationClass" / "2007_000032.png"),
                          "height": 48, "width": 64, "image_id": "2007_000032"}
    assert [r["image_id"] for r in load_voc_sem_seg(str(voc), "val")] == VAL
    assert len(load_voc_sem_seg(str(voc), "trainval")) == 5
    aug = load_voc_sem_seg(str(voc), "train_aug")
    assert [r["image_id"] for r in aug] == TRAIN + AUG_ONLY
    assert all(r["sem_seg_file_name"].endswith(f"SegmentationClassAug/{r['image_id']}.png") for r in aug)


@pytest.mark.parametrize("split", ["train", "train_aug"])
def test_palette_and_grayscale_labels_read_as_class_ids_with_255_ignore(voc, split):
    record = load_voc_sem_seg(str(voc), split)[1]
    assert Image.open(record["sem_seg_file_name"]).mode == ("P" if split == "train" else "L")
    mapped = DatasetMapper(True, augmentations=[], image_format="BGR")(record)
    np.testing.assert_array_equal(mapped["sem_seg"].numpy(), _labels(1).astype(np.int64))
    assert set(np.unique(mapped["sem_seg"].numpy())) == {0, 2, 255}


def test_metadata_and_lazy_registration(tmp_path, set_aside_registrations):
    names = [f"voc_2012_sem_seg_{s}" for s in ("train", "val", "trainval", "train_aug")]
    set_aside_registrations(names)
    register_all_voc2012_sem_seg(str(tmp_path))
    assert os.listdir(tmp_path) == []
    meta = MetadataCatalog.get("voc_2012_sem_seg_val")
    assert len(meta.stuff_classes) == 21 and meta.stuff_classes[0] == "background"
    assert meta.stuff_classes[15] == "person" and tuple(meta.stuff_classes) == VOC_SEM_SEG_CLASSES
    assert meta.stuff_colors[1] == [128, 0, 0] and len(meta.stuff_colors) == 21
    assert (meta.ignore_label, meta.evaluator_type) == (255, "sem_seg")
    with pytest.raises(DataError, match=r"expected folder\(s\) not found: '.*VOCdevkit/VOC2012/JPEGImages'"):
        DatasetCatalog.get("voc_2012_sem_seg_val")
    write_voc(tmp_path)
    assert {n: len(DatasetCatalog.get(n)) for n in names} == dict(zip(names, (3, 2, 5, 4), strict=True))


def test_missing_list_and_label_are_named(voc):
    os.remove(voc / "SegmentationClass" / "2009_000012.png")
    with pytest.raises(DataError, match=r"1 of 2 VOC label PNGs .*2009_000012.png"):
        load_voc_sem_seg(str(voc), "val")
    os.remove(voc / "ImageSets" / "Segmentation" / "train.txt")
    with pytest.raises(DataError, match=r"split list not found.*ImageSets/Segmentation/train.txt"):
        load_voc_sem_seg(str(voc), "train")
    with pytest.raises(ValueError, match="split must be one of"):
        load_voc_sem_seg(str(voc), "test")


@pytest.mark.slow
def test_semantic_fpn_trains_and_evaluates_on_the_tree(voc, tmp_path):
    lines = train_semantic_fpn(str(tmp_path), str(tmp_path / "out"), "voc_2012_sem_seg_train",
                               "voc_2012_sem_seg_val", num_classes=21)
    assert [line["iteration"] for line in lines if "total_loss" in line][-1] == 1
    results = [line for line in lines if "sem_seg/mIoU" in line][-1]
    assert 0.0 <= results["sem_seg/mIoU"] <= 100.0 and "sem_seg/IoU-background" in results
