"""What Mask2Former's five dataset mappers share: reading and checking a record, padding to a fixed size,
and per-segment binary targets."""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Sequence, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from seg_research.data import detection_utils as utils
from seg_research.data.errors import DataError
from seg_research.data.record_checks import check_dataset_dict
from seg_research.structures import Instances

__all__ = ["map_checked", "read_checked_image", "pad_to_size", "mask_instances", "image_tensor"]


def map_checked(mapper: Callable[[Dict[str, Any]], Dict[str, Any]], dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
    """``mapper`` on a checked deep copy of ``dataset_dict`` (which is not modified); a
    :class:`DataError` raised inside names the record's file and ``image_id``."""
    check_dataset_dict(dataset_dict)
    try:
        return mapper(copy.deepcopy(dataset_dict))
    except DataError as e:
        raise e.with_location(dataset_dict["file_name"], dataset_dict.get("image_id")) from e


def read_checked_image(dataset_dict: Dict[str, Any], image_format: str) -> np.ndarray:
    """The record's image, (H, W, C) uint8 in ``image_format``, checked against its height/width."""
    image = utils.read_image(dataset_dict["file_name"], format=image_format)
    utils.check_image_size(dataset_dict, image)
    return image


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) array -> (C, H, W) tensor of the same dtype."""
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))


def pad_to_size(size: int, image: torch.Tensor, fills: Sequence[Tuple[torch.Tensor, int]],
                file_name: str) -> Tuple[torch.Tensor, list]:
    """Pad the (C, H, W) image (with 128) and each (..., H, W) label tensor (with its fill value) at the
    bottom and right to ``size`` x ``size``: upstream's ``INPUT.SIZE_DIVISIBILITY`` of the MaskFormer
    mappers pads to that size (not to a multiple of it), after a crop of at most that size.

    Raises:
        ValueError: when the augmented image is larger than ``size``.
    """
    h, w = image.shape[-2:]
    if h > size or w > size:
        raise ValueError(
            f"INPUT.SIZE_DIVISIBILITY = {size}: the MaskFormer mappers pad every training image to {size}x{size}, "
            f"but '{file_name}' is {h}x{w} after augmentation. Crop to at most {size} (INPUT.CROP.SIZE) or set "
            f"INPUT.SIZE_DIVISIBILITY to -1."
        )
    padding = [0, size - w, 0, size - h]
    return F.pad(image, padding, value=128), [F.pad(t, padding, value=fill) for t, fill in fills]


def mask_instances(image_shape: Tuple[int, int], classes: Sequence[int], masks: Sequence[torch.Tensor]) -> Instances:
    """``Instances`` of the image with ``gt_classes`` (K,) int64 and ``gt_masks`` (K, H, W) bool."""
    instances = Instances(image_shape)
    instances.gt_classes = torch.tensor(list(classes), dtype=torch.int64)
    if masks:
        instances.gt_masks = torch.stack([m.to(torch.bool) for m in masks])
    else:
        instances.gt_masks = torch.zeros((0,) + tuple(image_shape), dtype=torch.bool)
    return instances
