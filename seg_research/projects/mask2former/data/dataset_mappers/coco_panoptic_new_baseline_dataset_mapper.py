"""COCOPanopticNewBaselineDatasetMapper: COCO panoptic records with large-scale jitter."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from seg_research.data import detection_utils as utils
from seg_research.data import transforms as T
from seg_research.data.errors import DataError
from seg_research.structures import BitMasks, Boxes

from .coco_instance_new_baseline_dataset_mapper import LargeScaleJitterMapper
from .common import image_tensor, mask_instances, read_checked_image

__all__ = ["COCOPanopticNewBaselineDatasetMapper"]


class COCOPanopticNewBaselineDatasetMapper(LargeScaleJitterMapper):
    """Training mapper of Mask2Former's COCO panoptic recipe (the large-scale jitter of
    :func:`build_transform_gen`).

    Returns the record with ``image`` (C, S, S) uint8 and, in training, ``instances``: one per segment
    of ``segments_info`` that is not a crowd, in its order, with ``gt_classes`` (K,) int64, ``gt_masks``
    (K, S, S) bool (segments cropped away stay, empty, as upstream) and ``gt_boxes`` (their tight boxes).
    """

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        image = read_checked_image(dataset_dict, self.img_format)
        aug_input = T.AugInput(image)
        transforms = self.tfm_gens(aug_input)
        dataset_dict["image"] = image_tensor(aug_input.image)
        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict
        if "pan_seg_file_name" not in dataset_dict:
            raise DataError(f"{type(self).__name__} needs 'pan_seg_file_name' and 'segments_info' in every training "
                            f"record; this one has keys {sorted(dataset_dict)}. Use a panoptic dataset.")
        pan_file = dataset_dict.pop("pan_seg_file_name")
        pan_ids = utils.read_panoptic_ids(pan_file)
        if pan_ids.shape != image.shape[:2]:
            raise DataError(f"Panoptic PNG has (height, width) = {pan_ids.shape} but the image is {image.shape[:2]}.",
                            file_name=pan_file)
        pan_ids_t = torch.from_numpy(np.ascontiguousarray(transforms.apply_segmentation(pan_ids)))
        segments = [s for s in dataset_dict["segments_info"] if not s.get("iscrowd", 0)]
        instances = mask_instances(tuple(pan_ids_t.shape), [s["category_id"] for s in segments],
                                   [pan_ids_t == s["id"] for s in segments])
        instances.gt_boxes = (BitMasks(instances.gt_masks).get_bounding_boxes() if segments
                              else Boxes(torch.zeros((0, 4))))
        dataset_dict["instances"] = instances
        return dataset_dict
