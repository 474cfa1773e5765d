"""PH2: parsing PH2_dataset.txt, exact records, 1-bit and 24-bit masks through mapper and evaluator,
the stratified split, errors, and the builtin registration."""
import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.datasets import load_ph2, ph2_split_assignment, read_ph2_diagnoses, register_all_ph2
from seg_research.data.detection_utils import read_sem_seg
from seg_research.data.mapper import DatasetMapper
from seg_research.evaluation import SemSegEvaluator
from seg_research.structures import BoxMode

# 10 common nevi, 10 atypical nevi, 5 melanomas, named like the real images (gaps included).
NAMES = {0: [f"IMD{n:03d}" for n in (2, 3, 4, 6, 8, 9, 10, 13, 15, 16)],
         1: [f"IMD{n:03d}" for n in (17, 18, 19, 20, 21, 24, 25, 27, 30, 32)],
         2: [f"IMD{n:03d}" for n in (58, 61, 63, 64, 65)]}
DIAGNOSIS = {name: d for d, names in NAMES.items() for name in names}
RGB_MASK = "IMD061"  # stored as a 24-bit RGB 0/255 BMP, like a few real ones
HEADER = ("||   Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry | Pigment Network | "
          "Dots/Globules | Streaks | Regression Areas | Blue-Whitish Veil ||           Colors ||")
LEGEND = """
Legend:

Clinical Diagnosis:
    0 - Common Nevus;
    1 - Atypical Nevus;
    2 - Melanoma.

Asymmetry:
    0 - Fully Symmetric;
    1 - Symetric in 1 axe;
    2 - Fully Asymmetric.
"""


def _size(index):
    """(height, width) of the index-th image: sizes vary, like the real 767x576-ish ones."""
    return 18 + index % 3, 24 + index % 4


def _lesion_box(index):
    """(x0, y0, w, h) of the index-th lesion rectangle."""
    return 3 + index % 2, 2 + index % 3, 8 + index % 5, 5 + index % 4


def _row(name, diagnosis):
    histological = "Melanoma" if diagnosis == 2 else ""
    return (f"|| {name} || {histological:>22} || {diagnosis:>18} ||         0 |               T |"
            f"             A |       A |                A |                 A ||                4 ||")


def _write_ph2(root, rows=None):
    """Write PH2 as distributed under ``root/PH2Dataset``; return that folder."""
    ph2 = root / "PH2Dataset"
    for index, name in enumerate(sorted(DIAGNOSIS)):
        case = ph2 / "PH2 Dataset images" / name
        (case / f"{name}_Dermoscopic_Image").mkdir(parents=True)
        (case / f"{name}_lesion").mkdir()
        h, w = _size(index)
        rgb = np.random.default_rng(index).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(case / f"{name}_Dermoscopic_Image" / f"{name}.bmp")
        x, y, bw, bh = _lesion_box(index)
        mask = np.zeros((h, w), bool)
        mask[y:y + bh, x:x + bw] = True
        if name == RGB_MASK:
            Image.fromarray(np.repeat(mask[..., None] * np.uint8(255), 3, axis=2)).save(
                case / f"{name}_lesion" / f"{name}_lesion.bmp")
        else:
            Image.fromarray(mask).save(case / f"{name}_lesion" / f"{name}_lesion.bmp")  # 1-bit BMP
        if index % 4 == 0:
            (case / f"{name}_roi").mkdir()
            Image.fromarray(mask).save(case / f"{name}_roi" / f"{name}_R1_Label4.bmp")
    if rows is None:
        rows = [_row(name, DIAGNOSIS[name]) for name in sorted(DIAGNOSIS)]
    (ph2 / "PH2_dataset.txt").write_text("\n".join(["", HEADER, *rows, LEGEND]), encoding="utf-8")
    return ph2


@pytest.fixture
def ph2(tmp_path):
    return _write_ph2(tmp_path)


def test_mask_files_are_1_bit_and_24_bit_bmps(ph2):
    lesion = ph2 / "PH2 Dataset images" / "{0}" / "{0}_lesion" / "{0}_lesion.bmp"
    assert Image.open(str(lesion).format("IMD002")).mode == "1"
    assert Image.open(str(lesion).format(RGB_MASK)).mode == "RGB"


def test_read_diagnoses_skips_header_and_legend(ph2):
    diagnoses = read_ph2_diagnoses(str(ph2 / "PH2_dataset.txt"))
    assert diagnoses == DIAGNOSIS
    assert list(diagnoses) == sorted(DIAGNOSIS)  # file order


def test_parses_the_example_row_of_the_spec(tmp_path):
    txt = tmp_path / "PH2_dataset.txt"
    txt.write_text(HEADER + "\n|| IMD003 ||  || 0 || 0 | T | A | A | A | A || 4 ||\n"
                   "|| IMD437 ||              Melanoma ||                  2 ||         2 |  AT |  P |  P |  P |  P ||"
                   "             3  4 ||\n")
    assert read_ph2_diagnoses(str(txt)) == {"IMD003": 0, "IMD437": 2}


def test_exact_records(ph2):
    records = load_ph2(str(ph2))
    assert [r["image_id"] for r in records] == sorted(DIAGNOSIS)
    images = ph2 / "PH2 Dataset images"
    # IMD002 is index 0: 18x24 image, lesion x 3..10, y 2..6; IMD061 (index 21): 18x25, x 4..12, y 2..7.
    assert records[0] == {
        "file_name": str(images / "IMD002" / "IMD002_Dermoscopic_Image" / "IMD002.bmp"),
        "height": 18, "width": 24, "image_id": "IMD002",
        "sem_seg_file_name": str(images / "IMD002" / "IMD002_lesion" / "IMD002_lesion.bmp"),
        "sem_seg_binary": True,
        "annotations": [{"bbox": [3.0, 2.0, 8.0, 5.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0,
                         "segmentation": [[3.5, 2.5, 3.5, 6.5, 10.5, 6.5, 10.5, 2.5]], "iscrowd": 0}],
    }
    rgb = records[sorted(DIAGNOSIS).index(RGB_MASK)]
    assert (rgb["height"], rgb["width"]) == (18, 25)
    assert rgb["annotations"] == [{"bbox": [4.0, 2.0, 9.0, 6.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2,
                                   "segmentation": [[4.5, 2.5, 4.5, 7.5, 12.5, 7.5, 12.5, 2.5]], "iscrowd": 0}]
    assert [r["annotations"][0]["category_id"] for r in records] == [DIAGNOSIS[n] for n in sorted(DIAGNOSIS)]


def test_instance_and_sem_seg_variants(ph2):
    instances = load_ph2(str(ph2), with_sem_seg=False)[0]
    sem_seg = load_ph2(str(ph2), with_instances=False)[0]
    assert set(instances) == {"file_name", "height", "width", "image_id", "annotations"}
    assert set(sem_seg) == {"file_name", "height", "width", "image_id", "sem_seg_file_name", "sem_seg_binary"}


@pytest.mark.parametrize("name", ["IMD002", RGB_MASK])
def test_1_bit_and_24_bit_masks_give_mask_gt_0_labels_in_mapper_and_evaluator(ph2, name):
    record = next(r for r in load_ph2(str(ph2), with_instances=False) if r["image_id"] == name)
    index = sorted(DIAGNOSIS).index(name)
    (h, w), (x, y, bw, bh) = _size(index), _lesion_box(index)
    expected = np.zeros((h, w), np.int64)
    expected[y:y + bh, x:x + bw] = 1

    mapped = DatasetMapper(False, augmentations=[], image_format="BGR")(record)
    assert mapped["sem_seg"].dtype == torch.int64
    np.testing.assert_array_equal(mapped["sem_seg"].numpy(), expected)

    dataset = "test_ph2_eval"
    MetadataCatalog.get(dataset).set(stuff_classes=["background", "lesion"], ignore_label=255)
    try:
        evaluator = SemSegEvaluator(dataset, distributed=False)
        everything_lesion = torch.stack([torch.zeros(h, w), torch.ones(h, w)])
        evaluator.process([mapped], [{"sem_seg": everything_lesion}])
        result = evaluator.evaluate()["sem_seg"]
    finally:
        MetadataCatalog.remove(dataset)
    assert result["IoU-lesion"] == pytest.approx(100 * bw * bh / (h * w))
    assert result["IoU-background"] == 0.0
    assert result["pACC"] == pytest.approx(100 * bw * bh / (h * w))


def test_masks_read_as_class_ids_need_the_binary_flag(ph2):
    lesion = str(ph2 / "PH2 Dataset images" / "{0}" / "{0}_lesion" / "{0}_lesion.bmp")
    one_bit = read_sem_seg(lesion.format("IMD002"))  # mode "1" reads as 0/1 class ids even without the flag
    assert one_bit.dtype == np.uint8 and one_bit.sum() == 8 * 5
    with pytest.raises(DataError, match="shape \\(18, 25, 3\\).*set 'sem_seg_binary': True in the dataset dict"):
        read_sem_seg(lesion.format(RGB_MASK))
    assert read_sem_seg(lesion.format(RGB_MASK), binary=True).sum() == 9 * 6


def test_mask_of_another_size_is_named(ph2):
    mask = ph2 / "PH2 Dataset images" / "IMD003" / "IMD003_lesion" / "IMD003_lesion.bmp"
    Image.fromarray(np.ones((5, 7), bool)).save(mask)
    with pytest.raises(DataError, match=r"Mask has \(height, width\) = \(5, 7\) but its image .* is \(19, 25\)") as e:
        load_ph2(str(ph2))
    assert str(mask) in str(e.value) and "record 'IMD003'" in str(e.value)


def test_split_is_stratified_disjoint_and_complete(ph2):
    by_split = {split: [r["image_id"] for r in load_ph2(str(ph2), split, with_instances=False)]
                for split in ("train", "val", "test")}
    per_class = {split: [sum(DIAGNOSIS[n] == d for n in names) for d in range(3)] for split, names in by_split.items()}
    assert per_class == {"train": [6, 6, 3], "val": [2, 2, 1], "test": [2, 2, 1]}
    assert sorted(sum(by_split.values(), [])) == sorted(DIAGNOSIS)
    assert by_split["train"] == [r["image_id"] for r in load_ph2(str(ph2), "train", with_instances=False)]


def test_split_follows_the_documented_rule():
    """Re-derive the melanoma class by hand: rank by sha256('0:<name>'), 3 train, then 1 val, then 1 test."""
    ranked = sorted(NAMES[2], key=lambda n: hashlib.sha256(f"0:{n}".encode()).hexdigest())
    assignment = ph2_split_assignment(DIAGNOSIS)
    assert [assignment[n] for n in ranked] == ["train", "train", "train", "val", "test"]
    # an image's split depends only on its own class
    without_melanoma = {n: d for n, d in DIAGNOSIS.items() if d != 2}
    assert ph2_split_assignment(without_melanoma) == {n: assignment[n] for n in without_melanoma}


def test_split_sizes_on_the_real_class_counts():
    names = [f"IMD{i:03d}" for i in range(200)]
    diagnoses = {n: 0 if i < 80 else 1 if i < 160 else 2 for i, n in enumerate(names)}
    assignment = ph2_split_assignment(diagnoses)
    counts = {(d, s): 0 for d in range(3) for s in ("train", "val", "test")}
    for name, split in assignment.items():
        counts[diagnoses[name], split] += 1
    assert counts == {(0, "train"): 48, (0, "val"): 16, (0, "test"): 16, (1, "train"): 48, (1, "val"): 16,
                      (1, "test"): 16, (2, "train"): 24, (2, "val"): 8, (2, "test"): 8}


def test_unknown_split(ph2):
    with pytest.raises(ValueError, match="split must be one of"):
        load_ph2(str(ph2), "validation")


def test_missing_mask_is_named(ph2):
    mask = ph2 / "PH2 Dataset images" / "IMD009" / "IMD009_lesion" / "IMD009_lesion.bmp"
    os.remove(mask)
    with pytest.raises(DataError, match="1 of 25 PH2 lesion masks do not exist") as e:
        load_ph2(str(ph2))
    assert str(mask) in str(e.value) and "IMDxxx_lesion/IMDxxx_lesion.bmp" in str(e.value)


def test_listed_but_absent_image_is_named(ph2):
    image = ph2 / "PH2 Dataset images" / "IMD058" / "IMD058_Dermoscopic_Image" / "IMD058.bmp"
    os.remove(image)
    with pytest.raises(DataError, match="1 of 25 PH2 images listed in PH2_dataset.txt do not exist") as e:
        load_ph2(str(ph2))
    assert str(image) in str(e.value) and "PH2_dataset.txt" in str(e.value)


@pytest.mark.parametrize("row, problem", [
    ("|| IMD099 ||  || 3 || 0 | T | A | A | A | A || 4 ||", "clinical diagnosis '3' is not 0, 1 or 2"),
    ("|| IMD099 ||  0 | T | A | A | A | A || 4 ||", "3 '||'-separated fields instead of 5 (name, histological"),
    ("|| IMD 099 ||  || 0 || 0 | T | A | A | A | A || 4 ||", "'IMD 099' is not an image name"),
])
def test_malformed_row_names_line_and_row(tmp_path, row, problem):
    rows = [_row(n, DIAGNOSIS[n]) for n in sorted(DIAGNOSIS)]
    rows.insert(3, row)
    ph2 = _write_ph2(tmp_path, rows)
    with pytest.raises(DataError) as e:
        load_ph2(str(ph2))
    text = str(e.value)
    # line 1 is empty, line 2 the header, data rows from line 3: the inserted row is line 6
    assert "Malformed row in PH2_dataset.txt at line 6" in text and problem in text
    assert repr(row) in text and "record 'line 6'" in text and str(ph2 / "PH2_dataset.txt") in text


def test_parses_the_tab_separated_reexport_of_public_copies(tmp_path):
    """The layout of the GitHub copy (chelseaparlett/SkinCancerVariation/PH2Dataset): UTF-8 BOM, CRLF,
    a tab-separated header and rows, then the legend (cut to its first characters) in the same columns."""
    txt = tmp_path / "PH2_dataset.txt"
    lines = ["\ufeffName\tClinical Diagnosis\tAsymmetry", "IMD003\t0\t0", "IMD010\t1\t2", "IMD435\t2\t2", "\t\t",
             "gends f\t\t", "0 - Co\t\t", "2 - Me\t\t", 'gends f\t"ules, Streaks, Regr"\t"ion Areas,"', "A  - A\t\t"]
    txt.write_bytes("\r\n".join(lines).encode("utf-8"))
    assert read_ph2_diagnoses(str(txt)) == {"IMD003": 0, "IMD010": 1, "IMD435": 2}
    txt.write_text("Name\tClinical Diagnosis\nIMD003\t7\n")
    with pytest.raises(DataError, match=r"line 2: clinical diagnosis '7' is not 0, 1 or 2"):
        read_ph2_diagnoses(str(txt))


def test_duplicate_row_and_missing_table(tmp_path):
    rows = [_row(n, DIAGNOSIS[n]) for n in sorted(DIAGNOSIS)] + [_row("IMD002", 1)]
    ph2 = _write_ph2(tmp_path, rows)
    with pytest.raises(DataError, match="IMD002 is listed twice in PH2_dataset.txt \\(again at line 28\\)"):
        load_ph2(str(ph2))
    with pytest.raises(DataError, match="Unpack PH2Dataset.rar into \\$SEG_DATASETS"):
        load_ph2(str(tmp_path / "elsewhere"))


BUILTIN = [f"ph2_{s}{suffix}" for s in ("train", "val", "test") for suffix in ("", "_sem_seg")]


@pytest.fixture
def builtin_names_free(set_aside_registrations):
    """Set the import-time PH2 registrations aside during the test, then restore them."""
    set_aside_registrations(BUILTIN)


def test_builtin_registration_is_lazy(tmp_path, builtin_names_free):
    register_all_ph2(str(tmp_path))
    assert os.listdir(tmp_path) == []
    image_root = str(tmp_path / "PH2Dataset" / "PH2 Dataset images")
    assert MetadataCatalog.get("ph2_val").as_dict() == {
        "name": "ph2_val", "thing_classes": ["common nevus", "atypical nevus", "melanoma"], "evaluator_type": "coco",
        "image_root": image_root}
    assert MetadataCatalog.get("ph2_test_sem_seg").as_dict() == {
        "name": "ph2_test_sem_seg", "stuff_classes": ["background", "lesion"], "ignore_label": 255,
        "evaluator_type": "sem_seg", "image_root": image_root}
    _write_ph2(tmp_path)
    sizes = {name: len(DatasetCatalog.get(name)) for name in BUILTIN}
    assert sizes == {name: 15 if "train" in name else 5 for name in BUILTIN}
    assert "annotations" not in DatasetCatalog.get("ph2_val_sem_seg")[0]
    assert "sem_seg_file_name" not in DatasetCatalog.get("ph2_val")[0]
