"""Dataset dicts for datasets that ship one binary foreground mask per image (PH2, MADS).

A record points ``sem_seg_file_name`` at the original mask file and sets
``sem_seg_binary: True``, so that the DatasetMapper and the SemSegEvaluator both read it
with :func:`seg_research.data.detection_utils.read_record_sem_seg` as labels
``0 = background, 1 = foreground`` (``mask > 0``), whatever the file's bit depth; no
converted copy of the masks is needed. Instance annotations are derived from the same
reading of the mask.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np

from seg_research.data.detection_utils import read_image_size, read_sem_seg
from seg_research.data.errors import DataError

__all__ = ["binary_mask_record"]

#: mask (H x W uint8 0/1) -> instance annotations of the image
Annotate = Callable[[np.ndarray], List[Dict[str, Any]]]


def binary_mask_record(file_name: str, mask_file: str, image_id: str, *, with_sem_seg: bool,
                       annotate: Optional[Annotate] = None) -> Dict[str, Any]:
    """The dataset dict of one image and its binary foreground mask.

    Args:
        file_name: the image.
        mask_file: its mask, same size; foreground = any channel > 0.
        image_id: the record's ``image_id``.
        with_sem_seg: add ``sem_seg_file_name = mask_file`` and ``sem_seg_binary = True``.
        annotate: when given, the mask is read and ``annotations = annotate(mask)``.

    Returns:
        ``{file_name, height, width, image_id}`` (size from the image header) plus the
        semantic and/or instance fields asked for.

    Raises:
        DataError: naming the mask when annotating and its size differs from the image's.
    """
    height, width = read_image_size(file_name)
    record: Dict[str, Any] = {"file_name": file_name, "height": height, "width": width, "image_id": image_id}
    if with_sem_seg:
        record["sem_seg_file_name"] = mask_file
        record["sem_seg_binary"] = True
    if annotate is not None:
        mask = read_sem_seg(mask_file, binary=True)
        if mask.shape != (height, width):
            raise DataError(
                f"Mask has (height, width) = {mask.shape} but its image '{file_name}' is {(height, width)}. A mask "
                f"must be pixel-aligned with its image; re-extract the dataset archive.",
                file_name=mask_file, record=image_id)
        record["annotations"] = annotate(mask)
    return record
