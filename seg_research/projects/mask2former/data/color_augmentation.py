"""SSD's photometric distortion (Liu et al., ECCV 2016), which Mask2Former's semantic and instance
mappers apply with ``INPUT.COLOR_AUG_SSD`` (upstream takes it from detectron2's PointRend project)."""
from __future__ import annotations

from typing import Callable, List

import cv2
import numpy as np

from seg_research.data import transforms as T

__all__ = ["ColorAugSSD"]


def _affine(values: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``alpha * values + beta`` clipped to [0, 255], as uint8."""
    return np.clip(values.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def _in_hsv(img: np.ndarray, edit: Callable[[np.ndarray], None]) -> np.ndarray:
    """Apply ``edit`` in place to the HSV version of a uint8 BGR image (OpenCV's H in [0, 180))."""
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    edit(hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


class ColorAugSSD(T.Augmentation):
    """Each with probability 1/2: brightness shift (+-``brightness_delta``), then in one of two
    orders (1/2 each) contrast scale (``contrast_low``..``contrast_high``) before or after saturation
    scale (``saturation_low``..``saturation_high``) and hue shift (+-``hue_delta`` in OpenCV's 180
    steps). Geometry and segmentations are untouched.

    Every draw is made with ``np.random`` when the transform is sampled (upstream's transform draws
    with Python's ``random`` each time it is applied), so the returned transform is deterministic.

    Args:
        img_format: "BGR" or "RGB", the channel order of the uint8 (H, W, 3) images.
    """

    def __init__(self, img_format: str, brightness_delta: int = 32, contrast_low: float = 0.5,
                 contrast_high: float = 1.5, saturation_low: float = 0.5, saturation_high: float = 1.5,
                 hue_delta: int = 18) -> None:
        if img_format not in ("BGR", "RGB"):
            raise ValueError(f"ColorAugSSD works on 'BGR' or 'RGB' images (INPUT.FORMAT), got {img_format!r}.")
        self.img_format = img_format
        self.brightness_delta = brightness_delta
        self.contrast_low = contrast_low
        self.contrast_high = contrast_high
        self.saturation_low = saturation_low
        self.saturation_high = saturation_high
        self.hue_delta = hue_delta

    def get_transform(self, image: np.ndarray) -> T.Transform:
        ops: List[Callable[[np.ndarray], np.ndarray]] = []
        if np.random.randint(2):
            beta = np.random.uniform(-self.brightness_delta, self.brightness_delta)
            ops.append(lambda img: _affine(img, beta=beta))
        contrast: List[Callable[[np.ndarray], np.ndarray]] = []
        if np.random.randint(2):
            alpha = np.random.uniform(self.contrast_low, self.contrast_high)
            contrast.append(lambda img: _affine(img, alpha=alpha))
        color: List[Callable[[np.ndarray], np.ndarray]] = []
        if np.random.randint(2):
            saturation = np.random.uniform(self.saturation_low, self.saturation_high)

            def scale_saturation(hsv: np.ndarray) -> None:
                hsv[:, :, 1] = _affine(hsv[:, :, 1], alpha=saturation)

            color.append(lambda img: _in_hsv(img, scale_saturation))
        if np.random.randint(2):
            shift = int(np.random.randint(-self.hue_delta, self.hue_delta + 1))

            def shift_hue(hsv: np.ndarray) -> None:
                hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int64) + shift) % 180

            color.append(lambda img: _in_hsv(img, shift_hue))
        ops += contrast + color if np.random.randint(2) else color + contrast
        if not ops:
            return T.NoOpTransform()
        is_rgb = self.img_format == "RGB"

        def distort(img: np.ndarray) -> np.ndarray:
            # The HSV conversions read BGR.
            out = np.ascontiguousarray(img[:, :, ::-1]) if is_rgb else img
            for op in ops:
                out = op(out)
            return np.ascontiguousarray(out[:, :, ::-1]) if is_rgb else out

        return T.ColorTransform(distort)
