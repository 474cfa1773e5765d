"""The Shapes generator: pinned records, consistency of the four formats, determinism, atomicity, builtins."""
import json
import multiprocessing
import os
import time

import cv2
import numpy as np
import pytest

from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import (
    SHAPES_CATEGORIES,
    load_coco_json,
    load_coco_panoptic_json,
    load_sem_seg,
    panoptic_metadata,
    register_all_shapes,
    shapes_split_params,
)
from seg_research.data.datasets import shapes as shapes_module
from seg_research.data.datasets.shapes import MIN_VISIBLE_AREA, generate_shapes
from seg_research.structures import polygons_to_bitmask, rle_to_bitmask

SPLIT, N, SIZE, SEED = "tiny", 3, (64, 64), 0

# (image_id, category_id, iscrowd, area, bbox XYWH) of every instance of the split above.
PINNED_INSTANCES = [
    (0, 2, 0, 86, [20.0, 9.0, 11.0, 10.0]), (0, 2, 0, 77, [51.0, 20.0, 9.0, 9.0]),
    (1, 1, 0, 160, [48.0, 22.0, 14.0, 14.0]), (1, 2, 0, 228, [13.0, 0.0, 18.0, 16.0]),
    (1, 2, 0, 64, [48.0, 56.0, 8.0, 8.0]), (1, 3, 0, 45, [0.0, 55.0, 9.0, 9.0]),
    (1, 4, 0, 130, [17.0, 16.0, 18.0, 18.0]),
    (2, 3, 1, 117, [31.0, 28.0, 18.0, 23.0]), (2, 4, 0, 60, [14.0, 0.0, 12.0, 10.0]),
    (2, 4, 0, 115, [16.0, 27.0, 16.0, 17.0]),
]
# (segment id, category_id, iscrowd, area) per image.
PINNED_SEGMENTS = [
    [(2001, 2, 0, 86), (2002, 2, 0, 77), (5000, 5, 0, 1951), (6000, 6, 0, 1982)],
    [(1005, 1, 0, 160), (2001, 2, 0, 228), (2003, 2, 0, 64), (3002, 3, 0, 45), (4004, 4, 0, 130),
     (5000, 5, 0, 1856), (6000, 6, 0, 1371), (7000, 7, 0, 242)],
    [(3001, 3, 1, 117), (4002, 4, 0, 60), (4003, 4, 0, 115), (5000, 5, 0, 1328), (6000, 6, 0, 2113),
     (7000, 7, 0, 363)],
]


@pytest.fixture(scope="module")
def split_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes_root"))
    generate_shapes(root, SPLIT, N, SIZE, SEED)
    return os.path.join(root, "shapes")


def _json(path):
    with open(path) as f:
        return json.load(f)


def _panoptic_ids(path):
    rgb = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1].astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 ** 2 * rgb[..., 2]


def _tree_bytes(folder):
    out = {}
    for base, _, files in os.walk(folder):
        for f in files:
            if not f.endswith(".lock"):
                with open(os.path.join(base, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(base, f), folder)] = fh.read()
    return out


def test_pinned_records(split_root):
    instances = _json(os.path.join(split_root, "annotations", f"instances_{SPLIT}.json"))
    panoptic = _json(os.path.join(split_root, "annotations", f"panoptic_{SPLIT}.json"))
    assert instances["images"] == panoptic["images"] == [
        {"id": i, "file_name": f"{i:06d}.png", "height": 64, "width": 64} for i in range(N)]
    assert instances["categories"] == [{"id": 1, "name": "circle", "supercategory": "shape"},
                                       {"id": 2, "name": "square", "supercategory": "shape"},
                                       {"id": 3, "name": "triangle", "supercategory": "shape"},
                                       {"id": 4, "name": "star", "supercategory": "shape"}]
    assert panoptic["categories"] == SHAPES_CATEGORIES
    assert [(c["id"], c["name"], c["isthing"]) for c in SHAPES_CATEGORIES[4:]] == [
        (5, "sky", 0), (6, "ground", 0), (7, "water", 0)]
    assert [(a["image_id"], a["category_id"], a["iscrowd"], a["area"], a["bbox"])
            for a in instances["annotations"]] == PINNED_INSTANCES
    assert [a["id"] for a in instances["annotations"]] == list(range(1, 11))
    assert [[(s["id"], s["category_id"], s["iscrowd"], s["area"]) for s in a["segments_info"]]
            for a in panoptic["annotations"]] == PINNED_SEGMENTS
    assert [a["file_name"] for a in panoptic["annotations"]] == ["000000.png", "000001.png", "000002.png"]


def test_formats_agree_pixel_for_pixel(split_root):
    instances = _json(os.path.join(split_root, "annotations", f"instances_{SPLIT}.json"))
    panoptic = _json(os.path.join(split_root, "annotations", f"panoptic_{SPLIT}.json"))
    kernel = np.ones((3, 3), np.uint8)
    for pan_ann in panoptic["annotations"]:
        name = pan_ann["file_name"]
        image = cv2.imread(os.path.join(split_root, SPLIT, "images", name), cv2.IMREAD_UNCHANGED)
        ids = _panoptic_ids(os.path.join(split_root, f"panoptic_{SPLIT}", name))
        sem = cv2.imread(os.path.join(split_root, f"sem_seg_{SPLIT}", name), cv2.IMREAD_UNCHANGED)
        stuff = cv2.imread(os.path.join(split_root, f"panoptic_stuff_{SPLIT}", name), cv2.IMREAD_UNCHANGED)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert sem.shape == stuff.shape == (64, 64) and sem.dtype == np.uint8
        segments = pan_ann["segments_info"]
        assert sorted(np.unique(ids).tolist()) == [s["id"] for s in segments]  # no void pixel, no stray id
        expected_sem = np.full((64, 64), 255, np.uint8)
        expected_stuff = np.full((64, 64), 255, np.uint8)
        things = [a for a in instances["annotations"] if a["image_id"] == pan_ann["image_id"]]
        thing_segments = [s for s in segments if s["category_id"] <= 4]
        assert len(things) == len(thing_segments)
        assert 2 <= sum(1 - s["iscrowd"] for s in thing_segments) <= 6
        for seg in segments:
            mask = ids == seg["id"]
            expected_sem[mask] = seg["category_id"] - 1
            expected_stuff[mask] = max(0, seg["category_id"] - 4)
            assert seg["area"] == mask.sum()
            ys, xs = np.nonzero(mask)
            assert seg["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            if seg["category_id"] > 4:
                continue
            assert seg["area"] >= MIN_VISIBLE_AREA
            ann = things[thing_segments.index(seg)]
            assert (ann["category_id"], ann["iscrowd"], ann["bbox"], ann["area"]) == (
                seg["category_id"], seg["iscrowd"], seg["bbox"], seg["area"])
            if ann["iscrowd"]:
                assert np.array_equal(rle_to_bitmask(ann["segmentation"]), mask)
                continue
            assert all(len(p) >= 6 and len(p) % 2 == 0 for p in ann["segmentation"])
            drawn = polygons_to_bitmask(ann["segmentation"], 64, 64)
            boundary = cv2.dilate(mask.astype(np.uint8), kernel) > cv2.erode(mask.astype(np.uint8), kernel)
            assert not (drawn ^ mask)[~boundary].any(), "polygon and PNG differ away from the boundary"
            assert (drawn & mask).sum() / (drawn | mask).sum() > 0.75
        assert np.array_equal(sem, expected_sem)
        assert np.array_equal(stuff, expected_stuff)
    crowds = [a["image_id"] for a in instances["annotations"] if a["iscrowd"]]
    assert crowds == [2]


def test_loaders_read_the_split(split_root):
    image_root = os.path.join(split_root, SPLIT, "images")
    inst = load_coco_json(os.path.join(split_root, "annotations", f"instances_{SPLIT}.json"), image_root)
    assert [len(r["annotations"]) for r in inst] == [2, 5, 3]
    assert [a["category_id"] for a in inst[1]["annotations"]] == [0, 1, 1, 2, 3]
    pan = load_coco_panoptic_json(os.path.join(split_root, "annotations", f"panoptic_{SPLIT}.json"), image_root,
                                  os.path.join(split_root, f"panoptic_{SPLIT}"), panoptic_metadata(SHAPES_CATEGORIES))
    assert [(s["category_id"], s["isthing"]) for s in pan[0]["segments_info"]] == [
        (1, True), (1, True), (4, False), (5, False)]
    sem = load_sem_seg(os.path.join(split_root, f"sem_seg_{SPLIT}"), image_root, image_ext="png")
    assert [r["image_id"] for r in sem] == ["000000", "000001", "000002"]


def test_same_seed_same_bytes_other_seed_differs(tmp_path, split_root):
    generate_shapes(str(tmp_path / "again"), SPLIT, N, SIZE, SEED)
    assert _tree_bytes(str(tmp_path / "again" / "shapes")) == _tree_bytes(split_root)
    generate_shapes(str(tmp_path / "other"), SPLIT, N, SIZE, SEED + 1)
    other = tmp_path / "other" / "shapes" / SPLIT / "images" / "000000.png"
    assert other.read_bytes() != open(os.path.join(split_root, SPLIT, "images", "000000.png"), "rb").read()


def _counting_writer(monkeypatch, log_file=None, fail=False, delay_s=0.0):
    """Replace the split writer by one that records its calls (in a list, or a file across processes)."""
    real, calls = shapes_module._write_split, []

    def write(*args):
        calls.append(args)
        if log_file:
            with open(log_file, "a") as f:
                f.write("generated\n")
        time.sleep(delay_s)  # widens the window in which other processes race for the split
        real(*args)
        if fail:
            raise RuntimeError("simulated crash after writing")

    monkeypatch.setattr(shapes_module, "_write_split", write)
    return calls


def test_idempotent_and_regenerates_on_new_parameters(tmp_path, monkeypatch):
    calls = _counting_writer(monkeypatch)
    root = str(tmp_path)
    generate_shapes(root, SPLIT, 2, SIZE, SEED)
    first = (tmp_path / "shapes" / SPLIT / "images" / "000001.png").read_bytes()
    generate_shapes(root, SPLIT, 2, SIZE, SEED)
    assert len(calls) == 1
    assert _json(str(tmp_path / "shapes" / SPLIT / ".done")) == {
        "version": shapes_module.GENERATOR_VERSION, "split": SPLIT, "num_images": 2, "image_size": [64, 64],
        "seed": SEED}
    generate_shapes(root, SPLIT, 3, SIZE, SEED)
    assert len(calls) == 2
    assert sorted(os.listdir(tmp_path / "shapes" / SPLIT / "images")) == ["000000.png", "000001.png", "000002.png"]
    assert (tmp_path / "shapes" / SPLIT / "images" / "000001.png").read_bytes() == first
    assert len(_json(str(tmp_path / "shapes" / "annotations" / f"panoptic_{SPLIT}.json"))["images"]) == 3


def test_crash_leaves_nothing_half_written(tmp_path, monkeypatch):
    _counting_writer(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_shapes(str(tmp_path), SPLIT, 2, SIZE, SEED)
    assert [f for f in os.listdir(tmp_path / "shapes") if not f.endswith(".lock")] == []
    monkeypatch.undo()
    generate_shapes(str(tmp_path), SPLIT, 2, SIZE, SEED)
    assert os.path.isfile(tmp_path / "shapes" / SPLIT / ".done")


def test_concurrent_generation_runs_once(tmp_path, monkeypatch, split_root):
    log_file = str(tmp_path / "calls.txt")
    _counting_writer(monkeypatch, log_file=log_file, delay_s=0.5)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=generate_shapes, args=(str(tmp_path / "root"), SPLIT, N, SIZE, SEED))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert open(log_file).read() == "generated\n"
    assert _tree_bytes(str(tmp_path / "root" / "shapes")) == _tree_bytes(split_root)


def test_split_params_from_environment(monkeypatch):
    for env in ("SEG_SHAPES_TRAIN", "SEG_SHAPES_VAL", "SEG_SHAPES_SIZE"):
        monkeypatch.delenv(env, raising=False)
    assert shapes_split_params("train") == (400, (256, 256), 0)
    assert shapes_split_params("val") == (100, (256, 256), 1)
    monkeypatch.setenv("SEG_SHAPES_TRAIN", "12")
    monkeypatch.setenv("SEG_SHAPES_SIZE", "48x80")
    assert shapes_split_params("train") == (12, (48, 80), 0)
    monkeypatch.setenv("SEG_SHAPES_SIZE", "96")
    assert shapes_split_params("val") == (100, (96, 96), 1)
    monkeypatch.setenv("SEG_SHAPES_VAL", "-3")
    with pytest.raises(ValueError, match=r"SEG_SHAPES_VAL='-3' is invalid: expected a positive integer\."):
        shapes_split_params("val")
    monkeypatch.setenv("SEG_SHAPES_SIZE", "4x5x6")
    with pytest.raises(ValueError, match="SEG_SHAPES_SIZE='4x5x6' is invalid: expected a positive integer or HxW"):
        shapes_split_params("train")


BUILTIN = [f"shapes_{s}{suffix}" for s in ("train", "val")
           for suffix in ("", "_sem_seg", "_panoptic", "_panoptic_separated", "_panoptic_with_sem_seg")]


@pytest.fixture
def builtin_names_free(set_aside_registrations):
    """Set the import-time Shapes registrations aside during the test, then restore them."""
    set_aside_registrations(BUILTIN)


def test_builtin_registration_is_lazy_then_generates(tmp_path, monkeypatch, builtin_names_free):
    monkeypatch.setenv("SEG_SHAPES_TRAIN", "2")
    monkeypatch.setenv("SEG_SHAPES_VAL", "1")
    monkeypatch.setenv("SEG_SHAPES_SIZE", "48x64")
    register_all_shapes(str(tmp_path))
    assert os.listdir(tmp_path) == []
    assert sorted(n for n in DatasetCatalog.list() if n.startswith("shapes_")) == sorted(BUILTIN)
    shapes = str(tmp_path / "shapes")
    names = ["circle", "square", "triangle", "star", "sky", "ground", "water"]
    assert MetadataCatalog.get("shapes_val").as_dict() == {
        "name": "shapes_val", "json_file": f"{shapes}/annotations/instances_val.json",
        "image_root": f"{shapes}/val/images", "evaluator_type": "coco", "thing_classes": names[:4],
        "thing_dataset_id_to_contiguous_id": {1: 0, 2: 1, 3: 2, 4: 3},
        "thing_colors": [c["color"] for c in SHAPES_CATEGORIES[:4]]}
    sem_meta = MetadataCatalog.get("shapes_train_sem_seg")
    assert (sem_meta.stuff_classes, sem_meta.ignore_label, sem_meta.evaluator_type) == (names, 255, "sem_seg")
    assert len({tuple(c) for c in sem_meta.stuff_colors}) == 7
    sep = MetadataCatalog.get("shapes_train_panoptic_separated")
    assert sep.stuff_classes == ["things", "sky", "ground", "water"]
    assert sep.stuff_dataset_id_to_contiguous_id == {5: 1, 6: 2, 7: 3}
    assert sep.sem_seg_root == f"{shapes}/panoptic_stuff_train"
    assert MetadataCatalog.get("shapes_val_panoptic").stuff_dataset_id_to_contiguous_id == {i: i - 1 for i in range(1, 8)}
    assert os.listdir(tmp_path) == []

    sizes = {name: len(DatasetCatalog.get(name)) for name in BUILTIN}
    assert sizes == {name: 2 if "train" in name else 1 for name in BUILTIN}
    record = DatasetCatalog.get("shapes_val_panoptic_separated")[0]
    assert (record["height"], record["width"]) == (48, 64)
    assert record["sem_seg_file_name"] == f"{shapes}/panoptic_stuff_val/000000.png"
    assert {"annotations", "segments_info", "pan_seg_file_name"} <= record.keys()
    with_sem = DatasetCatalog.get("shapes_val_panoptic_with_sem_seg")[0]  # Mask2Former's: panoptic + semantic labels
    assert with_sem["sem_seg_file_name"] == f"{shapes}/sem_seg_val/000000.png" and "segments_info" in with_sem
