"""DatasetMapper: one dataset dict in, one model input dict out (image tensor + targets)."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Union

import numpy as np
import torch

from ..config import configurable
from ..structures import Instances
from . import detection_utils as utils
from . import transforms as T
from .errors import DataError
from .record_checks import check_dataset_dict

__all__ = ["DatasetMapper"]

# The on-disk contract for sem_seg PNGs: 255 marks pixels to ignore.
_SEM_SEG_FILE_IGNORE = 255


class DatasetMapper:
    """Read the image (and sem_seg PNG) of a dataset dict, augment them, and build targets.

    The output is a deep copy of the input dict with, added:

    - ``image``: uint8 tensor (C, H, W), channels in ``image_format`` order, after augmentation.
    - ``sem_seg``: int64 tensor (H, W) of class ids (if the record has ``sem_seg_file_name``;
      a binary foreground mask gives 0/1 when the record has ``sem_seg_binary: True``);
      pixels 255 in the file become ``ignore_label``.
    - ``instances`` (training only, if the record has ``annotations``): :class:`Instances` with
      ``gt_boxes`` (XYXY_ABS), ``gt_classes`` (int64) and, with ``use_instance_mask``,
      ``gt_masks``; crowd annotations and empty instances are removed.

    At training time ``annotations`` holds the transformed annotations (boxes in XYXY_ABS,
    crowd ones included); at test time it is dropped. ``height``/``width`` stay the original
    image size, so predictions can be rescaled to it. Panoptic fields (``pan_seg_file_name``,
    ``segments_info``) pass through unchanged.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: List[Union[T.Augmentation, T.Transform]],
        image_format: str,
        use_instance_mask: bool = False,
        instance_mask_format: str = "polygon",
        ignore_label: int = 255,
        recompute_boxes: bool = False,
    ) -> None:
        """
        Args:
            is_train: build training targets (``instances``) and keep ``annotations``.
            augmentations: applied in order to the image and sem_seg, then to annotations.
            image_format: ``"BGR"``, ``"RGB"`` or ``"L"`` (see ``read_image``).
            use_instance_mask: keep instance masks (``gt_masks``).
            instance_mask_format: ``"polygon"`` or ``"bitmask"``.
            ignore_label: value written for the sem_seg file's ignore pixels (255).
            recompute_boxes: set ``gt_boxes`` from the masks after augmentation (use with
                cropping, where a clipped box may not be tight around the cropped mask).
        """
        if recompute_boxes and not use_instance_mask:
            raise ValueError("recompute_boxes=True computes boxes from masks; it needs use_instance_mask=True.")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.use_instance_mask = use_instance_mask
        self.instance_mask_format = instance_mask_format
        self.ignore_label = ignore_label
        self.recompute_boxes = recompute_boxes

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict[str, Any]:
        return {
            "is_train": is_train,
            "augmentations": utils.build_augmentation(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "use_instance_mask": cfg.MODEL.MASK_ON,
            "instance_mask_format": cfg.INPUT.MASK_FORMAT,
            "ignore_label": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            "recompute_boxes": bool(cfg.INPUT.CROP.ENABLED and cfg.MODEL.MASK_ON),
        }

    def _read_sem_seg(self, dataset_dict: Dict[str, Any], image_shape: tuple) -> np.ndarray:
        file_name = dataset_dict["sem_seg_file_name"]
        sem_seg = utils.read_record_sem_seg(dataset_dict)
        if sem_seg.shape != image_shape:
            raise DataError(
                f"Semantic segmentation has (height, width) = {sem_seg.shape} but its image "
                f"'{dataset_dict['file_name']}' is {image_shape}. The PNG must be pixel-aligned with the image "
                f"(after the image's EXIF rotation); regenerate it.",
                file_name=file_name,
                record=dataset_dict.get("image_id"),
            )
        return sem_seg

    def _build_instances(self, annos: List[Dict[str, Any]], image_shape: tuple) -> Instances:
        instances = utils.annotations_to_instances(
            [a for a in annos if not a.get("iscrowd", 0)], image_shape, mask_format=self.instance_mask_format
        )
        if self.recompute_boxes:
            instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
        return utils.filter_empty_instances(instances)

    def __call__(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Map one dataset dict (not modified) to a model input dict (see the class doc).

        Raises:
            DataError: for a malformed record (:func:`check_dataset_dict`), an unreadable or
                wrongly sized image, sem_seg file or mask; it names the record's
                ``file_name`` and ``image_id`` when the failing step did not know them.
        """
        check_dataset_dict(dataset_dict)
        try:
            return self._map(copy.deepcopy(dataset_dict))
        except DataError as e:
            raise e.with_location(dataset_dict["file_name"], dataset_dict.get("image_id")) from e

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        sem_seg = self._read_sem_seg(dataset_dict, image.shape[:2]) if "sem_seg_file_name" in dataset_dict else None

        aug_input = T.AugInput(image, sem_seg=sem_seg)
        transforms = self.augmentations(aug_input)
        image, sem_seg = aug_input.image, aug_input.sem_seg
        image_shape = image.shape[:2]

        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg is not None:
            sem_seg = sem_seg.astype(np.int64)
            sem_seg[sem_seg == _SEM_SEG_FILE_IGNORE] = self.ignore_label
            dataset_dict["sem_seg"] = torch.from_numpy(sem_seg)

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict
        if "annotations" in dataset_dict:
            annos = dataset_dict["annotations"]
            if not self.use_instance_mask:
                for anno in annos:
                    anno.pop("segmentation", None)
            annos = [utils.transform_instance_annotations(a, transforms, image_shape) for a in annos]
            dataset_dict["annotations"] = annos
            dataset_dict["instances"] = self._build_instances(annos, image_shape)
        return dataset_dict
