"""PASCAL VOC detection (2007, 2012) in the VOCdevkit layout, as detectron2 registers it.

Layout of one year (``VOCdevkit/VOC2007`` as unpacked from the official tarballs, or
``VOC2007`` directly under the datasets root as in detectron2's README)::

    Annotations/<id>.xml          one per image: <size>, <object>s with <name>, <difficult>, <bndbox>
    ImageSets/Main/<split>.txt    image ids of a split (train, val, trainval, test), one a line
    JPEGImages/<id>.jpg

Records: ``file_name, image_id`` (the VOC id, a string), ``height, width`` (from the XML) and
``annotations`` with ``bbox`` XYXY_ABS and contiguous ``category_id`` (index in
``class_names``). VOC boxes are 1-based inclusive pixel indices; a box ``xmin=1 .. xmax=W``
covers the whole image, so it is loaded as ``[xmin - 1, ymin - 1, xmax, ymax]`` (detectron2's
convention). "difficult" objects are loaded like the others, as detectron2 does for training;
:class:`~seg_research.evaluation.PascalVOCDetectionEvaluator` reads the XML again and ignores
them when scoring.
"""
from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Sequence

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.structures import BoxMode
from seg_research.utils.file_io import PathManager

from .paths import check_files_exist

__all__ = ["CLASS_NAMES", "read_voc_xml", "read_voc_image_set", "load_voc_instances", "register_pascal_voc",
           "register_all_pascal_voc"]

CLASS_NAMES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

_HINT = ("Lay out the VOC year folder as VOCdevkit/VOC<year>/{Annotations,ImageSets/Main,JPEGImages} "
         "(datasets/README.md).")


def _text(node: ET.Element, path: str, file_name: str) -> str:
    found = node.find(path)
    if found is None or found.text is None:
        raise DataError(f"PASCAL VOC annotation has no <{path}>; it is not a VOC annotation file.", file_name=file_name)
    return found.text.strip()


def read_voc_xml(file_name: str) -> Dict[str, Any]:
    """One VOC annotation file.

    Returns:
        ``{"height", "width", "objects": [{"name", "difficult" (bool), "bbox"}]}`` where
        ``bbox`` is the file's ``[xmin, ymin, xmax, ymax]`` as floats (1-based, inclusive).

    Raises:
        DataError: naming the file for unreadable XML or missing fields.
    """
    try:
        with PathManager.open(file_name, "rb") as f:
            root = ET.parse(f).getroot()
    except (OSError, ET.ParseError) as e:
        raise DataError(f"Cannot read PASCAL VOC annotation: {e}. {_HINT}", file_name=file_name) from e
    objects = []
    for obj in root.findall("object"):
        difficult = obj.find("difficult")
        bbox = [float(_text(obj, f"bndbox/{k}", file_name)) for k in ("xmin", "ymin", "xmax", "ymax")]
        objects.append({"name": _text(obj, "name", file_name), "bbox": bbox,
                        "difficult": difficult is not None and (difficult.text or "0").strip() == "1"})
    return {"height": int(_text(root, "size/height", file_name)), "width": int(_text(root, "size/width", file_name)),
            "objects": objects}


def read_voc_image_set(dirname: str, split: str) -> List[str]:
    """The image ids listed in ``dirname/ImageSets/Main/<split>.txt`` (blank lines skipped)."""
    path = os.path.join(dirname, "ImageSets", "Main", split + ".txt")
    check_files_exist([path], f"PASCAL VOC '{split}' image set files", _HINT)
    with PathManager.open(path, "r") as f:
        return [line.split()[0] for line in f if line.strip()]


def load_voc_instances(dirname: str, split: str, class_names: Sequence[str] = CLASS_NAMES) -> List[Dict[str, Any]]:
    """Dataset dicts of the images of ``split`` (see the module docstring).

    Args:
        dirname: the year folder, holding ``Annotations``, ``ImageSets``, ``JPEGImages``.
        split: an image set of ``ImageSets/Main`` ("train", "val", "trainval", "test").
        class_names: names in the order of the contiguous ids.

    Raises:
        DataError: naming the file for missing files, malformed XML or an object whose class
            is not in ``class_names``.
    """
    ids = read_voc_image_set(dirname, split)
    xml_files = [os.path.join(dirname, "Annotations", i + ".xml") for i in ids]
    check_files_exist(xml_files, f"PASCAL VOC annotation files of '{split}'", _HINT)
    index = {name: k for k, name in enumerate(class_names)}
    records = []
    for image_id, xml_file in zip(ids, xml_files, strict=True):
        parsed = read_voc_xml(xml_file)
        annotations = []
        for obj in parsed["objects"]:
            if obj["name"] not in index:
                raise DataError(f"Object class '{obj['name']}' is not one of the {len(class_names)} class_names "
                                f"given ({', '.join(class_names[:5])}, ...); pass the dataset's class_names.",
                                file_name=xml_file)
            x0, y0, x1, y1 = obj["bbox"]
            annotations.append({"bbox": [x0 - 1.0, y0 - 1.0, x1, y1], "bbox_mode": BoxMode.XYXY_ABS,
                                "category_id": index[obj["name"]]})
        records.append({"file_name": os.path.join(dirname, "JPEGImages", image_id + ".jpg"), "image_id": image_id,
                        "height": parsed["height"], "width": parsed["width"], "annotations": annotations})
    return records


def register_pascal_voc(name: str, dirname: str, split: str, year: int,
                        class_names: Sequence[str] = CLASS_NAMES) -> None:
    """Register ``name`` as the VOC ``split`` of ``dirname`` (loaded lazily), with metadata
    ``thing_classes, dirname, year, split`` and ``evaluator_type="pascal_voc"``."""
    DatasetCatalog.register(name, functools.partial(load_voc_instances, dirname, split, tuple(class_names)))
    MetadataCatalog.get(name).set(thing_classes=list(class_names), dirname=dirname, year=year, split=split,
                                  evaluator_type="pascal_voc")


_SPLITS = (
    ("voc_2007_trainval", "VOC2007", "trainval"), ("voc_2007_train", "VOC2007", "train"),
    ("voc_2007_val", "VOC2007", "val"), ("voc_2007_test", "VOC2007", "test"),
    ("voc_2012_trainval", "VOC2012", "trainval"), ("voc_2012_train", "VOC2012", "train"),
    ("voc_2012_val", "VOC2012", "val"),
)


def register_all_pascal_voc(root: str) -> None:
    """detectron2's builtin VOC names (``voc_2007_{trainval,train,val,test}``,
    ``voc_2012_{trainval,train,val}``) under ``root/VOC<year>``, or ``root/VOCdevkit/VOC<year>``
    when only the tarball layout exists."""
    for name, folder, split in _SPLITS:
        dirname = os.path.join(root, folder)
        if not os.path.isdir(dirname) and os.path.isdir(os.path.join(root, "VOCdevkit", folder)):
            dirname = os.path.join(root, "VOCdevkit", folder)
        register_pascal_voc(name, dirname, split, 2007 if "2007" in name else 2012)
