"""Raster drawing primitives: translucent fills, contours, boxes, lines, and labels (Pillow's
scalable default font on a darkened box).

The functions draw in place on an (H, W, 3) uint8 RGB canvas, in canvas pixels, clipped to
it. :class:`Painter` draws them on a :class:`VisImage` in image pixels, under detectron2's
primitive names (``draw_text``, ``draw_box``, ``draw_binary_mask``, ``draw_polygon``,
``draw_line``, ``draw_circle``); the Visualizer builds its drawings from it.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .colormap import Color, random_color, scale_color, to_rgb255
from .vis_image import VisImage
from .vis_masks import GenericMask, convert_masks

__all__ = ["Painter", "to_numpy", "fill", "draw_contour", "draw_rectangle", "draw_polyline", "label_size", "draw_label",
           "draw_legend", "interior_point", "gray_outside"]

ArrayLike = Union[np.ndarray, torch.Tensor]

_LABEL_BACKGROUND_ALPHA = 0.6  # darkening of the canvas under a label


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def fill(img: np.ndarray, mask: np.ndarray, color: Color, alpha: float) -> None:
    """Blend ``color`` at opacity ``alpha`` into the pixels of the (H, W) bool ``mask``."""
    blended = img[mask].astype(np.float32) * (1.0 - alpha) + np.asarray(color, dtype=np.float32) * alpha
    img[mask] = np.round(blended).astype(np.uint8)


def draw_contour(img: np.ndarray, mask: np.ndarray, color: Color, line_width: int) -> None:
    """Outline every outer and hole contour of the (H, W) bool ``mask``."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(img, contours, -1, color, line_width, cv2.LINE_AA)


def draw_rectangle(img: np.ndarray, box: Sequence[float], color: Color, line_width: int) -> None:
    """Outline an XYXY box; it covers pixels [x0, x1) x [y0, y1), so the line runs on its outermost pixels."""
    x0, y0, x1, y1 = box
    p0 = (int(round(x0)), int(round(y0)))
    p1 = (max(p0[0], int(round(x1)) - 1), max(p0[1], int(round(y1)) - 1))
    cv2.rectangle(img, p0, p1, color, line_width, cv2.LINE_AA)


def draw_polyline(img: np.ndarray, points: np.ndarray, color: Color, line_width: int, closed: bool) -> None:
    """Join (K, 2) float (x, y) points by straight lines (a closed polygon when ``closed``)."""
    pts = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)).astype(np.int32)
    cv2.polylines(img, [pts], closed, color, line_width, cv2.LINE_AA)


def label_size(text: str, font_size: int) -> Tuple[int, int]:
    """(width, height) in pixels of the box :func:`draw_label` draws for ``text``."""
    bbox = _font(font_size).getbbox(text)
    pad = max(1, font_size // 6)
    return bbox[2] - bbox[0] + 2 * pad, bbox[3] - bbox[1] + 2 * pad


def draw_label(img: np.ndarray, text: str, x0: float, y0: float, text_color: Color, font_size: int,
               box_width: int = 0) -> None:
    """Write ``text`` on a darkened box whose top-left corner is (x0, y0), shifted to stay inside
    the canvas (cut only when the canvas is smaller than the box); ``box_width`` widens the box."""
    if not text:
        return
    w, h = label_size(text, font_size)
    w = max(w, box_width)
    height, width = img.shape[:2]
    x0 = int(round(min(max(x0, 0), max(width - w, 0))))
    y0 = int(round(min(max(y0, 0), max(height - h, 0))))
    region = img[y0:y0 + h, x0:x0 + w]
    dark = np.round(region.astype(np.float32) * (1 - _LABEL_BACKGROUND_ALPHA)).astype(np.uint8)
    canvas = Image.fromarray(dark)
    bbox = _font(font_size).getbbox(text)
    pad = max(1, font_size // 6)
    ImageDraw.Draw(canvas).text((pad - bbox[0], pad - bbox[1]), text, font=_font(font_size), fill=text_color)
    region[...] = np.asarray(canvas)


def draw_legend(img: np.ndarray, entries: Sequence[Tuple[str, Color]], font_size: int) -> None:
    """One row per (name, colour) in the top-right corner: a solid colour swatch and the name."""
    if not entries:
        return
    sizes = [label_size(name, font_size) for name, _ in entries]
    row_h = max(h for _, h in sizes)
    width = row_h + max(w for w, _ in sizes)
    x0 = max(img.shape[1] - width, 0)
    for k, (name, color) in enumerate(entries):
        y0 = k * row_h
        if y0 >= img.shape[0]:
            break
        cv2.rectangle(img, (x0, y0), (x0 + row_h - 1, y0 + row_h - 1), color, -1)
        draw_label(img, name, x0 + row_h, y0, (255, 255, 255), font_size, box_width=width - row_h)


def interior_point(mask: np.ndarray) -> Tuple[int, int]:
    """(x, y) of the pixel of ``mask`` farthest from its border and from the canvas border."""
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def gray_outside(img: np.ndarray, mask: np.ndarray) -> None:
    """Turn the canvas gray (OpenCV's luma) outside the (H, W) bool ``mask``."""
    gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    outside = ~mask
    img[outside] = gray[outside]


def to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class Painter:
    """Primitive drawings on a copy of an image, in image pixels, onto ``self.output`` (a
    :class:`VisImage` at ``scale`` times the image size); each method returns ``self.output``.

    Args:
        img_rgb: (H, W, 3) RGB image (also accepted: (H, W) or (H, W, 1) grayscale, (H, W, 4)
            RGBA whose alpha is dropped); values are clipped to 0..255 and stored as uint8.
        scale: drawing size / image size.

    Colours are RGB 0..255, matplotlib RGB 0..1 or matplotlib names (:func:`to_rgb255`).
    """

    def __init__(self, img_rgb: ArrayLike, scale: float = 1.0) -> None:
        img = to_numpy(img_rgb)
        if img.ndim == 2:
            img = img[:, :, None]
        if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or min(img.shape[:2]) == 0:
            raise ValueError(f"Visualizer expects an (H, W, 3) RGB image (or (H, W), (H, W, 1), (H, W, 4)), "
                             f"got shape {img.shape}. Convert CHW tensors with image.permute(1, 2, 0).")
        if scale <= 0:
            raise ValueError(f"Visualizer scale must be > 0, got {scale}.")
        img = np.clip(img, 0, 255).astype(np.uint8)
        self.img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else np.ascontiguousarray(img[:, :, :3])
        self.input_size = self.img.shape[:2]
        self.scale = float(scale)
        self.output = VisImage(self.img, scale=self.scale)
        out_h, out_w = self.output.img.shape[:2]
        self.font_size = max(9, int(round(math.sqrt(out_h * out_w) / 40)))
        self.line_width = max(1, int(round(self.font_size / 9)))

    def get_output(self) -> VisImage:
        return self.output

    def draw_text(self, text: str, position: Tuple[float, float], *, font_size: Optional[float] = None,
                  color: Any = "g", horizontal_alignment: str = "center", rotation: float = 0) -> VisImage:
        """Write ``text`` on a dark box whose top edge is at ``position`` (x, y image pixels),
        aligned on x by ``horizontal_alignment`` ("left", "center", "right"); ``font_size`` in
        image pixels (default: grows with the image). Only ``rotation=0`` is drawn."""
        if rotation:
            raise ValueError("draw_text: rotated text is not supported; pass rotation=0.")
        if horizontal_alignment not in ("left", "center", "right"):
            raise ValueError(f"draw_text: horizontal_alignment must be 'left', 'center' or 'right', "
                             f"got {horizontal_alignment!r}.")
        size = max(1, int(round(font_size * self.scale))) if font_size else self.font_size
        w, _ = label_size(text, size)
        x, y = position[0] * self.scale, position[1] * self.scale
        x -= {"left": 0, "center": w / 2, "right": w}[horizontal_alignment]
        draw_label(self.output.img, text, x, y, to_rgb255(color), size)
        return self.output

    def draw_box(self, box_coord: Sequence[float], alpha: float = 0.5, edge_color: Any = "g",
                 line_style: str = "-") -> VisImage:
        """Outline the XYXY box ``box_coord`` (image pixels) in ``edge_color`` at opacity ``alpha``
        (solid lines only: ``line_style="-"``)."""
        if line_style != "-":
            raise ValueError(f"draw_box: only solid outlines (line_style='-') are drawn, got {line_style!r}.")
        outline = np.zeros(self.output.img.shape[:2], dtype=np.uint8)
        draw_rectangle(outline, [float(v) * self.scale for v in box_coord], 1, self.line_width)
        fill(self.output.img, outline.astype(bool), to_rgb255(edge_color), alpha)
        return self.output

    def draw_binary_mask(self, binary_mask: ArrayLike, color: Any = None, *, edge_color: Any = None,
                         text: Optional[str] = None, alpha: float = 0.5, area_threshold: float = 0) -> VisImage:
        """Fill the (H, W) 0/1 mask in ``color`` (default: a random palette colour) at opacity
        ``alpha`` with an ``edge_color`` contour (default: a darker ``color``), leaving out
        connected components under ``area_threshold`` pixels; write ``text`` at its centre."""
        mask = convert_masks(to_numpy(binary_mask)[None], *self.input_size)[0]
        if area_threshold:
            count, components, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
            small = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] < area_threshold]
            mask &= ~np.isin(components, small)
        fill_color = to_rgb255(color) if color is not None else to_rgb255(random_color(rgb=True, maximum=1))
        mask = self._resize_mask(mask)
        fill(self.output.img, mask, fill_color, alpha)
        edge = to_rgb255(edge_color) if edge_color is not None else scale_color(fill_color, 0.6)
        draw_contour(self.output.img, mask, edge, self.line_width)
        if text and mask.any():
            self._text(text, interior_point(mask), fill_color, "center")
        return self.output

    def draw_polygon(self, segment: ArrayLike, color: Any, edge_color: Any = None, alpha: float = 0.5) -> VisImage:
        """Fill the polygon of (K, 2) (x, y) image pixels in ``color`` at opacity ``alpha``, outlined
        in ``edge_color`` (default: a darker ``color``)."""
        flat = to_numpy(segment).astype(np.float64).reshape(-1)
        return self.draw_binary_mask(GenericMask([flat], *self.input_size).mask, color, edge_color=edge_color,
                                     alpha=alpha)

    def draw_line(self, x_data: Sequence[float], y_data: Sequence[float], color: Any, linestyle: str = "-",
                  linewidth: Optional[float] = None) -> VisImage:
        """Join the points (x_data[k], y_data[k]) (image pixels) by solid lines; ``linewidth`` in
        image pixels (default: grows with the image)."""
        if linestyle != "-":
            raise ValueError(f"draw_line: only solid lines (linestyle='-') are drawn, got {linestyle!r}.")
        width = max(1, int(round(linewidth * self.scale))) if linewidth else self.line_width
        points = np.stack([np.asarray(x_data, dtype=np.float64), np.asarray(y_data, dtype=np.float64)], axis=1)
        draw_polyline(self.output.img, points * self.scale, to_rgb255(color), width, closed=False)
        return self.output

    def draw_circle(self, circle_coord: Sequence[float], color: Any, radius: float = 3) -> VisImage:
        """A filled disc of ``radius`` image pixels centred at (x, y) ``circle_coord``."""
        x, y = (int(round(float(v) * self.scale)) for v in circle_coord)
        cv2.circle(self.output.img, (x, y), max(1, int(round(radius * self.scale))), to_rgb255(color), -1,
                   cv2.LINE_AA)
        return self.output

    def _resize_mask(self, mask: np.ndarray) -> np.ndarray:
        height, width = self.output.img.shape[:2]
        if (height, width) == mask.shape:
            return mask
        return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)

    def _gray_outside(self, mask: np.ndarray) -> None:
        gray_outside(self.output.img, self._resize_mask(mask))

    def _draw_regions(self, regions: Sequence[Tuple[np.ndarray, Color, str]], alpha: float) -> None:
        """Fill and outline each (mask at output size, colour, label) region, then label it at its centre."""
        for mask, color, _ in regions:
            fill(self.output.img, mask, color, alpha)
            draw_contour(self.output.img, mask, scale_color(color, 0.6), self.line_width)
        for mask, color, name in regions:
            if mask.any():
                self._text(name, interior_point(mask), color, "center")

    def _text(self, text: str, xy: Tuple[float, float], color: Color, anchor: str) -> None:
        """Label in a lighter ``color``; ``anchor`` "above": box bottom-left at ``xy`` (canvas
        pixels; inside the image at its top), "center": box centred on ``xy``."""
        w, h = label_size(text, self.font_size)
        x, y = xy
        if anchor == "center":
            x, y = x - w / 2, y - h / 2
        elif y - h >= 0:
            y = y - h
        draw_label(self.output.img, text, x, y, scale_color(color, 0.5, towards=255), self.font_size)
