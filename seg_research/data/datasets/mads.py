r"""MADS full-body person segmentation (Kaggle "Segmentation Full Body MADS Dataset", 1192 frames).

Layout (the Kaggle zip unpacked into ``root``; ``$SEG_DATASETS/MADS`` for the builtins)::

    MADS/
      df.csv                                                 optional, pairs images and masks
      segmentation_full_body_mads_dataset_1192_img/
        segmentation_full_body_mads_dataset_1192_img/        this second level is often there
          images/HipHop_HipHop1_C0_00180.png                 RGB frame
          masks/HipHop_HipHop1_C0_00180.png                  person mask 0/255 (some stored RGB)
          collages/...                                       previews (not used)

The data folder (the one holding ``images/`` and ``masks/``) is searched for at depth 0
to 3 below ``root`` (hidden folders and ``__MACOSX`` skipped). ``df.csv`` (columns ``,images,masks,collages``) is looked for in the
data folder, then in its parents up to ``root``; when found it is the list of frames, and
its ``images``/``masks`` entries are matched by file name inside ``images/`` and
``masks/`` (so it works whatever folder its paths are relative to). Without it, every
image of ``images/`` pairs with the mask of the same file name in ``masks/``.

Frame names are ``{Activity}_{Sequence}_C{camera}_{frame}``, parsed with
:data:`MADS_NAME_PATTERN` ``^(?P<sequence>(?P<activity>[^_]+)(?:_.+?)?)_C(?P<camera>\d+)_(?P<frame>\d+)$``:
the activity is the text before the first ``_``; ``_C<digits>_<digits>`` at the end is
the camera and frame; the sequence is everything before it (``HipHop_HipHop1``,
``Kata_Kata2``, ``Sports_Badminton``; ``Taichi_C0_00010`` has sequence ``Taichi``).
Digits in the activity or sequence are fine.

Splits are by sequence, never by frame, so no sequence (all its cameras and frames)
spans two splits: :func:`seg_research.data.datasets.seeded_split.assign_splits` over
the sequence names with :data:`MADS_SPLIT_FRACTIONS` (70 / 15 / 15 % of the sequences)
and :data:`MADS_SPLIT_SEED`.

Labels are ``mask > 0`` (any channel): semantic 0 background / 1 person; instances are
the 8-connected components of at least ``min_instance_area`` pixels, as exact RLE masks
(holes between limbs and body kept), so instance training needs ``INPUT.MASK_FORMAT
bitmask``.
"""
from __future__ import annotations

import csv
import functools
import io
import logging
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.utils.file_io import PathManager

from .mask_annotations import component_instances
from .mask_records import binary_mask_record
from .paths import check_files_exist
from .seeded_split import assign_splits

__all__ = ["MADS_NAME_PATTERN", "MADS_SPLITS", "MADS_SPLIT_FRACTIONS", "MADS_SPLIT_SEED", "MIN_INSTANCE_AREA",
           "MADS_THING_CLASSES", "MADS_STUFF_CLASSES", "MadsFrame", "parse_mads_name", "find_mads_folder",
           "mads_split_assignment", "load_mads", "register_all_mads"]

logger = logging.getLogger(__name__)

MADS_NAME_PATTERN = re.compile(r"^(?P<sequence>(?P<activity>[^_]+)(?:_.+?)?)_C(?P<camera>\d+)_(?P<frame>\d+)$")
MADS_SPLITS = ("train", "val", "test")
MADS_SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
MADS_SPLIT_SEED = 0
#: connected components of fewer pixels are specks, not persons
MIN_INSTANCE_AREA = 50
MADS_THING_CLASSES = ("person",)
MADS_STUFF_CLASSES = ("background", "person")
_CSV = "df.csv"
_MAX_DEPTH = 3
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
#: not searched for the data folder: macOS zip metadata, and the data folders' own content
_SKIPPED_FOLDERS = ("__MACOSX", "images", "masks", "collages")
_UNZIP_HINT = ("Unzip the Kaggle 'Segmentation Full Body MADS Dataset' archive into $SEG_DATASETS/MADS (default "
               "./datasets/MADS) so that segmentation_full_body_mads_dataset_1192_img/.../images/ and masks/ are "
               "inside it (see datasets/README.md).")


class MadsFrame(NamedTuple):
    """The parts of a MADS frame name (:data:`MADS_NAME_PATTERN`)."""

    sequence: str  # "{Activity}_{Sequence}", the unit of the split
    activity: str
    camera: int
    frame: int


def parse_mads_name(file_name: str) -> MadsFrame:
    """Parse ``[folder/]{Activity}_{Sequence}_C{camera}_{frame}.{ext}`` (module doc).

    Raises:
        DataError: naming the file when its name does not match :data:`MADS_NAME_PATTERN`.
    """
    stem = os.path.splitext(os.path.basename(file_name))[0]
    match = MADS_NAME_PATTERN.match(stem)
    if match is None:
        raise DataError(
            f"MADS frame name {stem!r} does not match '{{Activity}}_{{Sequence}}_C{{camera}}_{{frame}}' "
            f"(e.g. HipHop_HipHop1_C0_00180), so its sequence, which decides its split, is unknown. Restore the "
            f"original name from the Kaggle archive, or remove the file.",
            file_name=file_name)
    return MadsFrame(match["sequence"], match["activity"], int(match["camera"]), int(match["frame"]))


def _is_data_folder(folder: str) -> bool:
    return all(os.path.isdir(os.path.join(folder, sub)) for sub in ("images", "masks"))


def find_mads_folder(root: str) -> str:
    """The folder under ``root`` (depth 0 to 3, shallowest first) holding ``images/`` and ``masks/``.

    Raises:
        DataError: ``root`` is missing, no such folder exists, or several do at the same depth.
    """
    if not os.path.isdir(root):
        raise DataError(f"MADS root folder does not exist. {_UNZIP_HINT}", file_name=root)
    level = [root]
    for _ in range(_MAX_DEPTH + 1):
        found = [folder for folder in level if _is_data_folder(folder)]
        if len(found) > 1:
            raise DataError(f"Several MADS copies found under the root: {found}. Keep one of them.", file_name=root)
        if found:
            return found[0]
        level = [os.path.join(folder, entry) for folder in level for entry in sorted(os.listdir(folder))
                 if not entry.startswith(".") and entry not in _SKIPPED_FOLDERS
                 and os.path.isdir(os.path.join(folder, entry))]
    raise DataError(f"No folder with both 'images/' and 'masks/' found under the MADS root (searched {_MAX_DEPTH} "
                    f"levels deep). {_UNZIP_HINT}", file_name=root)


def _find_csv(folder: str, root: str) -> Optional[str]:
    """``df.csv`` in ``folder`` or its nearest parent up to ``root``, else None."""
    root, current = os.path.abspath(root), os.path.abspath(folder)
    while True:
        candidate = os.path.join(current, _CSV)
        if os.path.isfile(candidate):
            return candidate
        if current == root or current == os.path.dirname(current):
            return None
        current = os.path.dirname(current)


def _base_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1].strip()


def _pairs_from_csv(csv_file: str, folder: str) -> List[Tuple[str, str]]:
    """``(image, mask)`` paths listed in ``df.csv``, matched by file name in ``folder/images`` and ``folder/masks``."""
    with PathManager.open(csv_file, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{_CSV} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}). Restore it from "
                        f"the Kaggle archive, or delete it to pair images and masks by file name.",
                        file_name=csv_file) from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = reader.fieldnames or []
        if "images" not in columns or "masks" not in columns:
            raise DataError(f"{_CSV} must have the columns 'images' and 'masks' (as shipped: ',images,masks,"
                            f"collages'), got {columns}. Restore it from the Kaggle archive, or delete it to pair "
                            f"images and masks by file name.", file_name=csv_file)
        pairs = []
        for row in reader:
            if not (row.get("images") or "").strip() or not (row.get("masks") or "").strip():
                raise DataError(f"Row {reader.line_num} of {_CSV} has an empty 'images' or 'masks' entry: {row}. "
                                f"Restore the file from the Kaggle archive, or delete it to pair images and masks "
                                f"by file name.", file_name=csv_file, record=f"line {reader.line_num}")
            pairs.append((os.path.join(folder, "images", _base_name(row["images"])),
                          os.path.join(folder, "masks", _base_name(row["masks"]))))
    except csv.Error as e:
        raise DataError(f"{_CSV} is not a valid CSV file ({e}). Restore it from the Kaggle archive, or delete it to "
                        f"pair images and masks by file name.", file_name=csv_file,
                        record=f"line {reader.line_num}") from e
    check_files_exist([path for pair in pairs for path in pair], f"images and masks listed in {_CSV}",
                      f"Each entry must be a file of '{folder}/images' or '{folder}/masks'. Re-extract the "
                      f"archive, or delete {_CSV} to pair the files on disk by name.", source=csv_file)
    return pairs


def _image_files(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(_IMAGE_EXTENSIONS) and not f.startswith("."))


def _pairs_by_name(folder: str) -> List[Tuple[str, str]]:
    """``(image, mask)`` paths pairing ``folder/images/X`` with ``folder/masks/X``."""
    images, masks = _image_files(os.path.join(folder, "images")), _image_files(os.path.join(folder, "masks"))
    unpaired = sorted(set(images) ^ set(masks))
    if unpaired:
        listed = ", ".join(f"'{os.path.join(folder, 'images' if f in images else 'masks', f)}'" for f in unpaired[:5])
        raise DataError(
            f"{len(unpaired)} MADS file(s) have no partner of the same name ({len(images)} in images/, {len(masks)} "
            f"in masks/), e.g. {listed}. Every image needs the mask of the same file name; re-extract the archive "
            f"or remove the extra files.", file_name=folder)
    if not images:
        raise DataError(f"No image file in '{os.path.join(folder, 'images')}'. {_UNZIP_HINT}", file_name=folder)
    return [(os.path.join(folder, "images", f), os.path.join(folder, "masks", f)) for f in images]


def mads_split_assignment(sequences: Sequence[str]) -> Dict[str, str]:
    """``{sequence: "train" | "val" | "test"}``: each sequence in exactly one split (module doc)."""
    return assign_splits(sequences, MADS_SPLIT_FRACTIONS, MADS_SPLIT_SEED)


def load_mads(root: str, split: Optional[str] = None, *, with_instances: bool = True, with_sem_seg: bool = True,
              min_instance_area: int = MIN_INSTANCE_AREA) -> List[Dict[str, Any]]:
    """Dataset dicts of MADS, sorted by image file name.

    Args:
        root: where the Kaggle archive was unpacked (module doc).
        split: ``"train"``, ``"val"``, ``"test"`` (by sequence, :func:`mads_split_assignment`
            over all sequences of the dataset) or None for every frame.
        with_instances: add ``annotations``: one ``person`` (category_id 0) per 8-connected
            mask component of at least ``min_instance_area`` pixels, ``segmentation`` an exact
            RLE, ``bbox`` its tight XYWH box (``bbox_mode`` XYWH_ABS), ``iscrowd`` 0.
        with_sem_seg: add ``sem_seg_file_name`` (the mask) and ``sem_seg_binary: True``
            (labels 0 background, 1 person).

    Returns:
        dicts ``{file_name, height, width, image_id (file name without extension), ...}``;
        ``height``/``width`` from the image header.

    Raises:
        ValueError: an unknown ``split``.
        DataError: no data folder, an image without mask (or the reverse), an entry of
            ``df.csv`` absent on disk, a frame name without sequence (with ``split``), or a
            mask whose size differs from its image.
    """
    if split is not None and split not in MADS_SPLITS:
        raise ValueError(f"load_mads: split must be one of {MADS_SPLITS} or None, got {split!r}.")
    folder = find_mads_folder(root)
    csv_file = _find_csv(folder, root)
    pairs = sorted(_pairs_from_csv(csv_file, folder) if csv_file else _pairs_by_name(folder))
    if split is not None:
        sequences = {image: parse_mads_name(image).sequence for image, _ in pairs}
        assignment = mads_split_assignment(sorted(set(sequences.values())))
        pairs = [(image, mask) for image, mask in pairs if assignment[sequences[image]] == split]
    annotate = functools.partial(component_instances, category_id=0, min_area=min_instance_area)
    records = [
        binary_mask_record(image, mask, os.path.splitext(os.path.basename(image))[0], with_sem_seg=with_sem_seg,
                           annotate=annotate if with_instances else None)
        for image, mask in pairs
    ]
    logger.info(f"Loaded {len(records)} MADS frames (split {split or 'all'}) from {folder}"
                f"{f', listed in {csv_file}' if csv_file else ''}")
    return records


def register_all_mads(datasets_root: str) -> None:
    """Register ``mads_{train,val,test}`` (instances, ``evaluator_type="coco"``) and
    ``mads_{train,val,test}_sem_seg`` (background/person, ``evaluator_type="sem_seg"``) with
    their files under ``datasets_root/MADS``. Nothing is read until a dataset is requested.
    """
    root = os.path.join(datasets_root, "MADS")
    for split in MADS_SPLITS:
        name = f"mads_{split}"
        DatasetCatalog.register(name, functools.partial(load_mads, root, split, with_sem_seg=False))
        MetadataCatalog.get(name).set(thing_classes=list(MADS_THING_CLASSES), evaluator_type="coco")
        DatasetCatalog.register(f"{name}_sem_seg", functools.partial(load_mads, root, split, with_instances=False))
        MetadataCatalog.get(f"{name}_sem_seg").set(stuff_classes=list(MADS_STUFF_CLASSES), ignore_label=255,
                                                   evaluator_type="sem_seg")
