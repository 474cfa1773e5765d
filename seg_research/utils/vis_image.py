"""The canvas a Visualizer draws on (:class:`VisImage`) and writing drawings to files."""
from __future__ import annotations

import os
from typing import Set, Union

import cv2
import numpy as np

from .file_io import atomic_write_bytes

__all__ = ["VisImage", "VisImageWriter"]


class VisImage:
    """An RGB drawing of an image at ``scale`` times its size, as detectron2's ``VisImage``.

    Attributes:
        img: the canvas, (round(scale * H), round(scale * W), 3) uint8 RGB.
        scale: drawing size / image size.
        height, width: the size of the *image* (H, W), the coordinates that drawing
            methods take; the canvas is ``scale`` times larger.
    """

    def __init__(self, img: np.ndarray, scale: float = 1.0) -> None:
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) == 0:
            raise ValueError(f"VisImage expects an (H, W, 3) RGB image, got shape {img.shape}.")
        if scale <= 0:
            raise ValueError(f"VisImage scale must be > 0, got {scale}.")
        self.scale = float(scale)
        self.height, self.width = img.shape[:2]
        self.reset_image(img)

    def reset_image(self, img: np.ndarray) -> None:
        """Replace the canvas with ``img`` ((H, W, 3) RGB at the image size), dropping what was drawn."""
        img = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        out_h, out_w = (max(1, int(round(s * self.scale))) for s in img.shape[:2])
        if (out_h, out_w) != img.shape[:2]:
            img = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        self.img = np.ascontiguousarray(img)

    def get_image(self) -> np.ndarray:
        """A copy of the drawing: (scale * H, scale * W, 3) uint8 RGB."""
        return self.img.copy()

    def save(self, filepath: str) -> None:
        """Write the drawing atomically; the format follows the extension (``.png`` lossless, ``.jpg``)."""
        ext = os.path.splitext(filepath)[1] or ".png"
        try:
            ok, encoded = cv2.imencode(ext, self.img[:, :, ::-1])
        except cv2.error:
            ok = False
        if not ok:
            raise ValueError(f"Cannot encode an image as '{ext}' for '{filepath}'; use a .png or .jpg file name.")
        atomic_write_bytes(filepath, encoded.tobytes())


class VisImageWriter:
    """Writes drawings into ``output_dir`` as ``<stem of the source image>.png``; a stem seen
    before gets ``_1``, ``_2``, ... so that no drawing of a run overwrites another."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self._taken: Set[str] = set()

    def write(self, drawing: Union[VisImage, np.ndarray], source_file: str) -> str:
        """Save ``drawing`` ((H, W, 3) uint8 RGB) named after ``source_file``; returns the path written."""
        stem = os.path.splitext(os.path.basename(source_file))[0] or "image"
        name, k = stem, 0
        while name in self._taken:
            k += 1
            name = f"{stem}_{k}"
        self._taken.add(name)
        path = os.path.join(self.output_dir, name + ".png")
        (drawing if isinstance(drawing, VisImage) else VisImage(drawing)).save(path)
        return path
