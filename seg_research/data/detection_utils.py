"""Turn dataset dicts into model inputs (detectron2's ``detection_utils``): read images, check
sizes, transform annotations, build ``Instances``, and build the augmentation list from the config.

The readers live in :mod:`.image_io`, the annotation-to-``Instances`` steps in :mod:`.annotations`;
this module keeps every name importable from here and holds :func:`build_augmentation`.
"""
from __future__ import annotations

from typing import List, Union

import numpy as np
import torch

from ..utils.absent import KEYPOINTS, ROTATED, absent_names
from . import transforms as T
from .annotations import annotations_to_instances, filter_empty_instances, transform_instance_annotations
from .errors import DataError
from .image_io import (
    check_image_size,
    read_image,
    read_image_size,
    read_panoptic_ids,
    read_record_sem_seg,
    read_sem_seg,
    write_panoptic_ids,
)

__all__ = [
    "read_image",
    "read_image_size",
    "read_sem_seg",
    "read_record_sem_seg",
    "read_panoptic_ids",
    "write_panoptic_ids",
    "check_image_size",
    "transform_instance_annotations",
    "annotations_to_instances",
    "filter_empty_instances",
    "build_augmentation",
    "build_transform_gen",
    "convert_image_to_rgb",
    "SizeMismatchError",
]


def build_augmentation(cfg, is_train: bool) -> List[T.Augmentation]:
    """The default augmentations from ``cfg.INPUT``.

    Train: [RandomCrop (if CROP.ENABLED)], ResizeShortestEdge(MIN_SIZE_TRAIN, MAX_SIZE_TRAIN,
    MIN_SIZE_TRAIN_SAMPLING), [RandomFlip (RANDOM_FLIP != "none")], [RandomBrightness,
    RandomContrast (when their range is not (1.0, 1.0))]. Test: ResizeShortestEdge(MIN_SIZE_TEST,
    MAX_SIZE_TEST), or nothing when MIN_SIZE_TEST is 0.
    """
    inp = cfg.INPUT
    if not is_train:
        return [T.ResizeShortestEdge(inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST, "choice")] if inp.MIN_SIZE_TEST > 0 else []
    if inp.RANDOM_FLIP not in ("horizontal", "vertical", "none"):
        raise ValueError(f"INPUT.RANDOM_FLIP must be 'horizontal', 'vertical' or 'none', got {inp.RANDOM_FLIP!r}.")
    augs: List[T.Augmentation] = []
    if inp.CROP.ENABLED:
        augs.append(T.RandomCrop(inp.CROP.TYPE, inp.CROP.SIZE))
    augs.append(T.ResizeShortestEdge(inp.MIN_SIZE_TRAIN, inp.MAX_SIZE_TRAIN, inp.MIN_SIZE_TRAIN_SAMPLING))
    if inp.RANDOM_FLIP != "none":
        augs.append(T.RandomFlip(horizontal=inp.RANDOM_FLIP == "horizontal", vertical=inp.RANDOM_FLIP == "vertical"))
    if tuple(inp.BRIGHTNESS) != (1.0, 1.0):
        augs.append(T.RandomBrightness(*inp.BRIGHTNESS))
    if tuple(inp.CONTRAST) != (1.0, 1.0):
        augs.append(T.RandomContrast(*inp.CONTRAST))
    return augs


#: detectron2's older name of :func:`build_augmentation`.
build_transform_gen = build_augmentation
#: what :func:`check_image_size` raises when a record's height/width are not its image's (a ValueError)
SizeMismatchError = DataError


def convert_image_to_rgb(image: Union[np.ndarray, torch.Tensor], format: str) -> np.ndarray:
    """An (H, W, 3) uint8-range RGB array of ``image`` given in ``format``: ``"RGB"``, ``"BGR"``
    ((H, W, 3) arrays or tensors) or ``"L"`` ((H, W) or (H, W, 1) gray, repeated into 3 channels).

    Raises:
        ValueError: another format (e.g. detectron2's ``"YUV-BT.601"``) or a shape that does not fit it.
    """
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if format == "L":
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim != 2:
            raise ValueError(f"convert_image_to_rgb: a format 'L' image is (H, W) or (H, W, 1), got {array.shape}.")
        return np.repeat(array[:, :, None], 3, axis=2)
    if format not in ("RGB", "BGR"):
        raise ValueError(f"convert_image_to_rgb: format '{format}' is not supported; use 'RGB', 'BGR' or 'L' "
                         "(INPUT.FORMAT).")
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"convert_image_to_rgb: a format '{format}' image is (H, W, 3), got {array.shape}.")
    return array[:, :, ::-1] if format == "BGR" else array


__getattr__ = absent_names(__name__, {
    "transform_proposals": "precomputed proposals are not supported (no MODEL.LOAD_PROPOSALS); the RPN computes "
                           "proposals.",
    "annotations_to_instances_rotated": ROTATED,
    "create_keypoint_hflip_indices": KEYPOINTS,
})
