"""MADS: finding the (doubly nested) data folder, df.csv and by-name pairing, exact records, RGB masks,
connected-component instances, the sequence split, errors, and the builtin registration."""
import hashlib
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import (
    find_mads_folder,
    load_mads,
    mads_split_assignment,
    parse_mads_name,
    register_all_mads,
)
from seg_research.data.mapper import DatasetMapper
from seg_research.structures import BoxMode, rle_to_bitmask

FOLDER = "segmentation_full_body_mads_dataset_1192_img"
SEQUENCES = ["HipHop_HipHop1", "HipHop_HipHop2", "Jazz_Jazz1", "Jazz_Jazz6", "Kata_Kata1", "Kata_Kata2",
             "Sports_Badminton", "Sports_Volleyball", "Taichi_Taichi1", "Taichi_Taichi2"]
# every sequence: cameras C0 and C1, frames 00180 and 00225 -> 40 frames
FRAMES = [f"{s}_C{c}_{f}.png" for s in SEQUENCES for c in (0, 1) for f in ("00180", "00225")]
H, W = 32, 24
RGB_MASK = "Kata_Kata2_C1_00180.png"
TWO_PERSONS = "HipHop_HipHop1_C0_00180.png"


def _mask(name):
    """0/255 mask: a 20x8 person; TWO_PERSONS adds an 8x8 second one and a 2x2 speck (below the min area)."""
    mask = np.zeros((H, W), np.uint8)
    shift = FRAMES.index(name) % 4 if name in FRAMES else 0
    mask[2 + shift:22 + shift, 3:11] = 255
    if name == TWO_PERSONS:
        mask[20:28, 14:22] = 255
        mask[30:32, 0:2] = 255
    return mask


def _write_mads(root, nested=2, csv=True, frames=FRAMES):
    """The Kaggle archive unpacked into ``root/MADS``, the data folder ``nested`` levels deep."""
    mads = root / "MADS"
    data = mads.joinpath(*[FOLDER] * nested)
    for sub in ("images", "masks", "collages"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(frames):
        image = np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(image).save(data / "images" / name)
        mask = _mask(name)
        Image.fromarray(np.repeat(mask[..., None], 3, axis=2) if name == RGB_MASK else mask).save(data / "masks" / name)
        Image.fromarray(np.concatenate([image, np.repeat(mask[..., None], 3, axis=2)], axis=1)).save(
            data / "collages" / name)
    if csv:
        rows = [f"{i},images/{n},masks/{n},collages/{n}" for i, n in enumerate(frames)]
        (mads / "df.csv").write_text("\n".join([",images,masks,collages", *rows]) + "\n")
    return mads, data


@pytest.fixture
def mads(tmp_path):
    return _write_mads(tmp_path)


@pytest.mark.parametrize("nested", [0, 1, 2])
def test_finds_the_data_folder_at_any_nesting(tmp_path, nested):
    root, data = _write_mads(tmp_path, nested=nested, frames=FRAMES[:1])
    # a macOS-made zip adds AppleDouble copies of the tree: ignored
    for sub in ("images", "masks"):
        (root / "__MACOSX" / sub).mkdir(parents=True)
    assert find_mads_folder(str(root)) == str(data)
    assert len(load_mads(str(root))) == 1


def test_several_copies_are_refused(tmp_path):
    root, data = _write_mads(tmp_path, nested=2, frames=FRAMES[:1])
    shutil.copytree(data, root / FOLDER / "copy")
    with pytest.raises(DataError, match="Several MADS copies found under the root"):
        find_mads_folder(str(root))


def test_exact_records_from_the_doubly_nested_layout(mads):
    root, data = mads
    records = load_mads(str(root))
    assert [r["file_name"] for r in records] == [str(data / "images" / n) for n in sorted(FRAMES)]
    first = records[0]
    assert sorted(FRAMES)[0] == TWO_PERSONS
    rles = [a.pop("segmentation") for a in first["annotations"]]
    assert first == {
        "file_name": str(data / "images" / TWO_PERSONS), "height": H, "width": W,
        "image_id": "HipHop_HipHop1_C0_00180",
        "sem_seg_file_name": str(data / "masks" / TWO_PERSONS), "sem_seg_binary": True,
        # the 2x2 speck at (0, 30) is below MIN_INSTANCE_AREA = 50 pixels: no instance
        "annotations": [
            {"bbox": [3.0, 2.0, 8.0, 20.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0},
            {"bbox": [14.0, 20.0, 8.0, 8.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0},
        ],
    }
    person, second = np.zeros((H, W), bool), np.zeros((H, W), bool)
    person[2:22, 3:11] = True
    second[20:28, 14:22] = True
    np.testing.assert_array_equal(rle_to_bitmask(rles[0]), person)
    np.testing.assert_array_equal(rle_to_bitmask(rles[1]), second)
    other = next(r for r in records if r["image_id"] == "Jazz_Jazz1_C0_00225")  # shift 1
    assert [a["bbox"] for a in other["annotations"]] == [[3.0, 3.0, 8.0, 20.0]]


def test_rgb_stored_mask_gives_the_same_labels(mads):
    root, data = mads
    assert Image.open(data / "masks" / RGB_MASK).mode == "RGB"
    record = next(r for r in load_mads(str(root)) if r["image_id"] == RGB_MASK[:-4])
    expected = (_mask(RGB_MASK) > 0).astype(np.int64)
    assert record["annotations"][0]["bbox"] == [3.0, 4.0, 8.0, 20.0]  # frame 22: shift 2
    np.testing.assert_array_equal(rle_to_bitmask(record["annotations"][0]["segmentation"]), expected.astype(bool))
    mapped = DatasetMapper(False, augmentations=[], image_format="BGR")(record)
    np.testing.assert_array_equal(mapped["sem_seg"].numpy(), expected)
    assert mapped["sem_seg"].dtype == torch.int64


def test_instances_train_through_the_bitmask_mapper(mads):
    root, _ = mads
    record = load_mads(str(root), with_sem_seg=False)[0]
    mapped = DatasetMapper(True, augmentations=[], image_format="BGR", use_instance_mask=True,
                           instance_mask_format="bitmask")(record)
    instances = mapped["instances"]
    assert instances.gt_classes.tolist() == [0, 0]
    assert instances.gt_boxes.tensor.tolist() == [[3.0, 2.0, 11.0, 22.0], [14.0, 20.0, 22.0, 28.0]]
    assert instances.gt_masks.tensor.sum(dim=(1, 2)).tolist() == [160, 64]


def test_csv_is_the_list_of_frames_when_present(mads):
    root, data = mads
    extra = "Jazz_Jazz9_C0_00010.png"  # on disk, not in df.csv
    shutil.copy(data / "images" / FRAMES[0], data / "images" / extra)
    assert extra[:-4] not in [r["image_id"] for r in load_mads(str(root), with_instances=False)]
    os.remove(root / "df.csv")
    shutil.copy(data / "masks" / FRAMES[0], data / "masks" / extra)
    assert len(load_mads(str(root), with_instances=False)) == len(FRAMES) + 1


def test_csv_with_windows_or_prefixed_paths_pairs_by_file_name(mads):
    root, data = mads
    rows = [f"{i},{FOLDER}\\{FOLDER}\\images\\{n},{FOLDER}/masks/{n},collages/{n}" for i, n in enumerate(FRAMES)]
    (root / "df.csv").write_text("\n".join([",images,masks,collages", *rows]) + "\n")
    records = load_mads(str(root), with_instances=False)
    assert [r["sem_seg_file_name"] for r in records] == [str(data / "masks" / n) for n in sorted(FRAMES)]


def test_unpaired_image_is_named(mads):
    root, data = mads
    os.remove(root / "df.csv")
    os.remove(data / "masks" / "Jazz_Jazz6_C1_00225.png")
    with pytest.raises(DataError, match="1 MADS file\\(s\\) have no partner of the same name \\(40 in images/, "
                                        "39 in masks/\\)") as e:
        load_mads(str(root))
    assert str(data / "images" / "Jazz_Jazz6_C1_00225.png") in str(e.value)


def test_csv_entry_absent_on_disk_is_named(mads):
    root, data = mads
    os.remove(data / "masks" / "Jazz_Jazz6_C1_00225.png")
    with pytest.raises(DataError, match="1 of 80 images and masks listed in df.csv do not exist") as e:
        load_mads(str(root))
    assert str(data / "masks" / "Jazz_Jazz6_C1_00225.png") in str(e.value) and str(root / "df.csv") in str(e.value)


def test_missing_root_and_missing_data_folder(tmp_path):
    with pytest.raises(DataError, match="MADS root folder does not exist. Unzip the Kaggle"):
        load_mads(str(tmp_path / "MADS"))
    (tmp_path / "MADS" / FOLDER / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="No folder with both 'images/' and 'masks/' found under the MADS root"):
        load_mads(str(tmp_path / "MADS"))


@pytest.mark.parametrize("name, parsed", [
    ("HipHop_HipHop1_C0_00180.png", ("HipHop_HipHop1", "HipHop", 0, 180)),
    ("images/Kata_Kata2_C1_00040.png", ("Kata_Kata2", "Kata", 1, 40)),
    ("Sports_Badminton_C2_00010.png", ("Sports_Badminton", "Sports", 2, 10)),
    ("Jazz2_Jazz2_S1_C1_0005.png", ("Jazz2_Jazz2_S1", "Jazz2", 1, 5)),
    ("Taichi_C0_00010.png", ("Taichi", "Taichi", 0, 10)),
])
def test_parse_names(name, parsed):
    assert tuple(parse_mads_name(name)) == parsed


def test_name_without_camera_and_frame_is_an_error_when_splitting(tmp_path):
    root, data = _write_mads(tmp_path, csv=False, frames=FRAMES[:4] + ["HipHop_frame7.png"])
    assert len(load_mads(str(root), with_instances=False)) == 5
    with pytest.raises(DataError, match="MADS frame name 'HipHop_frame7' does not match") as e:
        load_mads(str(root), "train")
    assert str(data / "images" / "HipHop_frame7.png") in str(e.value)


def test_split_by_sequence(mads):
    root, _ = mads
    by_split = {split: load_mads(str(root), split, with_instances=False) for split in ("train", "val", "test")}
    sequences = {split: {parse_mads_name(r["file_name"]).sequence for r in records}
                 for split, records in by_split.items()}
    assert [len(sequences[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert set.union(*sequences.values()) == set(SEQUENCES)
    assert sum(len(s) for s in sequences.values()) == len(SEQUENCES)  # each sequence in exactly one split
    assert sorted(r["image_id"] + ".png" for records in by_split.values() for r in records) == sorted(FRAMES)
    assert {len(records) for records in by_split.values()} == {24, 8}  # whole sequences: 4 frames each


def _ranked(sequences):
    return sorted(sequences, key=lambda s: hashlib.sha256(f"0:{s}".encode()).hexdigest())


def test_split_follows_the_documented_rule():
    """Rank by sha256('0:<sequence>'): 10 sequences -> val and test floor(1.5 + 0.5) = 2 each, train 6;
    3 sequences -> val and test max(1, floor(0.45 + 0.5)) = 1 each, so no split is empty."""
    assignment = mads_split_assignment(SEQUENCES)
    assert [assignment[s] for s in _ranked(SEQUENCES)] == ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    three = mads_split_assignment(SEQUENCES[:3])
    assert [three[s] for s in _ranked(SEQUENCES[:3])] == ["train", "val", "test"]


BUILTIN = [f"mads_{s}{suffix}" for s in ("train", "val", "test") for suffix in ("", "_sem_seg")]


@pytest.fixture
def builtin_names_free(set_aside_registrations):
    """Set the import-time MADS registrations aside during the test, then restore them."""
    set_aside_registrations(BUILTIN)


def test_builtin_registration_is_lazy(tmp_path, builtin_names_free):
    register_all_mads(str(tmp_path))
    assert os.listdir(tmp_path) == []
    assert MetadataCatalog.get("mads_val").as_dict() == {
        "name": "mads_val", "thing_classes": ["person"], "evaluator_type": "coco"}
    assert MetadataCatalog.get("mads_train_sem_seg").as_dict() == {
        "name": "mads_train_sem_seg", "stuff_classes": ["background", "person"], "ignore_label": 255,
        "evaluator_type": "sem_seg"}
    _write_mads(tmp_path)
    sizes = {name: len(DatasetCatalog.get(name)) for name in BUILTIN}
    assert sizes == {name: 24 if "train" in name else 8 for name in BUILTIN}
    assert "annotations" not in DatasetCatalog.get("mads_val_sem_seg")[0]
    assert "sem_seg_file_name" not in DatasetCatalog.get("mads_val")[0]
