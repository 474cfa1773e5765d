"""MaskFormerInstanceDatasetMapper: instance records -> one binary mask per (non-crowd) instance."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Union

import torch

from seg_research.config import configurable
from seg_research.data import detection_utils as utils
from seg_research.data import transforms as T
from seg_research.data.errors import DataError

from .common import image_tensor, map_checked, mask_instances, pad_to_size, read_checked_image
from .mask_former_semantic_dataset_mapper import build_maskformer_augmentations

__all__ = ["MaskFormerInstanceDatasetMapper"]


class MaskFormerInstanceDatasetMapper:
    """Training mapper for instance segmentation with MaskFormer / Mask2Former.

    Reads the image, augments it (ResizeShortestEdge, a plain RandomCrop when INPUT.CROP.ENABLED, SSD
    color distortion, flip), transforms the non-crowd ``annotations`` (polygons, RLE or masks),
    optionally pads to ``size_divisibility`` x ``size_divisibility`` and returns the record with
    ``image`` (C, H, W) uint8 and ``instances``: ``gt_classes`` (K,) int64 and ``gt_masks`` (K, H, W)
    bool, in the annotations' order (instances cropped away stay, with empty masks, as upstream).
    """

    @configurable
    def __init__(self, is_train: bool = True, *, augmentations: List[Union[T.Augmentation, T.Transform]],
                 image_format: str, size_divisibility: int) -> None:
        """
        Args:
            is_train: must be True (evaluation reads records with the library's ``DatasetMapper``).
            augmentations: applied to the image, then to the annotations.
            image_format: "BGR", "RGB" or "L".
            size_divisibility: > 0: pad to this square size (upstream's meaning); <= 0: no padding.
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.img_format = image_format
        self.size_divisibility = size_divisibility
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info(f"[{type(self).__name__}] Augmentations used in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict[str, Any]:
        return {
            "is_train": is_train,
            "augmentations": build_maskformer_augmentations(cfg, T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE)),
            "image_format": cfg.INPUT.FORMAT,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
        }

    def __call__(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Map one training record (not modified) to the model's input dict (see the class doc)."""
        if not self.is_train:
            raise ValueError(f"{type(self).__name__} maps training records only; evaluation uses the library's "
                             "DatasetMapper (build_detection_test_loader's default).")
        return map_checked(self._map, dataset_dict)

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        image = read_checked_image(dataset_dict, self.img_format)
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        annos = [utils.transform_instance_annotations(a, transforms, image.shape[:2])
                 for a in dataset_dict.pop("annotations", []) if not a.get("iscrowd", 0)]
        instances = utils.annotations_to_instances(annos, image.shape[:2], mask_format="bitmask")
        if annos and not instances.has("gt_masks"):
            raise DataError(f"{type(self).__name__} trains on masks: the annotations need a 'segmentation' "
                            "(polygons, RLE or a mask array).")
        image_t = image_tensor(image)
        masks = instances.gt_masks.tensor if annos else torch.zeros((0,) + image.shape[:2], dtype=torch.bool)
        if self.size_divisibility > 0:
            image_t, (masks,) = pad_to_size(self.size_divisibility, image_t, [(masks, 0)], dataset_dict["file_name"])
        dataset_dict["image"] = image_t
        dataset_dict["instances"] = mask_instances(tuple(image_t.shape[-2:]), instances.gt_classes.tolist(),
                                                   list(masks))
        return dataset_dict
