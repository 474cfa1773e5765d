"""Cityscapes fine panoptic ground truth, as made by cityscapesscripts' ``createPanopticImgs``.

cityscapesscripts (an install requirement) turns the released ``gtFine/<split>/*/*_instanceIds.png``
into COCO-panoptic files next to them::

    python -m cityscapesscripts.preparation.createPanopticImgs \
        --dataset-folder $SEG_DATASETS/cityscapes/gtFine --output-folder $SEG_DATASETS/cityscapes/gtFine \
        --set-names train val

    cityscapes/gtFine/cityscapes_panoptic_{train,val}.json     images (id <city>_<seq>_<frame>, file_name
                                                               <id>_gtFine_leftImg8bit.png), annotations, categories
    cityscapes/gtFine/cityscapes_panoptic_{train,val}/<id>_gtFine_panoptic.png   segment id R + 256 G + 256² B

The json's categories are the 19 scored classes with their label ids (7..33) and ``isthing``;
the metadata follows the library's **standard** panoptic convention
(:func:`~.coco_panoptic.panoptic_metadata`: ``thing_classes`` the 8 things, ``stuff_classes``
all 19 with the things first), built from cityscapesscripts' label table so it exists before the
json is read. Images are ``leftImg8bit/<split>/<city>/<id>_leftImg8bit.png`` (the city is the id's
first field); the json's image ``file_name`` is not used (createPanopticImgs writes
``<id>_gtFine_leftImg8bit.png`` there).

Registered (:func:`register_all_cityscapes_panoptic`): detectron2's ``cityscapes_fine_panoptic_{train,val}``,
``evaluator_type="cityscapes_panoptic_seg"``, ``ignore_label=255``, ``label_divisor=1000``.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Dict, List, Mapping

from cityscapesscripts.helpers.labels import labels

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.data.record_checks import check_segments_info

from ...utils.absent import absent_names
from .cityscapes import CITYSCAPES_HINT
from .coco import check_coco_images, read_json
from .coco_panoptic import convert_segment, panoptic_annotations, panoptic_metadata
from .paths import check_dirs_exist, check_files_exist, resolve_under_root

__all__ = ["CITYSCAPES_PANOPTIC_CATEGORIES", "load_cityscapes_panoptic", "register_all_cityscapes_panoptic"]

logger = logging.getLogger(__name__)

#: the categories createPanopticImgs writes (label ids, scored classes only)
CITYSCAPES_PANOPTIC_CATEGORIES = tuple(
    {"id": label.id, "name": label.name, "color": list(label.color), "isthing": int(label.hasInstances)}
    for label in labels if not label.ignoreInEval
)
_PREPARE = ("Make them with cityscapesscripts: python -m cityscapesscripts.preparation.createPanopticImgs "
            "--dataset-folder $SEG_DATASETS/cityscapes/gtFine --output-folder $SEG_DATASETS/cityscapes/gtFine "
            "(see datasets/README.md).")


def load_cityscapes_panoptic(image_dir: str, panoptic_root: str, panoptic_json: str,
                             meta: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Panoptic dataset dicts of a Cityscapes split (module doc).

    Args:
        image_dir: ``leftImg8bit/<split>``.
        panoptic_root, panoptic_json: ``gtFine/cityscapes_panoptic_<split>`` and its json.
        meta: ``thing_dataset_id_to_contiguous_id``, ``stuff_dataset_id_to_contiguous_id``.

    Returns:
        dicts ``{file_name, image_id, height, width, pan_seg_file_name, segments_info: [{id,
        category_id (contiguous), iscrowd, isthing, area, bbox (XYWH)}]}``, sorted by id.

    Raises:
        DataError: missing folders or json (with the command that makes them), a malformed
            json, an unknown category, or images / PNGs missing on disk (named).
    """
    check_dirs_exist([image_dir, panoptic_root], "Cityscapes panoptic", f"{CITYSCAPES_HINT} {_PREPARE}")
    if not os.path.isfile(panoptic_json):
        raise DataError(f"Cityscapes panoptic json not found. {_PREPARE}", file_name=panoptic_json)
    data = read_json(panoptic_json)
    images = check_coco_images(data, panoptic_json)
    anns = panoptic_annotations(data, panoptic_json)
    unmatched = sorted(images.keys() ^ anns.keys(), key=str)
    if unmatched:
        raise DataError(f"{len(unmatched)} image id(s) appear in only one of 'images' and 'annotations', e.g. "
                        f"{unmatched[:5]}. {_PREPARE}", file_name=panoptic_json)
    records = []
    for image_id in sorted(images, key=str):
        image, ann = images[image_id], anns[image_id]
        city = str(image_id).split("_")[0]
        segments_info = [convert_segment(s, meta, panoptic_json, image_id) for s in ann["segments_info"]]
        check_segments_info(segments_info, file_name=panoptic_json, record=image_id)
        records.append({
            "file_name": resolve_under_root(image_dir, os.path.join(city, f"{image_id}_leftImg8bit.png"),
                                            record=image_id),
            "image_id": image_id, "height": image["height"], "width": image["width"],
            "pan_seg_file_name": resolve_under_root(panoptic_root, ann["file_name"], record=image_id),
            "segments_info": segments_info,
        })
    check_files_exist([r["file_name"] for r in records] + [r["pan_seg_file_name"] for r in records],
                      "Cityscapes images and panoptic PNGs listed in the json",
                      f"Images are leftImg8bit/<split>/<city>/<id>_leftImg8bit.png, PNGs under '{panoptic_root}'. {_PREPARE}",
                      source=panoptic_json)
    logger.info(f"Loaded {len(records)} Cityscapes panoptic images from {panoptic_json}")
    return records


def register_all_cityscapes_panoptic(datasets_root: str) -> None:
    """Register ``cityscapes_fine_panoptic_{train,val}`` (module doc) with files under
    ``datasets_root/cityscapes``; nothing is read until a dataset is requested."""
    root = os.path.join(datasets_root, "cityscapes")
    meta = panoptic_metadata(CITYSCAPES_PANOPTIC_CATEGORIES)
    for split in ("train", "val"):
        name = f"cityscapes_fine_panoptic_{split}"
        image_dir = os.path.join(root, "leftImg8bit", split)
        gt_dir = os.path.join(root, "gtFine", split)
        panoptic_root = os.path.join(root, "gtFine", f"cityscapes_panoptic_{split}")
        panoptic_json = os.path.join(root, "gtFine", f"cityscapes_panoptic_{split}.json")
        DatasetCatalog.register(name, functools.partial(load_cityscapes_panoptic, image_dir, panoptic_root,
                                                        panoptic_json, meta))
        MetadataCatalog.get(name).set(
            image_dir=image_dir, image_root=image_dir, gt_dir=gt_dir, panoptic_root=panoptic_root,
            panoptic_json=panoptic_json, evaluator_type="cityscapes_panoptic_seg", ignore_label=255,
            label_divisor=1000, **meta)


__getattr__ = absent_names(__name__, {
    "get_cityscapes_panoptic_files": "not provided; load_cityscapes_panoptic(image_dir, panoptic_root, "
                                     "panoptic_json, metadata) returns the records with their file names.",
})
