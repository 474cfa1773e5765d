"""Random augmentations: policies that look at the inputs and return a deterministic Transform.

An :class:`Augmentation` samples its randomness (from ``np.random``, seeded per worker)
in :meth:`Augmentation.get_transform`; the returned fvcore ``Transform`` is then applied
consistently to every input held by an :class:`AugInput` and can be re-applied to
annotations (boxes, polygons, masks) afterwards.
"""
from __future__ import annotations

import inspect
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from fvcore.transforms.transform import Transform, TransformList

__all__ = ["Augmentation", "AugInput", "AugmentationList", "apply_augmentations", "TransformGen", "StandardAugInput",
           "apply_transform_gens"]


class AugInput:
    """The inputs an augmentation may look at and transform.

    Attributes:
        image: HxWxC (or HxW) array, uint8 in [0, 255] or float.
        boxes: Nx4 float array, XYXY absolute pixels, or None.
        sem_seg: HxW integer array of class ids, or None.
    """

    def __init__(self, image: np.ndarray, *, boxes: Optional[np.ndarray] = None,
                 sem_seg: Optional[np.ndarray] = None) -> None:
        if image.ndim not in (2, 3):
            raise ValueError(f"AugInput needs an HxW or HxWxC image; got an array of shape {image.shape}.")
        if sem_seg is not None and sem_seg.shape[:2] != image.shape[:2]:
            raise ValueError(
                f"AugInput: sem_seg of shape {sem_seg.shape} does not match the image's (h, w) {image.shape[:2]}."
            )
        self.image = image
        self.boxes = boxes
        self.sem_seg = sem_seg

    def transform(self, tfm: Transform) -> None:
        """Apply ``tfm`` in place: ``apply_image`` on the image, ``apply_box`` on boxes and
        ``apply_segmentation`` (nearest) on sem_seg."""
        self.image = tfm.apply_image(self.image)
        if self.boxes is not None:
            self.boxes = tfm.apply_box(self.boxes)
        if self.sem_seg is not None:
            self.sem_seg = tfm.apply_segmentation(self.sem_seg)

    def apply_augmentations(self, augmentations: Sequence[Union["Augmentation", Transform]]) -> TransformList:
        """Apply ``augmentations`` in order, in place; return the transforms that were applied."""
        return AugmentationList(augmentations)(self)


class Augmentation:
    """Base class: subclasses implement ``get_transform(*args) -> Transform``.

    ``input_args`` names the :class:`AugInput` attributes passed to ``get_transform``
    (``"image"``, ``"boxes"``, ``"sem_seg"``), in order.
    """

    input_args: Tuple[str, ...] = ("image",)

    def get_transform(self, *args: Any) -> Transform:
        raise NotImplementedError(f"{type(self).__name__} must implement get_transform(*{self.input_args}).")

    def __call__(self, aug_input: AugInput) -> Transform:
        """Sample a transform from ``aug_input``, apply it to ``aug_input`` in place and return it."""
        missing = [name for name in self.input_args if not hasattr(aug_input, name)]
        if missing:
            raise AttributeError(
                f"{type(self).__name__} reads {missing} from its input, which {type(aug_input).__name__} lacks."
            )
        tfm = self.get_transform(*(getattr(aug_input, name) for name in self.input_args))
        if not isinstance(tfm, Transform):
            raise TypeError(f"{type(self).__name__}.get_transform returned {type(tfm).__name__}, not a Transform.")
        aug_input.transform(tfm)
        return tfm

    @staticmethod
    def _rand_range(low: float = 1.0, high: Optional[float] = None, size: Optional[int] = None) -> Any:
        """Uniform sample in [low, high) (or [0, low) when ``high`` is None)."""
        if high is None:
            low, high = 0.0, low
        return np.random.uniform(low, high, size)

    def __repr__(self) -> str:
        params = inspect.signature(type(self).__init__).parameters
        args = [f"{name}={getattr(self, name)!r}" for name in params if name != "self" and hasattr(self, name)]
        return f"{type(self).__name__}({', '.join(args)})"


class _TransformToAug(Augmentation):
    """Wrap a fixed Transform so it can sit in an augmentation list."""

    def __init__(self, tfm: Transform) -> None:
        self.tfm = tfm

    def get_transform(self, *args: Any) -> Transform:
        return self.tfm


class AugmentationList(Augmentation):
    """Apply a sequence of augmentations (or fixed Transforms) one after another.

    Each augmentation sees the inputs as transformed by the ones before it.
    """

    def __init__(self, augs: Sequence[Union[Augmentation, Transform]]) -> None:
        self.augs: List[Augmentation] = [a if isinstance(a, Augmentation) else _TransformToAug(a) for a in augs]

    def __call__(self, aug_input: AugInput) -> TransformList:
        return TransformList([aug(aug_input) for aug in self.augs])

    def __repr__(self) -> str:
        return f"AugmentationList[{', '.join(repr(a) for a in self.augs)}]"


def apply_augmentations(augmentations: Sequence[Union[Augmentation, Transform]], inputs: AugInput) -> TransformList:
    """Apply ``augmentations`` to ``inputs`` (modified in place) and return the TransformList used.

    Reuse the returned transforms on annotations, e.g. ``tfms.apply_box(boxes)``.
    """
    if not isinstance(inputs, AugInput):
        raise TypeError(
            f"apply_augmentations takes an AugInput, got {type(inputs).__name__}. "
            f"Wrap the image: inputs = AugInput(image, sem_seg=...); then read inputs.image."
        )
    return inputs.apply_augmentations(augmentations)


# detectron2's older names
TransformGen = Augmentation
StandardAugInput = AugInput
apply_transform_gens = apply_augmentations
