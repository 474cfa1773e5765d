"""PH2 dermoscopy dataset (200 images of melanocytic lesions), read from its distributed layout.

Layout (``PH2Dataset.rar`` unpacked; ``root`` is the ``PH2Dataset`` folder)::

    PH2Dataset/
      PH2_dataset.txt                                  table of diagnoses (below)
      PH2 Dataset images/
        IMD002/
          IMD002_Dermoscopic_Image/IMD002.bmp          RGB image, about 767x576 (sizes vary)
          IMD002_lesion/IMD002_lesion.bmp              lesion mask: 1-bit BMP (some 24-bit RGB 0/255)
          IMD002_roi/...                               optional colour regions (not used)

``PH2_dataset.txt`` has a header block, the table, and possibly a legend. Table rows
start with ``||``; a data row is one that contains ``IMD`` (the header does not). Split on ``||``, a data row is::

    ["", name, histological diagnosis (text, often empty), clinical diagnosis,
     "asymmetry | pigment network | dots/globules | streaks | regression areas | blue-whitish veil",
     colours, ""]

e.g. ``|| IMD003 ||  || 0 || 0 | T | A | A | A | A || 4 ||``. Public copies of the release (e.g.
the GitHub repository chelseaparlett/SkinCancerVariation, folder ``PH2Dataset``) carry instead a
tab-separated re-export with a header row (``Name<TAB>Clinical Diagnosis<TAB>Asymmetry``); both are
read. The clinical diagnosis (the 2nd field after the name in the release's table) is the class: 0 common nevus, 1 atypical nevus, 2 melanoma
(80 / 80 / 40 images). Only the name and the clinical diagnosis are read.

Lesion labels are ``mask > 0`` (any channel), for the 1-bit and the 24-bit masks alike.

Split (PH2 has no official one): fixed, seeded and stratified by clinical diagnosis;
parameters in ``splits/ph2_split.json``. Within each class the names are assigned by
:func:`seg_research.data.datasets.seeded_split.assign_splits` (60 / 20 / 20 %), which
gives 48/16/16 + 48/16/16 + 24/8/8 = 120 / 40 / 40 images on the real data. An image's
split depends only on the names of its own class, so it is the same on every machine.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.utils.file_io import PathManager

from .mask_annotations import polygon_instance
from .mask_records import binary_mask_record
from .paths import check_files_exist
from .seeded_split import assign_splits

__all__ = ["PH2_THING_CLASSES", "PH2_STUFF_CLASSES", "PH2_SPLITS", "PH2_SPLIT_FILE", "read_ph2_diagnoses",
           "ph2_split_assignment", "load_ph2", "register_all_ph2"]

logger = logging.getLogger(__name__)

#: contiguous class id = clinical diagnosis code of PH2_dataset.txt
PH2_THING_CLASSES = ("common nevus", "atypical nevus", "melanoma")
PH2_STUFF_CLASSES = ("background", "lesion")
PH2_SPLITS = ("train", "val", "test")
PH2_SPLIT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits", "ph2_split.json")
_TXT = "PH2_dataset.txt"
_IMAGES = "PH2 Dataset images"
_NAME = re.compile(r"IMD\d+")
_COLUMNS = ("name", "histological diagnosis", "clinical diagnosis", "dermoscopic criteria", "colours")
_UNPACK_HINT = ("Unpack PH2Dataset.rar into $SEG_DATASETS (default ./datasets) so that "
                "$SEG_DATASETS/PH2Dataset/PH2_dataset.txt and '$SEG_DATASETS/PH2Dataset/PH2 Dataset images/' exist "
                "(see datasets/README.md).")


def _malformed(txt_file: str, lineno: int, line: str, problem: str) -> DataError:
    return DataError(
        f"Malformed row in {_TXT} at line {lineno}: {problem}: {line.strip()!r}. Expected "
        f"'|| IMDxxx || <histological diagnosis> || <clinical diagnosis> || <dermoscopic criteria> || <colours> ||' "
        f"with clinical diagnosis 0 (common nevus), 1 (atypical nevus) or 2 (melanoma). Restore the file from "
        f"PH2Dataset.rar.",
        file_name=txt_file, record=f"line {lineno}")


def _table_rows(lines: List[str], txt_file: str) -> List[Tuple[int, str, str, str]]:
    """``(line number, line, name, clinical diagnosis)`` of each data row, in either layout of the table:

    - the release's ``||``-separated table (module doc);
    - a tab-separated re-export whose header names the columns, ``Name`` and ``Clinical Diagnosis``
      among them (e.g. ``Name<TAB>Clinical Diagnosis<TAB>Asymmetry``, as in public GitHub copies of
      PH2); its data rows are the lines whose first field is an image name.
    """
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip().startswith("||") or "IMD" not in line:
            continue
        fields = [field.strip() for field in line.strip().split("||")][1:]
        if fields and not fields[-1]:
            fields.pop()  # after the closing "||"
        if len(fields) != len(_COLUMNS):
            raise _malformed(txt_file, lineno, line, f"{len(fields)} '||'-separated fields instead of "
                                                     f"{len(_COLUMNS)} ({', '.join(_COLUMNS)})")
        rows.append((lineno, line, fields[0], fields[2]))
    if rows:
        return rows
    header = next(((k, [f.strip().lower() for f in line.split("\t")]) for k, line in enumerate(lines)
                   if "\t" in line and {"name", "clinical diagnosis"} <= {f.strip().lower() for f in line.split("\t")}),
                  None)
    if header is None:
        return []
    start, columns = header
    name_col, diagnosis_col = columns.index("name"), columns.index("clinical diagnosis")
    for lineno, line in enumerate(lines[start + 1:], start=start + 2):
        fields = [f.strip() for f in line.split("\t")]
        if not fields[0].startswith("IMD"):
            continue  # blank lines and the legend below the table
        if len(fields) <= max(name_col, diagnosis_col):
            raise _malformed(txt_file, lineno, line, f"{len(fields)} tab-separated fields, fewer than the "
                                                     f"header's {len(columns)}")
        rows.append((lineno, line, fields[name_col], fields[diagnosis_col]))
    return rows


def read_ph2_diagnoses(txt_file: str) -> Dict[str, int]:
    """Parse ``PH2_dataset.txt``: the release's ``||`` table (column layout in the module doc) or a
    tab-separated re-export with ``Name`` and ``Clinical Diagnosis`` columns.

    Returns:
        ``{image name: clinical diagnosis}`` (0 common nevus, 1 atypical nevus, 2 melanoma),
        in the order of the file. Header, separator and legend lines are skipped.

    Raises:
        DataError: naming the file (and the line) when it is missing, a data row is
            malformed (not 5 fields, a name that is not ``IMD<digits>``, a diagnosis
            other than 0/1/2), a name repeats, or there is no data row.
    """
    if not PathManager.isfile(txt_file):
        raise DataError(f"PH2 table of diagnoses not found. {_UNPACK_HINT}", file_name=txt_file)
    with PathManager.open(txt_file, "r", encoding="utf-8-sig", errors="replace") as f:
        lines = f.read().splitlines()
    diagnoses: Dict[str, int] = {}
    for lineno, line, name, diagnosis in _table_rows(lines, txt_file):
        if not _NAME.fullmatch(name):
            raise _malformed(txt_file, lineno, line, f"the first field {name!r} is not an image name IMD<digits>")
        if diagnosis not in ("0", "1", "2"):
            raise _malformed(txt_file, lineno, line, f"clinical diagnosis {diagnosis!r} is not 0, 1 or 2")
        if name in diagnoses:
            raise DataError(f"Image {name} is listed twice in {_TXT} (again at line {lineno}). Restore the file "
                            f"from PH2Dataset.rar.", file_name=txt_file, record=f"line {lineno}")
        diagnoses[name] = int(diagnosis)
    if not diagnoses:
        raise DataError(f"{_TXT} has no data row ('|| IMDxxx || ... ||', or a tab-separated table with Name and "
                        f"Clinical Diagnosis columns). {_UNPACK_HINT}", file_name=txt_file)
    return diagnoses


def ph2_split_assignment(diagnoses: Mapping[str, int], split_file: str = PH2_SPLIT_FILE) -> Dict[str, str]:
    """``{image name: "train" | "val" | "test"}``: the shipped class-stratified split (module doc).

    Args:
        diagnoses: ``{image name: clinical diagnosis}`` (:func:`read_ph2_diagnoses`).
        split_file: JSON with ``seed`` and ``fractions`` (``{"train": .., "val": .., "test": ..}``).
    """
    with PathManager.open(split_file, "r", encoding="utf-8") as f:
        params = json.load(f)
    assignment: Dict[str, str] = {}
    for diagnosis in sorted(set(diagnoses.values())):
        names = [name for name, d in diagnoses.items() if d == diagnosis]
        assignment.update(assign_splits(names, params["fractions"], params["seed"]))
    return assignment


def load_ph2(root: str, split: Optional[str] = None, *, with_instances: bool = True,
             with_sem_seg: bool = True) -> List[Dict[str, Any]]:
    """Dataset dicts of PH2, sorted by image name.

    Args:
        root: the ``PH2Dataset`` folder (module doc).
        split: ``"train"``, ``"val"``, ``"test"`` (:func:`ph2_split_assignment`) or None for all 200.
        with_instances: add ``annotations``: one lesion instance, ``category_id`` = clinical
            diagnosis (0..2), ``segmentation`` = polygons of the mask's outer contours,
            ``bbox`` = tight XYWH box of the mask (``bbox_mode`` XYWH_ABS), ``iscrowd`` 0.
        with_sem_seg: add ``sem_seg_file_name`` (the lesion BMP) and ``sem_seg_binary: True``
            (labels 0 background, 1 lesion).

    Returns:
        dicts ``{file_name, height, width, image_id (e.g. "IMD003"), ...}`` of the images
        listed in ``PH2_dataset.txt``; ``height``/``width`` from the image header.

    Raises:
        ValueError: an unknown ``split``.
        DataError: a missing or malformed ``PH2_dataset.txt``, listed images or lesion masks
            absent on disk (all named), or a mask whose size differs from its image.
    """
    if split is not None and split not in PH2_SPLITS:
        raise ValueError(f"load_ph2: split must be one of {PH2_SPLITS} or None, got {split!r}.")
    txt_file = os.path.join(root, _TXT)
    diagnoses = read_ph2_diagnoses(txt_file)
    names = sorted(diagnoses)
    if split is not None:
        assignment = ph2_split_assignment(diagnoses)
        names = [name for name in names if assignment[name] == split]
    images = {n: os.path.join(root, _IMAGES, n, f"{n}_Dermoscopic_Image", f"{n}.bmp") for n in names}
    masks = {n: os.path.join(root, _IMAGES, n, f"{n}_lesion", f"{n}_lesion.bmp") for n in names}
    check_files_exist(list(images.values()), f"PH2 images listed in {_TXT}",
                      f"Each listed image needs '{_IMAGES}/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp'. {_UNPACK_HINT}",
                      source=txt_file)
    check_files_exist(list(masks.values()), "PH2 lesion masks",
                      f"Each image needs '{_IMAGES}/IMDxxx/IMDxxx_lesion/IMDxxx_lesion.bmp'. {_UNPACK_HINT}",
                      source=txt_file)
    records = [
        binary_mask_record(images[n], masks[n], n, with_sem_seg=with_sem_seg,
                           annotate=functools.partial(polygon_instance, category_id=diagnoses[n])
                           if with_instances else None)
        for n in names
    ]
    logger.info(f"Loaded {len(records)} PH2 images (split {split or 'all'}) from {root}")
    return records


def register_all_ph2(datasets_root: str) -> None:
    """Register ``ph2_{train,val,test}`` (instances, ``evaluator_type="coco"``) and
    ``ph2_{train,val,test}_sem_seg`` (background/lesion, ``evaluator_type="sem_seg"``) with
    their files under ``datasets_root/PH2Dataset``. Nothing is read until a dataset is requested.
    """
    root = os.path.join(datasets_root, "PH2Dataset")
    image_root = os.path.join(root, _IMAGES)
    for split in PH2_SPLITS:
        name = f"ph2_{split}"
        DatasetCatalog.register(name, functools.partial(load_ph2, root, split, with_sem_seg=False))
        MetadataCatalog.get(name).set(thing_classes=list(PH2_THING_CLASSES), evaluator_type="coco",
                                      image_root=image_root)
        DatasetCatalog.register(f"{name}_sem_seg", functools.partial(load_ph2, root, split, with_instances=False))
        MetadataCatalog.get(f"{name}_sem_seg").set(stuff_classes=list(PH2_STUFF_CLASSES), ignore_label=255,
                                                   evaluator_type="sem_seg", image_root=image_root)
