"""Property tests of the dataset loaders and the mapper on generated malformed input.

Each generated case ends either in clean records (which pass ``check_dataset_dict`` and map,
or fail to map with a DataError naming the image) or in one DataError naming the file at
fault; never in a bare KeyError/IndexError/TypeError or a crash of the process.
"""
import copy
import io
import json
import os
import shutil
import tempfile

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from seg_research.data.datasets import load_coco_json, load_coco_panoptic_json, panoptic_metadata
from seg_research.data.datasets.mads import load_mads
from seg_research.data.datasets.ph2 import load_ph2
from seg_research.data.detection_utils import read_image, write_panoptic_ids
from seg_research.data.errors import DataError
from seg_research.data.mapper import DatasetMapper
from seg_research.data.record_checks import check_dataset_dict, read_record_pan_seg
from seg_research.structures import BoxMode

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
H, W = 6, 8
MAPPER = DatasetMapper(is_train=True, augmentations=[], image_format="RGB", use_instance_mask=True,
                       instance_mask_format="bitmask")


def _png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


GOOD_PNG = _png_bytes(np.full((H, W, 3), 90, np.uint8))
#: what an image/mask file on disk may be
FILE_VARIANTS = {
    "good": GOOD_PNG,
    "empty": b"",
    "truncated": GOOD_PNG[: len(GOOD_PNG) // 2],
    "not an image": b"<html>404 Not Found</html>",
    "other size": _png_bytes(np.full((W, H, 3), 90, np.uint8)),
    "gray": _png_bytes(np.full((H, W), 1, np.uint8)),
}
file_variants = st.sampled_from(sorted(FILE_VARIANTS))

hostile = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["../../etc/passwd", "/abs/x.png", "\udcff.png", "\ud800.png", "a\x00.png", "", "a.png"]),
    st.lists(st.floats(-1e12, 1e12), max_size=9), st.lists(st.integers(-3, 20), max_size=9),
    st.lists(st.lists(st.floats(-1e9, 1e9), max_size=8), max_size=2),
    st.fixed_dictionaries({"size": st.lists(st.integers(-1, 9), max_size=3),
                           "counts": st.one_of(st.text(max_size=8), st.lists(st.integers(-2, 60), max_size=4))}),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(obj, prefix=()):
    """Every (container path, key) inside a json-like object."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


def _mutate(data, draw):
    """Apply 1..3 random deletions/replacements with hostile values at random places of ``data``."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        if not paths:
            return draw(hostile)
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(hostile)
    return data


def _serialise(data, draw):
    """The json text of ``data``, sometimes damaged (truncated, not UTF-8, empty)."""
    raw = json.dumps(data).encode("utf-8", errors="surrogatepass")
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "latin1", "empty"]))
    if damage == "truncate":
        return raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    if damage == "latin1":
        return raw.replace(b"cat", b"c\xe4t")
    return b"" if damage == "empty" else raw


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


_BLOCK = np.zeros((H, W), bool)
_BLOCK[1:3, 2:5] = True
COCO = {
    "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W},
               {"id": 2, "file_name": "sub/b.png", "height": H, "width": W}],
    "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    "annotations": [
        {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 1, 3, 2], "iscrowd": 0,
         "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
        {"id": 11, "image_id": 2, "category_id": 7, "bbox": [2, 1, 3, 2], "iscrowd": 1, "segmentation": _rle(_BLOCK)},
        {"id": 12, "image_id": 2, "category_id": 3, "bbox": [0, 0, 2, 2], "iscrowd": 0,
         "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2], [5, 5, 6]]},
    ],
}


def _write_files(root, names, draw):
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(FILE_VARIANTS[draw(file_variants)] if draw(st.integers(0, 3)) == 0 else GOOD_PNG)


def _check_clean_or_located(load, records_check, outcomes, test):
    """Run ``load``; a DataError must name a file; records must be clean and map or fail located."""
    try:
        records = load()
    except DataError as e:
        outcomes.record(test, e)
        assert e.file_name, f"DataError without a file: {e}"
        return
    outcomes.record(test)
    for record in records:
        check_dataset_dict(record)
        records_check(record)
        try:
            out = MAPPER(record)
        except DataError as e:
            outcomes.record(test + " -> mapper", e)
            assert e.file_name and e.record is not None, f"unlocated DataError: {e}"
            continue
        outcomes.record(test + " -> mapper")
        assert out["image"].shape == (3, record["height"], record["width"])


@pytest.fixture
def tmp():
    folder = tempfile.mkdtemp(prefix="robust_")
    yield folder
    shutil.rmtree(folder)


@SETTINGS
@given(data=st.data())
def test_coco_instances_loader(data, outcomes):
    draw = data.draw
    with tempfile.TemporaryDirectory() as root:
        _write_files(root, ["images/a.png", "images/sub/b.png"], draw)
        json_file = os.path.join(root, "instances.json")
        content = _mutate(COCO, draw) if draw(st.integers(0, 4)) else COCO
        with open(json_file, "wb") as f:
            f.write(_serialise(content, draw))
        _check_clean_or_located(lambda: load_coco_json(json_file, os.path.join(root, "images")),
                                lambda record: None, outcomes, "COCO instances")


def test_coco_instances_clean_records_exact(tmp):
    os.makedirs(os.path.join(tmp, "sub"))
    for name in ("a.png", "sub/b.png"):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(GOOD_PNG)
    with open(os.path.join(tmp, "i.json"), "w") as f:
        json.dump(COCO, f)
    records = load_coco_json(os.path.join(tmp, "i.json"), tmp)
    assert [r["image_id"] for r in records] == [1, 2]
    # the 2-number polygon of annotation 12 is dropped, its square kept; ids mapped 3 -> 0, 7 -> 1
    assert records[1]["annotations"][1] == {"bbox": [0, 0, 2, 2], "iscrowd": 0, "bbox_mode": BoxMode.XYWH_ABS,
                                            "category_id": 0, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}
    out = MAPPER(records[1])
    assert out["instances"].gt_boxes.tensor.tolist() == [[0.0, 0.0, 2.0, 2.0]]  # the crowd RLE is not a target


@pytest.mark.parametrize("field, value, message", [
    (("annotations", 0, "bbox"), [1, 1, float("nan"), 2], "bbox must be 4 finite numbers"),
    (("annotations", 0, "bbox"), [1, 1, -3, 2], "negative width or height"),
    (("annotations", 0, "segmentation"), [[1, 1, 4, 1, "x", 3]], "not finite numbers"),
    (("annotations", 1, "segmentation"), {"size": [H + 1, W], "counts": "0"}, "sum to 0 but size 7x8"),
    (("annotations", 1, "segmentation"), _rle(np.zeros((H, W + 1), bool)), r"size \(height, width\) = \(6, 9\)"),
    (("annotations", 0, "category_id"), 5, "category_id 5, which is not in 'categories'"),
    (("annotations", 0, "category_id"), [3], "category_id must be an int"),
    (("annotations", 0, "image_id"), None, "image_id None"),
    (("images", 0, "height"), "6", "height must be an int > 0"),
    (("images", 1, "file_name"), "../../x.png", "outside the dataset root"),
    (("images", 1, "file_name"), "\ud800.png", "cannot be encoded as a file-system path"),
    (("images", 1, "id"), 1, "image id 1 appears twice"),
])
def test_coco_instances_errors_name_file_and_record(tmp, field, value, message):
    data = copy.deepcopy(COCO)
    parent = data
    for key in field[:-1]:
        parent = parent[key]
    parent[field[-1]] = value
    json_file = os.path.join(tmp, "i.json")
    with open(json_file, "wb") as f:
        f.write(json.dumps(data).encode("utf-8", errors="surrogatepass"))
    with pytest.raises(DataError, match=message) as e:
        load_coco_json(json_file, tmp)
    assert e.value.file_name in (json_file, value)
    assert e.value.record is not None


CATEGORIES = [{"id": 3, "name": "cat", "isthing": 1}, {"id": 9, "name": "sky", "isthing": 0}]
PANOPTIC = {
    "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
    "categories": CATEGORIES,
    "annotations": [{"image_id": 1, "file_name": "a_pan.png",
                     "segments_info": [{"id": 5, "category_id": 3, "iscrowd": 0}, {"id": 6, "category_id": 9}]}],
}
PAN_IDS = np.zeros((H, W), np.int64)
PAN_IDS[:3] = 5
PAN_IDS[3:, :4] = 6


@SETTINGS
@given(data=st.data())
def test_coco_panoptic_loader(data, outcomes):
    draw = data.draw
    with tempfile.TemporaryDirectory() as root:
        _write_files(root, ["images/a.png"], draw)
        ids = PAN_IDS.copy()
        ids[draw(st.integers(0, H - 1)), draw(st.integers(0, W - 1))] = draw(st.sampled_from([0, 5, 6, 7, 300]))
        write_panoptic_ids(os.path.join(root, "pan", "a_pan.png"), ids)
        json_file = os.path.join(root, "panoptic.json")
        with open(json_file, "wb") as f:
            f.write(_serialise(_mutate(PANOPTIC, draw) if draw(st.integers(0, 4)) else PANOPTIC, draw))

        def check_png(record):
            try:
                read_record_pan_seg(record)
            except DataError as e:
                outcomes.record("COCO panoptic -> PNG ids", e)
                assert e.file_name == record["pan_seg_file_name"] and e.record == record["image_id"]
                return
            outcomes.record("COCO panoptic -> PNG ids")

        _check_clean_or_located(
            lambda: load_coco_panoptic_json(json_file, os.path.join(root, "images"), os.path.join(root, "pan"),
                                            panoptic_metadata(CATEGORIES)), check_png, outcomes, "COCO panoptic")


def test_panoptic_png_ids_must_be_in_segments_info(tmp):
    write_panoptic_ids(os.path.join(tmp, "p.png"), PAN_IDS)
    record = {"pan_seg_file_name": os.path.join(tmp, "p.png"), "image_id": 1,
              "segments_info": [{"id": 5, "category_id": 0, "isthing": True}]}
    with pytest.raises(DataError, match=r"segment ids \[6\] that are not in the record's segments_info \(ids \[5\]\)"):
        read_record_pan_seg(record)
    record["segments_info"].append({"id": 6, "category_id": 1, "isthing": False})
    np.testing.assert_array_equal(read_record_pan_seg(record), PAN_IDS)


PH2_TXT = ("|| Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry | Pigment Network | Dots/Globules "
           "| Streaks | Regression Areas | Blue-Whitish Veil || Colors ||\n"
           "|| IMD001 ||  || 0 || 0 | T | A | A | A | A || 4 ||\n"
           "|| IMD002 || Melanoma || 2 || 2 | AT | P | P | P | P || 5 ||\n")


@SETTINGS
@given(data=st.data())
def test_ph2_loader(data, outcomes):
    draw = data.draw
    with tempfile.TemporaryDirectory() as root:
        names = [f"PH2 Dataset images/IMD00{i}/IMD00{i}_{kind}" for i in (1, 2)
                 for kind in ("Dermoscopic_Image/IMD00%d.bmp" % i, "lesion/IMD00%d_lesion.bmp" % i)]
        _write_files(root, names, draw)
        lines = PH2_TXT.encode().split(b"\n")
        for _ in range(draw(st.integers(0, 2))):
            k = draw(st.integers(0, len(lines) - 1))
            lines[k] = draw(st.one_of(st.binary(max_size=30), st.text(max_size=30).map(str.encode),
                                      st.just(lines[k].replace(b"|| 0 ||", b"|| 7 ||")),
                                      st.just(lines[k].replace(b" || 4", b"")), st.just(b"|| IMD001 || x || 1 || a || 1 ||")))
        with open(os.path.join(root, "PH2_dataset.txt"), "wb") as f:
            f.write(b"\n".join(lines))
        _check_clean_or_located(lambda: load_ph2(root), lambda record: None, outcomes, "PH2")


MADS_FRAMES = ["HipHop_HipHop1_C0_00001.png", "Kata_Kata2_C1_00007.png"]


@SETTINGS
@given(data=st.data())
def test_mads_loader(data, outcomes):
    draw = data.draw
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, "segmentation_full_body_mads_dataset_1192_img")
        names = list(MADS_FRAMES)
        odd = draw(st.sampled_from([None, None, "Broken-name.png", b"\xff\xfe_C0_00001.png"]))
        if odd is not None:
            names.append(odd if isinstance(odd, str) else os.fsdecode(odd))  # a non-UTF-8 file name
        _write_files(folder, [f"{sub}/{n}" for n in names for sub in ("images", "masks")], draw)
        csv_kind = draw(st.sampled_from(["none", "none", "good", "good", "garbage", "latin1", "nul", "columns",
                                         "missing entry"]))
        rows = ",images,masks,collages\n" + "".join(f"{i},images/{n},masks/{n},c/{n}\n" for i, n in enumerate(names))
        csv = {"good": rows.encode("utf-8", "surrogateescape"), "garbage": draw(st.binary(max_size=40)),
               "latin1": rows.replace("HipHop", "Hip\xe4op").encode("latin-1", "surrogateescape"),
               "nul": rows.encode("utf-8", "surrogateescape").replace(b"Kata", b"K\x00ta"),
               "columns": b"a,b\n1,2\n", "missing entry": rows.replace("images/Kata", "").encode("utf-8", "surrogateescape")}.get(csv_kind)
        if csv is not None:
            with open(os.path.join(folder, "df.csv"), "wb") as f:
                f.write(csv)
        split = draw(st.sampled_from([None, "train"]))
        _check_clean_or_located(lambda: load_mads(root, split), lambda record: None, outcomes, "MADS")


BASE_RECORD = {"image_id": 4, "height": H, "width": W, "annotations": [
    {"id": 1, "bbox": [1.0, 1.0, 4.0, 3.0], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "iscrowd": 0,
     "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
    {"id": 2, "bbox": [2, 1, 3, 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1, "segmentation": _rle(_BLOCK)},
]}


@SETTINGS
@given(data=st.data())
def test_mapper_on_malformed_records(data, tmp, outcomes):
    draw = data.draw
    image = os.path.join(tmp, "img.png")
    with open(image, "wb") as f:
        f.write(FILE_VARIANTS[draw(st.one_of(st.just("good"), file_variants))])
    record = dict(BASE_RECORD, file_name=image)
    if draw(st.integers(0, 5)):
        record = _mutate(record, draw)
    try:
        out = MAPPER(record)
    except DataError as e:
        outcomes.record("DatasetMapper", e)
        located = isinstance(record, dict) and isinstance(record.get("file_name"), str) and record["file_name"]
        assert e.file_name or not located, e  # nothing to name when the record has no file_name
        assert e.record is not None or not located or record.get("image_id") is None, e
        return
    outcomes.record("DatasetMapper")
    assert out["image"].shape == (3, H, W) and out["image"].dtype == torch.uint8
    if record.get("annotations"):
        assert out["instances"].gt_boxes.tensor.shape[1] == 4


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "Corrupt EXIF data", "Truncated File Read"
@SETTINGS
@given(kind=st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "TIFF"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4))
def test_read_image_on_corrupt_files(kind, cut, flips, tmp, outcomes):
    buffer = io.BytesIO()
    Image.fromarray(np.arange(H * W * 3, dtype=np.uint8).reshape(H, W, 3)).save(buffer, format=kind)
    raw = bytearray(buffer.getvalue()[: max(1, int(len(buffer.getvalue()) * cut))] if cut < 0.9 else buffer.getvalue())
    for position, value in flips:
        raw[position % len(raw)] = value
    path = os.path.join(tmp, "x." + kind.lower())
    with open(path, "wb") as f:
        f.write(bytes(raw))
    try:
        image = read_image(path)
    except DataError as e:
        outcomes.record("read_image (corrupt files)", e)
        assert e.file_name == path
        return
    outcomes.record("read_image (corrupt files)")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
