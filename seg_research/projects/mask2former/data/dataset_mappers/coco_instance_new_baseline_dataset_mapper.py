"""COCOInstanceNewBaselineDatasetMapper: COCO instance records with large-scale jitter (Mask2Former's
"LSJ" recipe: flip, random rescale of a square target, fixed-size crop/pad)."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Union

import numpy as np
import torch

from seg_research.config import configurable
from seg_research.data import detection_utils as utils
from seg_research.data import transforms as T
from seg_research.data.errors import DataError
from seg_research.structures import BitMasks, polygons_to_bitmask

from .common import image_tensor, map_checked, read_checked_image

__all__ = ["COCOInstanceNewBaselineDatasetMapper", "LargeScaleJitterMapper", "build_transform_gen"]


def build_transform_gen(cfg, is_train: bool) -> List[T.Augmentation]:
    """Large-scale jitter (training only): INPUT.RANDOM_FLIP ("horizontal", "vertical" or "none"),
    ResizeScale(INPUT.MIN_SCALE, MAX_SCALE) of an INPUT.IMAGE_SIZE square, FixedSizeCrop to that square
    (padded with 128)."""
    if not is_train:
        raise ValueError("The large-scale-jitter mappers map training records only; evaluation uses the library's "
                         "DatasetMapper (build_detection_test_loader's default).")
    size = cfg.INPUT.IMAGE_SIZE
    augs: List[T.Augmentation] = []
    if cfg.INPUT.RANDOM_FLIP != "none":
        augs.append(T.RandomFlip(horizontal=cfg.INPUT.RANDOM_FLIP == "horizontal",
                                 vertical=cfg.INPUT.RANDOM_FLIP == "vertical"))
    augs += [T.ResizeScale(min_scale=cfg.INPUT.MIN_SCALE, max_scale=cfg.INPUT.MAX_SCALE, target_height=size,
                           target_width=size),
             T.FixedSizeCrop(crop_size=(size, size))]
    return augs


class LargeScaleJitterMapper:
    """What the two COCO large-scale-jitter mappers share: the augmentations of
    :func:`build_transform_gen`, the image format, and the record-checking ``__call__``; subclasses
    write ``_map`` (the record, not modified, to the model's input dict)."""

    @configurable
    def __init__(self, is_train: bool = True, *, tfm_gens: List[Union[T.Augmentation, T.Transform]],
                 image_format: str) -> None:
        """
        Args:
            is_train: build the training targets.
            tfm_gens: the augmentations (upstream's argument name).
            image_format: "BGR", "RGB" or "L".
        """
        self.tfm_gens = T.AugmentationList(tfm_gens)
        self.img_format = image_format
        self.is_train = is_train
        logging.getLogger(__name__).info(f"[{type(self).__name__}] Full TransformGens used in training: {tfm_gens}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict[str, Any]:
        return {"is_train": is_train, "tfm_gens": build_transform_gen(cfg, is_train), "image_format": cfg.INPUT.FORMAT}

    def __call__(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Map one record (not modified) to the model's input dict (see the class doc)."""
        return map_checked(self._map, dataset_dict)

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError


class COCOInstanceNewBaselineDatasetMapper(LargeScaleJitterMapper):
    """Training mapper of Mask2Former's COCO instance segmentation recipe.

    Returns the record with:

    - ``image``: (C, S, S) uint8 tensor (S = the crop size; smaller images are padded with 128);
    - ``padding_mask``: (S, S) bool tensor, True on the padding;
    - ``instances`` (training): non-crowd instances left non-empty by the crop, with ``gt_classes``
      (K,) int64, ``gt_masks`` (K, S, S) uint8 0/1 and ``gt_boxes`` (the masks' tight boxes, XYXY).

    With ``is_train=False`` the annotations are dropped.
    """

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        image = read_checked_image(dataset_dict, self.img_format)
        aug_input = T.AugInput(image)
        transforms = self.tfm_gens(aug_input)
        # The crop's padding: a mask of ones transformed like a segmentation (padded with 0).
        padding_mask = transforms.apply_segmentation(np.ones(image.shape[:2], dtype=np.uint8))
        image = aug_input.image
        image_shape = image.shape[:2]
        dataset_dict["image"] = image_tensor(image)
        dataset_dict["padding_mask"] = torch.from_numpy(np.ascontiguousarray(padding_mask == 0))
        annotations = dataset_dict.pop("annotations", None)
        if not self.is_train or annotations is None:
            return dataset_dict

        annos = [utils.transform_instance_annotations({k: v for k, v in a.items() if k != "keypoints"}, transforms,
                                                      image_shape)
                 for a in annotations if not a.get("iscrowd", 0)]
        h, w = image_shape
        if not all("segmentation" in a for a in annos):
            raise DataError(f"{type(self).__name__} trains on masks: every non-crowd annotation needs a "
                            "'segmentation' (polygons, RLE or a mask array).")
        polygons = bool(annos) and all(isinstance(a["segmentation"], list) for a in annos)
        instances = utils.annotations_to_instances(annos, image_shape, mask_format="polygon" if polygons else "bitmask")
        if not annos:
            instances.gt_masks = BitMasks(torch.zeros((0, h, w), dtype=torch.bool))
        # A cropped mask's box is tighter than the cropped box (think of a cropped triangle).
        instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
        instances = utils.filter_empty_instances(instances)
        if polygons:
            masks = [torch.from_numpy(polygons_to_bitmask(p, h, w)) for p in instances.gt_masks.polygons]
            masks = torch.stack(masks) if masks else torch.zeros((0, h, w), dtype=torch.bool)
        else:
            masks = instances.gt_masks.tensor
        # uint8, as upstream's masks of this mapper (the other mappers' are bool).
        instances.gt_masks = masks.to(torch.uint8)
        dataset_dict["instances"] = instances
        return dataset_dict
