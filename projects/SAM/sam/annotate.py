"""Box-only COCO annotations -> mask annotations, by prompting SAM with each box."""
from __future__ import annotations

import copy
import logging
import os
from collections import defaultdict
from typing import Any, Dict

import torch

from seg_research.data import DataError
from seg_research.data.datasets import read_json, resolve_under_root
from seg_research.data.detection_utils import read_image
from seg_research.structures import BoxMode, bitmask_to_rle
from seg_research.utils.file_io import atomic_write_json

from .predictor import SamInstancePredictor

__all__ = ["needs_mask", "annotate_coco_json"]

logger = logging.getLogger(__name__)


def needs_mask(annotation: Dict[str, Any]) -> bool:
    """An annotation gets a SAM mask when it has a box and no (or an empty) ``segmentation``."""
    return "bbox" in annotation and not annotation.get("segmentation")


def annotate_coco_json(input_json: str, image_root: str, output_json: str, predictor: SamInstancePredictor,
                       replace_existing: bool = False) -> Dict[str, int]:
    """Write ``output_json``: ``input_json`` with a SAM mask for each box-only annotation.

    Each such annotation gets ``segmentation`` (compressed RLE, str counts) and ``area`` (its
    pixels) from SAM prompted with its ``bbox`` (XYWH absolute, COCO's); every other key, and
    every other annotation, image and category, is copied unchanged. ``input_json`` is only read.

    Args:
        input_json: COCO instances json (``images``, ``annotations`` with ``bbox``).
        image_root: folder the images' ``file_name`` are relative to.
        output_json: the new json, written atomically; must not be ``input_json``.
        predictor: the SAM to prompt.
        replace_existing: also replace masks that annotations already have.

    Returns:
        ``{"images": images prompted, "masks": annotations given a mask, "kept": annotations left as they were}``.

    Raises:
        ValueError: ``output_json`` is ``input_json``.
        DataError: the json or an image is missing or malformed (named).
    """
    if os.path.realpath(output_json) == os.path.realpath(input_json):
        raise ValueError(f"sam_annotate writes a new json and leaves the input untouched: the output '{output_json}' "
                         f"is the input. Choose another output path.")
    data = copy.deepcopy(read_json(input_json))
    images = {image["id"]: image for image in data.get("images", [])}
    todo = defaultdict(list)
    for annotation in data.get("annotations", []):
        if needs_mask(annotation) or (replace_existing and "bbox" in annotation):
            todo[annotation["image_id"]].append(annotation)
    for image_id, image_annotations in todo.items():
        if image_id not in images:
            raise DataError(f"An annotation has image_id {image_id!r}, which is not in 'images'. Fix the json.",
                            file_name=input_json, record=image_id)
        image = images[image_id]
        rgb = read_image(resolve_under_root(image_root, image["file_name"], record=image_id), format="RGB")
        boxes = BoxMode.convert(torch.tensor([a["bbox"] for a in image_annotations], dtype=torch.float32),
                                BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
        masks = predictor(rgb, boxes=boxes).pred_masks
        for annotation, mask in zip(image_annotations, masks, strict=True):
            annotation["segmentation"] = bitmask_to_rle(mask)
            annotation["area"] = int(mask.sum())
    stats = {"images": len(todo), "masks": sum(map(len, todo.values()))}
    stats["kept"] = len(data.get("annotations", [])) - stats["masks"]
    atomic_write_json(output_json, data)
    logger.info(f"sam_annotate: {stats['masks']} masks on {stats['images']} images -> {output_json}")
    return stats
