"""DefaultPredictor: run a trained model on one image from Python."""
from __future__ import annotations

import logging
from typing import Any, Dict

import cv2
import numpy as np
import torch

from ..checkpoint import Checkpointer
from ..config import CfgNode
from ..data.catalog import Metadata, MetadataCatalog
from ..data.detection_utils import build_augmentation
from ..data.transforms import AugInput, AugmentationList
from ..modeling import build_model
from .amp import autocast, autocast_dtype, outputs_to_float32

__all__ = ["DefaultPredictor"]

logger = logging.getLogger(__name__)


class DefaultPredictor:
    """The model of ``cfg`` with ``MODEL.WEIGHTS`` loaded, in eval mode, applied to one image.

    The image goes through the test-time augmentation of the config (``ResizeShortestEdge``
    to ``INPUT.MIN_SIZE_TEST`` / ``INPUT.MAX_SIZE_TEST``; none when MIN_SIZE_TEST is 0) and
    is converted to ``INPUT.FORMAT``; outputs come back at the original image size, in float32
    also when MODEL.PRECISION runs the model under autocast (bf16 on a CPU with native bf16)::

        predictor = DefaultPredictor(cfg)
        outputs = predictor(cv2.imread("input.jpg"))  # {"sem_seg": (C, H, W)} / {"instances": ...}

    Attributes:
        metadata: ``MetadataCatalog.get(cfg.DATASETS.TEST[0])`` (class names and colours),
            an empty Metadata when DATASETS.TEST is empty.
    """

    def __init__(self, cfg: CfgNode) -> None:
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg)
        self.model.eval()
        test_sets = list(self.cfg.DATASETS.TEST)
        self.metadata: Metadata = MetadataCatalog.get(test_sets[0]) if test_sets else Metadata()
        if not self.cfg.MODEL.WEIGHTS:
            logger.warning("DefaultPredictor: MODEL.WEIGHTS is empty, so the model keeps its random initial "
                           "weights. Pass MODEL.WEIGHTS <OUTPUT_DIR>/model_final.pth.")
        Checkpointer(self.model).load(self.cfg.MODEL.WEIGHTS)
        self.augmentations = AugmentationList(build_augmentation(self.cfg, is_train=False))
        self.input_format = self.cfg.INPUT.FORMAT
        #: the dtype the model's forward is autocast to (None: float32), from MODEL.PRECISION
        self.precision = autocast_dtype(self.cfg.MODEL.DEVICE, self.cfg.MODEL.PRECISION, "MODEL.PRECISION")

    def __call__(self, original_image: np.ndarray) -> Dict[str, Any]:
        """
        Args:
            original_image: (H, W, 3) uint8 image in BGR order (as ``cv2.imread`` returns).

        Returns:
            the model's output dict for this image (``sem_seg`` (C, H, W) logits,
            ``instances`` and/or ``panoptic_seg``), at the original (H, W).
        """
        image = np.asarray(original_image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"DefaultPredictor expects an (H, W, 3) uint8 BGR image, got shape {image.shape} "
                             f"and dtype {image.dtype}. Read files with seg_research.data.detection_utils."
                             f"read_image(path, format='BGR'), which converts grayscale and RGBA images.")
        height, width = image.shape[:2]
        if self.input_format == "RGB":
            image = image[:, :, ::-1]
        elif self.input_format == "L":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
        aug_input = AugInput(np.ascontiguousarray(image))
        self.augmentations(aug_input)
        tensor = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        with torch.no_grad(), autocast(self.cfg.MODEL.DEVICE, self.precision):
            outputs = self.model([{"image": tensor, "height": height, "width": width}])[0]
        return outputs_to_float32(outputs)
