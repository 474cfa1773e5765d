"""MaskFormerPanopticDatasetMapper: panoptic records -> one binary mask per (non-crowd) segment."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from seg_research.data import detection_utils as utils
from seg_research.data import transforms as T
from seg_research.data.errors import DataError

from .common import image_tensor, mask_instances, pad_to_size, read_checked_image
from .mask_former_semantic_dataset_mapper import MaskFormerSemanticDatasetMapper

__all__ = ["MaskFormerPanopticDatasetMapper"]


class MaskFormerPanopticDatasetMapper(MaskFormerSemanticDatasetMapper):
    """Training mapper for panoptic segmentation with MaskFormer / Mask2Former (the semantic mapper's
    augmentations and settings).

    Reads the image, ``pan_seg_file_name`` (COCO panoptic PNG) with ``segments_info``, and
    ``sem_seg_file_name`` when present; augments them alike; optionally pads to
    ``size_divisibility`` (panoptic ids with 0, void); returns the record with ``image``, ``sem_seg``
    (when the record has one) and ``instances``: ``gt_classes`` (K,) int64 and ``gt_masks`` (K, H, W)
    bool, one per segment of ``segments_info`` that is not a crowd, in its order.
    """

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        image = read_checked_image(dataset_dict, self.img_format)
        if "pan_seg_file_name" not in dataset_dict:
            raise DataError(f"{type(self).__name__} needs 'pan_seg_file_name' and 'segments_info' in every record; "
                            f"this one has keys {sorted(dataset_dict)}. Use a panoptic dataset.")
        sem_seg = (self._read_sem_seg(dataset_dict, image.shape[:2])
                   if "sem_seg_file_name" in dataset_dict else None)
        pan_file = dataset_dict.pop("pan_seg_file_name")
        dataset_dict.pop("sem_seg_file_name", None)
        dataset_dict.pop("annotations", None)
        pan_ids = utils.read_panoptic_ids(pan_file)
        if pan_ids.shape != image.shape[:2]:
            raise DataError(f"Panoptic PNG has (height, width) = {pan_ids.shape} but the image is {image.shape[:2]}.",
                            file_name=pan_file)

        aug_input = T.AugInput(image, sem_seg=sem_seg)
        transforms = self.augmentations(aug_input)
        image_t = image_tensor(aug_input.image)
        pan_ids_t = torch.from_numpy(np.ascontiguousarray(transforms.apply_segmentation(pan_ids)))
        labels = None if sem_seg is None else self._sem_seg_tensor(aug_input.sem_seg)
        if self.size_divisibility > 0:
            fills = [(pan_ids_t, 0)] + ([] if labels is None else [(labels, self.ignore_label)])
            image_t, padded = pad_to_size(self.size_divisibility, image_t, fills, dataset_dict["file_name"])
            pan_ids_t, labels = padded[0], (padded[1] if labels is not None else None)
        dataset_dict["image"] = image_t
        if labels is not None:
            dataset_dict["sem_seg"] = labels

        segments = [s for s in dataset_dict["segments_info"] if not s.get("iscrowd", 0)]
        dataset_dict["instances"] = mask_instances(
            tuple(pan_ids_t.shape), [s["category_id"] for s in segments], [pan_ids_t == s["id"] for s in segments])
        return dataset_dict
