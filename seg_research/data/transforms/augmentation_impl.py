"""The standard augmentations: resize by shortest edge, flip, crop, brightness, contrast.

Each samples its parameters with ``np.random`` and returns an fvcore Transform.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from fvcore.transforms.transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    Transform,
    TransformList,
    VFlipTransform,
)
from PIL import Image

from ...utils.absent import absent_names
from .augmentation import Augmentation
from .transform import ResizeTransform

__all__ = ["ResizeShortestEdge", "RandomFlip", "RandomCrop", "RandomBrightness", "RandomContrast", "RandomSaturation",
           "Resize", "RandomApply", "ResizeScale", "FixedSizeCrop", "RandomCrop_CategoryAreaConstraint"]


class ResizeShortestEdge(Augmentation):
    """Resize so the shorter side is a sampled length, capping the longer side at ``max_size``.

    Args:
        short_edge_length: one int, or a tuple: with ``sample_style="range"`` two ints
            (min, max) sampled uniformly as integers in [min, max]; with ``"choice"`` the
            candidates to pick from. A sampled length of 0 leaves the image unchanged.
        max_size: the longer side never exceeds this (aspect ratio kept).
        sample_style: ``"range"`` or ``"choice"``.
        interp: Pillow resampling filter for the image (segmentations use nearest).
    """

    def __init__(self, short_edge_length: Union[int, Sequence[int]], max_size: int = sys.maxsize,
                 sample_style: str = "range", interp: int = Image.Resampling.BILINEAR) -> None:
        if sample_style not in ("range", "choice"):
            raise ValueError(f"ResizeShortestEdge: sample_style must be 'range' or 'choice', got {sample_style!r}.")
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        short_edge_length = tuple(int(s) for s in short_edge_length)
        if sample_style == "range" and len(short_edge_length) != 2:
            raise ValueError(
                f"ResizeShortestEdge with sample_style='range' needs (min, max) short edge lengths, got "
                f"{short_edge_length}. Use sample_style='choice' (INPUT.MIN_SIZE_TRAIN_SAMPLING) to pick from a list."
            )
        self.short_edge_length = short_edge_length
        self.max_size = max_size
        self.sample_style = sample_style
        self.interp = interp

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if self.sample_style == "range":
            size = int(np.random.randint(self.short_edge_length[0], self.short_edge_length[1] + 1))
        else:
            size = int(np.random.choice(self.short_edge_length))
        if size == 0:
            return NoOpTransform()
        new_h, new_w = self.get_output_shape(h, w, size, self.max_size)
        return ResizeTransform(h, w, new_h, new_w, self.interp)

    @staticmethod
    def get_output_shape(h: int, w: int, short_edge_length: int, max_size: int) -> Tuple[int, int]:
        """(new_h, new_w) with the short side ``short_edge_length`` and the long side at most
        ``max_size``, each rounded half up to an integer.

        Example: (480, 640), 240, 300 -> (240, 320) capped by 300/320 -> (225, 300).
        """
        scale = short_edge_length / min(h, w)
        new_h, new_w = h * scale, w * scale
        if max(new_h, new_w) > max_size:
            cap = max_size / max(new_h, new_w)
            new_h, new_w = new_h * cap, new_w * cap
        return int(new_h + 0.5), int(new_w + 0.5)


class RandomFlip(Augmentation):
    """Flip the image horizontally or vertically with probability ``prob``."""

    def __init__(self, prob: float = 0.5, *, horizontal: bool = True, vertical: bool = False) -> None:
        if horizontal == vertical:
            raise ValueError(
                f"RandomFlip flips along exactly one axis: got horizontal={horizontal}, vertical={vertical}. "
                f"Use two RandomFlip augmentations to flip both ways."
            )
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomFlip: prob must be in [0, 1], got {prob}.")
        self.prob = prob
        self.horizontal = horizontal
        self.vertical = vertical

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if self._rand_range() >= self.prob:
            return NoOpTransform()
        return HFlipTransform(w) if self.horizontal else VFlipTransform(h)


_CROP_TYPES = ("relative", "relative_range", "absolute", "absolute_range")


class RandomCrop(Augmentation):
    """Crop a random window of the image.

    Args:
        crop_type: how ``crop_size`` = (a, b) is read, for an image (H, W):
            ``"relative"``: crop (a*H, b*W), with a, b in (0, 1];
            ``"relative_range"``: crop (a'*H, b'*W) with a' uniform in [a, 1] and b' in [b, 1];
            ``"absolute"``: crop (min(a, H), min(b, W)) pixels;
            ``"absolute_range"``: height uniform in [min(H, a), min(H, b)], width uniform in
            [min(W, a), min(W, b)] (integers, a <= b).
            Relative sizes are rounded half up to integers.
        crop_size: the pair (a, b).
    """

    def __init__(self, crop_type: str, crop_size: Sequence[float]) -> None:
        if crop_type not in _CROP_TYPES:
            raise ValueError(f"RandomCrop: crop_type must be one of {_CROP_TYPES}, got {crop_type!r}.")
        if len(crop_size) != 2:
            raise ValueError(f"RandomCrop: crop_size must be a pair, got {crop_size!r}.")
        if crop_type.startswith("relative") and not all(0 < s <= 1 for s in crop_size):
            raise ValueError(f"RandomCrop({crop_type!r}): crop_size must be in (0, 1], got {crop_size!r}.")
        if crop_type == "absolute_range" and crop_size[0] > crop_size[1]:
            raise ValueError(f"RandomCrop('absolute_range'): crop_size must be (min, max), got {crop_size!r}.")
        self.crop_type = crop_type
        self.crop_size = tuple(crop_size)

    def get_crop_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """(crop_h, crop_w) for an image of (h, w), sampled when the type is a range."""
        h, w = image_size
        a, b = self.crop_size
        if self.crop_type == "relative":
            return int(h * a + 0.5), int(w * b + 0.5)
        if self.crop_type == "relative_range":
            low = np.asarray(self.crop_size, dtype=np.float64)
            rel_h, rel_w = low + np.random.rand(2) * (1 - low)
            return int(h * rel_h + 0.5), int(w * rel_w + 0.5)
        if self.crop_type == "absolute":
            return min(int(a), h), min(int(b), w)
        crop_h = np.random.randint(min(h, int(a)), min(h, int(b)) + 1)
        crop_w = np.random.randint(min(w, int(a)), min(w, int(b)) + 1)
        return int(crop_h), int(crop_w)

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        crop_h, crop_w = self.get_crop_size((h, w))
        y0 = int(np.random.randint(h - crop_h + 1))
        x0 = int(np.random.randint(w - crop_w + 1))
        return CropTransform(x0, y0, crop_w, crop_h, orig_w=w, orig_h=h)


class RandomCrop_CategoryAreaConstraint(Augmentation):
    """:class:`RandomCrop` that retries (up to 10 draws, keeping the last) until no single category
    covers ``single_category_max_area`` or more of the crop's labelled pixels and the crop holds at
    least two categories; pixels of ``ignored_category`` are not counted. With
    ``single_category_max_area`` >= 1 it is a plain :class:`RandomCrop` (one draw). Used for semantic
    segmentation, where a crop filled by one class destabilizes training.
    """

    input_args = ("image", "sem_seg")

    def __init__(self, crop_type: str, crop_size: Sequence[float], single_category_max_area: float = 1.0,
                 ignored_category: Optional[int] = None) -> None:
        self.crop_aug = RandomCrop(crop_type, crop_size)
        self.crop_type = crop_type
        self.crop_size = tuple(crop_size)
        self.single_category_max_area = single_category_max_area
        self.ignored_category = ignored_category

    def get_transform(self, image: np.ndarray, sem_seg: Optional[np.ndarray]) -> Transform:
        if self.single_category_max_area >= 1.0:
            return self.crop_aug.get_transform(image)
        if sem_seg is None:
            raise ValueError(
                "RandomCrop_CategoryAreaConstraint with single_category_max_area < 1 "
                "(INPUT.CROP.SINGLE_CATEGORY_MAX_AREA) needs the semantic segmentation: pass AugInput(image, sem_seg=...)."
            )
        h, w = sem_seg.shape[:2]
        for _ in range(10):
            crop_h, crop_w = self.crop_aug.get_crop_size((h, w))
            y0 = int(np.random.randint(h - crop_h + 1))
            x0 = int(np.random.randint(w - crop_w + 1))
            labels, counts = np.unique(sem_seg[y0:y0 + crop_h, x0:x0 + crop_w], return_counts=True)
            if self.ignored_category is not None:
                counts = counts[labels != self.ignored_category]
            if len(counts) > 1 and counts.max() < counts.sum() * self.single_category_max_area:
                break
        return CropTransform(x0, y0, crop_w, crop_h, orig_w=w, orig_h=h)


class ResizeScale(Augmentation):
    """Large-scale jitter's resize: draw s ~ U[min_scale, max_scale] and resize (aspect ratio kept) to
    the largest size that fits in ``(s * target_height, s * target_width)``, rounded to integers.
    Followed by :class:`FixedSizeCrop` to the target size in the COCO "LSJ" recipes.

    Example: a (480, 640) image, target (1024, 1024), s = 0.5: scale min(512/480, 512/640) = 0.8 ->
    (384, 512).
    """

    def __init__(self, min_scale: float, max_scale: float, target_height: int, target_width: int,
                 interp: int = Image.Resampling.BILINEAR) -> None:
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"ResizeScale: need 0 < min_scale <= max_scale (INPUT.MIN_SCALE / MAX_SCALE), got "
                             f"{min_scale}, {max_scale}.")
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.target_height = target_height
        self.target_width = target_width
        self.interp = interp

    def get_transform(self, image: np.ndarray) -> Transform:
        scale = np.random.uniform(self.min_scale, self.max_scale)
        h, w = image.shape[:2]
        factor = min(scale * self.target_height / h, scale * self.target_width / w)
        new_h, new_w = np.round(np.multiply((h, w), factor)).astype(int)
        return ResizeTransform(h, w, int(new_h), int(new_w), self.interp)


class FixedSizeCrop(Augmentation):
    """Crop to ``crop_size`` (h, w) at a random offset where the image is larger (one uniform draw
    u: offset ``round(u * (size - crop))`` on both axes), and with ``pad`` pad the bottom and right
    where it is smaller: images with ``pad_value``, segmentations with 0.
    """

    def __init__(self, crop_size: Tuple[int, int], pad: bool = True, pad_value: float = 128.0) -> None:
        self.crop_size = tuple(crop_size)
        self.pad = pad
        self.pad_value = pad_value

    def get_transform(self, image: np.ndarray) -> Transform:
        size = np.asarray(image.shape[:2])
        crop = np.asarray(self.crop_size)
        offset = np.round(np.maximum(size - crop, 0) * np.random.uniform(0.0, 1.0)).astype(int)
        out = np.minimum(size, crop)
        transforms = [CropTransform(int(offset[1]), int(offset[0]), int(out[1]), int(out[0]),
                                    orig_w=int(size[1]), orig_h=int(size[0]))]
        if self.pad:
            pad = np.maximum(crop - size, 0)
            transforms.append(PadTransform(0, 0, int(pad[1]), int(pad[0]), int(out[1]), int(out[0]),
                                           pad_value=self.pad_value))
        return TransformList(transforms)


class _RandomIntensity(Augmentation):
    """Photometric jitter ``w * image + (1 - w) * reference`` with w ~ U[intensity_min, intensity_max].

    uint8 images are clipped to [0, 255] and truncated back to uint8. Geometry and
    segmentations are untouched.
    """

    def __init__(self, intensity_min: float, intensity_max: float) -> None:
        self.intensity_min = intensity_min
        self.intensity_max = intensity_max

    def _reference(self, image: np.ndarray) -> float:
        raise NotImplementedError

    def get_transform(self, image: np.ndarray) -> Transform:
        w = float(self._rand_range(self.intensity_min, self.intensity_max))
        return BlendTransform(src_image=self._reference(image), src_weight=1 - w, dst_weight=w)


class RandomBrightness(_RandomIntensity):
    """Multiply pixel values by w ~ U[intensity_min, intensity_max] (reference 0)."""

    def _reference(self, image: np.ndarray) -> float:
        return 0.0


class RandomContrast(_RandomIntensity):
    """Scale pixel deviations from the image mean by w ~ U[intensity_min, intensity_max]:
    ``w * image + (1 - w) * image.mean()``."""

    def _reference(self, image: np.ndarray) -> float:
        return float(image.mean())


class RandomSaturation(_RandomIntensity):
    """Blend an RGB image with its grayscale version by w ~ U[intensity_min, intensity_max]
    (w < 1 desaturates, w > 1 saturates)."""

    def _reference(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"RandomSaturation needs (H, W, 3) RGB images, got shape {image.shape}.")
        return image.astype(np.float32).dot(np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, :, None]


class Resize(Augmentation):
    """Resize every image to a fixed ``shape`` ((h, w), or one int for a square)."""

    def __init__(self, shape: Union[int, Tuple[int, int]], interp: int = Image.Resampling.BILINEAR) -> None:
        self.shape = (shape, shape) if isinstance(shape, int) else tuple(shape)
        self.interp = interp

    def get_transform(self, image: np.ndarray) -> Transform:
        return ResizeTransform(image.shape[0], image.shape[1], self.shape[0], self.shape[1], self.interp)


class RandomApply(Augmentation):
    """Apply ``tfm_or_aug`` (an Augmentation or a fixed Transform) with probability ``prob``, else nothing."""

    def __init__(self, tfm_or_aug: Union[Augmentation, Transform], prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomApply: prob must be in [0, 1], got {prob}.")
        self.tfm_or_aug = tfm_or_aug
        self.prob = prob

    def __call__(self, aug_input) -> Transform:
        if self._rand_range() >= self.prob:
            return NoOpTransform()
        if isinstance(self.tfm_or_aug, Augmentation):
            return self.tfm_or_aug(aug_input)
        aug_input.transform(self.tfm_or_aug)
        return self.tfm_or_aug


_NOT_PROVIDED = "not provided; the augmentations here are ResizeShortestEdge, Resize, RandomFlip, RandomCrop, " \
                "RandomCrop_CategoryAreaConstraint, ResizeScale, FixedSizeCrop, RandomBrightness, RandomContrast, " \
                "RandomSaturation and RandomApply (write an Augmentation subclass for others)."
__getattr__ = absent_names(__name__, {name: _NOT_PROVIDED for name in (
    "RandomExtent", "RandomRotation", "RandomLighting")})
