"""MaskFormerSemanticDatasetMapper: semantic segmentation records -> one binary mask per class present."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from seg_research.config import configurable
from seg_research.data import MetadataCatalog
from seg_research.data import detection_utils as utils
from seg_research.data import transforms as T
from seg_research.data.errors import DataError

from ..color_augmentation import ColorAugSSD
from .common import image_tensor, map_checked, mask_instances, pad_to_size, read_checked_image

__all__ = ["MaskFormerSemanticDatasetMapper"]

# The on-disk contract for sem_seg PNGs: 255 marks pixels to ignore.
_SEM_SEG_FILE_IGNORE = 255


def build_maskformer_augmentations(cfg, crop: T.Augmentation) -> List[Union[T.Augmentation, T.Transform]]:
    """Upstream's training augmentations of the MaskFormer mappers: ResizeShortestEdge
    (INPUT.MIN_SIZE_TRAIN, MAX_SIZE_TRAIN, MIN_SIZE_TRAIN_SAMPLING), ``crop`` when INPUT.CROP.ENABLED,
    SSD color distortion when INPUT.COLOR_AUG_SSD, and a horizontal flip (always, whatever
    INPUT.RANDOM_FLIP says, as upstream)."""
    augs: List[Union[T.Augmentation, T.Transform]] = [
        T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)
    ]
    if cfg.INPUT.CROP.ENABLED:
        augs.append(crop)
    if cfg.INPUT.COLOR_AUG_SSD:
        augs.append(ColorAugSSD(img_format=cfg.INPUT.FORMAT))
    augs.append(T.RandomFlip())
    return augs


class MaskFormerSemanticDatasetMapper:
    """Training mapper for semantic segmentation with MaskFormer / Mask2Former.

    Reads the image and ``sem_seg_file_name`` (class ids, 255 = ignore in the file), augments both,
    optionally pads them to ``size_divisibility`` x ``size_divisibility`` (image with 128, labels with
    ``ignore_label``) and returns the record with:

    - ``image``: (C, H, W) uint8 tensor in ``image_format``;
    - ``sem_seg``: (H, W) int64 tensor of class ids, ``ignore_label`` where ignored or padded;
    - ``instances``: ``Instances`` with ``gt_classes`` (K,) int64, the classes present in increasing
      order, and ``gt_masks`` (K, H, W) bool, one mask per class.

    Records' ``annotations`` are dropped (upstream refuses records that have them).
    """

    @configurable
    def __init__(self, is_train: bool = True, *, augmentations: List[Union[T.Augmentation, T.Transform]],
                 image_format: str, ignore_label: int, size_divisibility: int) -> None:
        """
        Args:
            is_train: must be True (evaluation reads records with the library's ``DatasetMapper``).
            augmentations: applied to the image and the labels.
            image_format: "BGR", "RGB" or "L".
            ignore_label: label of ignored pixels in the output (the file's 255 becomes this).
            size_divisibility: > 0: pad to this square size (upstream's meaning); <= 0: no padding.
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.img_format = image_format
        self.ignore_label = ignore_label
        self.size_divisibility = size_divisibility
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info(f"[{type(self).__name__}] Augmentations used in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict[str, Any]:
        crop = T.RandomCrop_CategoryAreaConstraint(
            cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE, cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA,
            cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        )
        return {
            "is_train": is_train,
            "augmentations": build_maskformer_augmentations(cfg, crop),
            "image_format": cfg.INPUT.FORMAT,
            "ignore_label": _ignore_label(cfg),
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
        }

    def _check_train(self) -> None:
        if not self.is_train:
            raise ValueError(f"{type(self).__name__} maps training records only; evaluation uses the library's "
                             "DatasetMapper (build_detection_test_loader's default).")

    def _read_sem_seg(self, dataset_dict: Dict[str, Any], image_shape: Tuple[int, int]) -> np.ndarray:
        sem_seg = utils.read_record_sem_seg(dataset_dict)
        if sem_seg.shape != image_shape:
            raise DataError(f"Semantic segmentation has (height, width) = {sem_seg.shape} but the image is "
                            f"{image_shape}; the PNG must be pixel-aligned with the image.",
                            file_name=dataset_dict["sem_seg_file_name"])
        return sem_seg

    def _sem_seg_tensor(self, sem_seg: np.ndarray) -> torch.Tensor:
        labels = torch.from_numpy(sem_seg.astype(np.int64))
        labels[labels == _SEM_SEG_FILE_IGNORE] = self.ignore_label
        return labels

    def __call__(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Map one training record (not modified) to the model's input dict (see the class doc)."""
        self._check_train()
        return map_checked(self._map, dataset_dict)

    def _map(self, dataset_dict: Dict[str, Any]) -> Dict[str, Any]:
        image = read_checked_image(dataset_dict, self.img_format)
        if "sem_seg_file_name" not in dataset_dict:
            raise DataError(f"{type(self).__name__} needs 'sem_seg_file_name' in every record; this one has keys "
                            f"{sorted(dataset_dict)}. Use a semantic segmentation dataset (or another "
                            "INPUT.DATASET_MAPPER_NAME).")
        sem_seg = self._read_sem_seg(dataset_dict, image.shape[:2])
        dataset_dict.pop("sem_seg_file_name")
        dataset_dict.pop("annotations", None)
        aug_input = T.AugInput(image, sem_seg=sem_seg)
        self.augmentations(aug_input)

        image_t = image_tensor(aug_input.image)
        labels = self._sem_seg_tensor(aug_input.sem_seg)
        if self.size_divisibility > 0:
            image_t, (labels,) = pad_to_size(self.size_divisibility, image_t, [(labels, self.ignore_label)],
                                             dataset_dict["file_name"])
        dataset_dict["image"] = image_t
        dataset_dict["sem_seg"] = labels
        classes = [c for c in torch.unique(labels).tolist() if c != self.ignore_label]
        dataset_dict["instances"] = mask_instances(tuple(labels.shape), classes, [labels == c for c in classes])
        return dataset_dict


def _ignore_label(cfg) -> int:
    """The training dataset's ``ignore_label`` metadata (upstream's source), else
    MODEL.SEM_SEG_HEAD.IGNORE_VALUE."""
    ignore_label: Optional[int] = None
    if cfg.DATASETS.TRAIN:
        ignore_label = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).get("ignore_label")
    return int(cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE if ignore_label is None else ignore_label)
