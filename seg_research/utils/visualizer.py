"""Draw predictions and ground truth on an image: instance masks and boxes, semantic and panoptic maps.

Conventions: images are (H, W, 3) uint8 RGB; boxes are XYXY absolute pixels and masks (H, W)
of the image given to :class:`Visualizer`; class ids are 0-based contiguous ids indexing the
metadata's ``thing_classes`` (instances, panoptic things) or ``stuff_classes`` (semantic maps,
panoptic stuff), with colours from ``thing_colors`` / ``stuff_colors`` (RGB 0..255) when the
metadata has them. Fills, contours and boxes are drawn with OpenCV, labels with Pillow's
scalable default font; font size and line width grow with the image, and labels are kept
inside it.
"""
from __future__ import annotations

import colorsys
import functools
import math
import os
from enum import IntEnum
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..data.catalog import Metadata
from ..data.detection_utils import annotations_to_instances, read_panoptic_ids, read_record_sem_seg
from ..structures import BitMasks, Boxes, Instances, PolygonMasks
from .file_io import atomic_write_bytes

__all__ = ["ColorMode", "VisImage", "VisImageWriter", "Visualizer", "class_color", "shade_color"]

Color = Tuple[int, int, int]
ArrayLike = Union[np.ndarray, torch.Tensor]

# Lightness offsets (HLS) of successive instances of one class: 0 is the class colour itself.
_SHADE_STEPS = (0.0, -0.16, 0.16, -0.28, 0.28, -0.08, 0.08, -0.22, 0.22)
_LABEL_BACKGROUND_ALPHA = 0.6  # darkening of the image under a label
_GOLDEN_RATIO_CONJUGATE = 0.618033988749895


class ColorMode(IntEnum):
    """How instances (and panoptic things) are coloured.

    IMAGE: each instance in its own shade of its class colour, over the image.
    SEGMENTATION: every instance in the exact colour of its class (same class, same colour).
    IMAGE_BW: as IMAGE, with the image turned gray where there is no instance mask.
    """

    IMAGE = 0
    SEGMENTATION = 1
    IMAGE_BW = 2


def class_color(metadata: Metadata, class_id: int, thing: bool = True) -> Color:
    """RGB colour of a contiguous class id: ``thing_colors`` / ``stuff_colors`` of ``metadata``,
    else a fixed colour of a palette of well-separated hues (same id, same colour)."""
    colors = metadata.get("thing_colors" if thing else "stuff_colors")
    if colors is not None and 0 <= class_id < len(colors):
        return tuple(int(c) for c in colors[class_id])  # type: ignore[return-value]
    hue = (class_id * _GOLDEN_RATIO_CONJUGATE + (0.0 if thing else 0.5)) % 1.0
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, 0.75, 0.95))  # type: ignore[return-value]


def shade_color(color: Color, index: int) -> Color:
    """The ``index``-th shade of ``color`` (index 0 is ``color``): lighter or darker, same hue."""
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255.0 for c in color))
    if index % len(_SHADE_STEPS):
        lightness = min(max(lightness + _SHADE_STEPS[index % len(_SHADE_STEPS)], 0.15), 0.85)
    return tuple(int(round(255 * c)) for c in colorsys.hls_to_rgb(h, lightness, s))  # type: ignore[return-value]


def _scale_color(color: Color, factor: float, towards: int = 0) -> Color:
    """Mix ``color`` with gray level ``towards`` (0 black, 255 white); ``factor`` 1 keeps ``color``."""
    return tuple(int(round(towards + factor * (c - towards))) for c in color)  # type: ignore[return-value]


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _interior_point(mask: np.ndarray) -> Tuple[int, int]:
    """(x, y) of the pixel of ``mask`` farthest from its border and from the image border."""
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


class VisImage:
    """The canvas a :class:`Visualizer` draws on: an (H, W, 3) uint8 RGB array."""

    def __init__(self, img: np.ndarray) -> None:
        self.img = np.ascontiguousarray(img, dtype=np.uint8)

    @property
    def height(self) -> int:
        return self.img.shape[0]

    @property
    def width(self) -> int:
        return self.img.shape[1]

    def get_image(self) -> np.ndarray:
        """A copy of the drawing: (H, W, 3) uint8 RGB."""
        return self.img.copy()

    def save(self, path: str) -> None:
        """Write the drawing atomically; the format follows the extension (``.png`` lossless, ``.jpg``)."""
        ext = os.path.splitext(path)[1] or ".png"
        try:
            ok, encoded = cv2.imencode(ext, self.img[:, :, ::-1])
        except cv2.error:
            ok = False
        if not ok:
            raise ValueError(f"Cannot encode an image as '{ext}' for '{path}'; use a .png or .jpg file name.")
        atomic_write_bytes(path, encoded.tobytes())


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


class Visualizer:
    """Draws on a copy of an image; each ``draw_*`` method adds to the same drawing and returns it.

    Args:
        img_rgb: (H, W, 3) RGB image (also accepted: (H, W) or (H, W, 1) grayscale, (H, W, 4)
            RGBA whose alpha is dropped); values are clipped to 0..255 and stored as uint8.
        metadata: class names and colours (``thing_classes, thing_colors, stuff_classes,
            stuff_colors``) and ``ignore_label`` (default 255) of semantic maps.
        scale: the drawing is ``scale`` times the image size; inputs of the ``draw_*``
            methods stay in image coordinates.
        instance_mode: a :class:`ColorMode`.

    Example::

        vis = Visualizer(image_bgr[:, :, ::-1], MetadataCatalog.get("shapes_val"))
        vis.draw_instance_predictions(outputs["instances"].to("cpu")).save("out.png")
    """

    def __init__(self, img_rgb: ArrayLike, metadata: Optional[Metadata] = None, scale: float = 1.0,
                 instance_mode: ColorMode = ColorMode.IMAGE) -> None:
        img = _numpy(img_rgb)
        if img.ndim == 2:
            img = img[:, :, None]
        if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or min(img.shape[:2]) == 0:
            raise ValueError(f"Visualizer expects an (H, W, 3) RGB image (or (H, W), (H, W, 1), (H, W, 4)), "
                             f"got shape {img.shape}. Convert CHW tensors with image.permute(1, 2, 0).")
        if scale <= 0:
            raise ValueError(f"Visualizer scale must be > 0, got {scale}.")
        img = np.clip(img, 0, 255).astype(np.uint8)
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
        self.metadata = metadata if metadata is not None else Metadata()
        self.instance_mode = ColorMode(instance_mode)
        self.input_size = img.shape[:2]
        self.scale = float(scale)
        out_h, out_w = (max(1, int(round(s * self.scale))) for s in self.input_size)
        if (out_h, out_w) != self.input_size:
            img = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        self.output = VisImage(img)
        self.font_size = max(9, int(round(math.sqrt(out_h * out_w) / 40)))
        self.line_width = max(1, int(round(self.font_size / 9)))

    # ------------------------------------------------------------------ public drawing API
    def draw_instance_predictions(self, predictions: Instances) -> VisImage:
        """Draw a model's instance predictions.

        Args:
            predictions: Instances of the image with any of ``pred_boxes`` (Boxes, XYXY
                absolute), ``scores`` (float (N,)), ``pred_classes`` (int64 (N,), contiguous),
                ``pred_masks`` ((N, H, W) bool/uint8, or float probabilities cut at 0.5).
                Labels read ``"<class> <score>%"``.
        """
        masks = None
        if predictions.has("pred_masks"):
            masks = _numpy(predictions.pred_masks)
            masks = masks > 0.5 if np.issubdtype(masks.dtype, np.floating) else masks.astype(bool)
        return self._draw_instances(
            len(predictions),
            classes=predictions.pred_classes if predictions.has("pred_classes") else None,
            boxes=predictions.pred_boxes if predictions.has("pred_boxes") else None,
            masks=masks,
            scores=predictions.scores if predictions.has("scores") else None,
        )

    def draw_gt_instances(self, instances: Instances) -> VisImage:
        """Draw training targets: Instances with ``gt_boxes`` (XYXY absolute), ``gt_classes``
        (contiguous) and optionally ``gt_masks`` (BitMasks or PolygonMasks), as built by
        ``DatasetMapper`` for the (augmented) image given to the Visualizer."""
        masks = None
        if instances.has("gt_masks"):
            gt_masks = instances.gt_masks
            if isinstance(gt_masks, PolygonMasks):
                gt_masks = BitMasks.from_polygon_masks(gt_masks, *self.input_size)
            masks = gt_masks.tensor
        return self._draw_instances(len(instances), classes=instances.gt_classes, boxes=instances.gt_boxes,
                                    masks=masks)

    def draw_sem_seg(self, sem_seg: ArrayLike, area_threshold: Optional[int] = None, alpha: float = 0.6,
                     legend: bool = False) -> VisImage:
        """Draw a semantic map: each class in its ``stuff_colors`` colour, named at its region's centre.

        Args:
            sem_seg: (H, W) integer class ids (contiguous, indexing ``stuff_classes``);
                ``metadata.ignore_label`` (default 255) pixels are not drawn. For logits
                (C, H, W) pass ``sem_seg.argmax(dim=0)``.
            area_threshold: classes covering fewer pixels are not drawn.
            alpha: opacity of the fill.
            legend: also list the drawn classes with their colours in the top-right corner.
        """
        labels = self._label_map(sem_seg, "sem_seg")
        ignore = self.metadata.get("ignore_label", 255)
        ids, areas = np.unique(labels, return_counts=True)
        names = self.metadata.get("stuff_classes") or []
        regions = []
        for cid, area in zip(ids.tolist(), areas.tolist()):
            if cid == ignore or (area_threshold is not None and area < area_threshold):
                continue
            name = names[cid] if 0 <= cid < len(names) else str(cid)
            regions.append((self._resize_mask(labels == cid), class_color(self.metadata, cid, thing=False), name))
        self._draw_regions(regions, alpha)
        if legend:
            self._draw_legend([(name, color) for _, color, name in regions])
        return self.output

    def draw_panoptic_seg(self, panoptic_seg: ArrayLike, segments_info: Sequence[Dict[str, Any]],
                          area_threshold: Optional[int] = None, alpha: float = 0.6) -> VisImage:
        """Draw a panoptic map: stuff in its class colour, things in per-instance shades of theirs.

        Args:
            panoptic_seg: (H, W) integer segment ids; ids absent from ``segments_info``
                (e.g. 0, void) are not drawn.
            segments_info: ``[{id, category_id, isthing, score (optional)}]``; ``category_id``
                indexes ``thing_classes`` when ``isthing`` else ``stuff_classes``.
            area_threshold: segments with fewer pixels are not drawn.
            alpha: opacity of the fill.
        """
        ids = self._label_map(panoptic_seg, "panoptic_seg")
        thing_names = self.metadata.get("thing_classes") or []
        stuff_names = self.metadata.get("stuff_classes") or []
        shades: Dict[int, int] = {}
        stuff, things, thing_masks = [], [], []
        for seg in segments_info:
            mask = ids == seg["id"]
            area = int(mask.sum())
            if area == 0 or (area_threshold is not None and area < area_threshold):
                continue
            cid, isthing = int(seg["category_id"]), bool(seg.get("isthing", True))
            names = thing_names if isthing else stuff_names
            name = self._class_label(cid, seg.get("score"), names)
            color = class_color(self.metadata, cid, thing=isthing)
            if isthing and self.instance_mode != ColorMode.SEGMENTATION:
                color = shade_color(color, shades.setdefault(cid, 0))
                shades[cid] += 1
            if isthing:
                thing_masks.append(mask)
            (things if isthing else stuff).append((self._resize_mask(mask), color, name))
        if self.instance_mode == ColorMode.IMAGE_BW:
            self._gray_outside(np.any(thing_masks, axis=0) if thing_masks else np.zeros(ids.shape, dtype=bool))
        self._draw_regions(stuff + things, alpha)
        return self.output

    def draw_dataset_dict(self, dic: Dict[str, Any]) -> VisImage:
        """Draw the ground truth of a dataset dict (the image itself is the one given to the Visualizer).

        Draws, when present: ``annotations`` (boxes in any ``bbox_mode``, polygon / RLE
        ``segmentation``, contiguous ``category_id``; crowd regions labelled ``"<class> crowd"``),
        the semantic map of ``sem_seg_file_name`` (a 0/1 mask with ``sem_seg_binary``) and the
        panoptic map of ``pan_seg_file_name`` with ``segments_info``.

        Raises:
            DataError: naming the file or record at fault for unreadable files or malformed
                annotations (e.g. an RLE whose size is not the image's).
        """
        annos = dic.get("annotations")
        if annos:
            instances = annotations_to_instances(annos, self.input_size, mask_format="bitmask")
            self._draw_instances(len(instances), classes=instances.gt_classes, boxes=instances.gt_boxes,
                                 masks=instances.gt_masks.tensor if instances.has("gt_masks") else None,
                                 suffixes=[" crowd" if a.get("iscrowd", 0) else "" for a in annos])
        if "sem_seg_file_name" in dic:
            self.draw_sem_seg(read_record_sem_seg(dic), alpha=0.5)
        if "pan_seg_file_name" in dic:
            self.draw_panoptic_seg(read_panoptic_ids(dic["pan_seg_file_name"]), dic.get("segments_info", []))
        return self.output

    def overlay_instances(self, *, boxes: Optional[Union[Boxes, ArrayLike]] = None,
                          labels: Optional[Sequence[str]] = None, masks: Optional[ArrayLike] = None,
                          assigned_colors: Optional[Sequence[Color]] = None, alpha: float = 0.5) -> VisImage:
        """Draw N instances: translucent mask fill with a darker contour, box outline, label.

        Larger instances are drawn first so that smaller ones stay visible; labels go above
        the box's top-left corner (inside it at the image top), or at the mask's centre
        without a box.

        Args:
            boxes: (N, 4) XYXY absolute pixels (Boxes, tensor or array).
            labels: N strings.
            masks: (N, H, W) bool masks at the image size.
            assigned_colors: N RGB colours (default: a palette colour per instance).
            alpha: opacity of the mask fill.
        """
        box_array = _numpy(boxes.tensor if isinstance(boxes, Boxes) else boxes).reshape(-1, 4) \
            if boxes is not None else None
        mask_array = _numpy(masks).astype(bool) if masks is not None else None
        counts = {name: len(x) for name, x in (("boxes", box_array), ("labels", labels), ("masks", mask_array),
                                               ("assigned_colors", assigned_colors)) if x is not None}
        if len(set(counts.values())) > 1:
            raise ValueError(f"overlay_instances: the inputs describe different numbers of instances: {counts}.")
        n = next(iter(counts.values()), 0)
        if mask_array is not None and n and mask_array.shape[1:] != self.input_size:
            raise ValueError(f"overlay_instances: masks have size {mask_array.shape[1:]} but the image is "
                             f"{self.input_size}; paste masks at the image size first.")
        colors = list(assigned_colors) if assigned_colors is not None else [class_color(self.metadata, i)
                                                                          for i in range(n)]
        if mask_array is not None:
            areas = mask_array.reshape(n, -1).sum(axis=1)
        elif box_array is not None:
            areas = (box_array[:, 2] - box_array[:, 0]) * (box_array[:, 3] - box_array[:, 1])
        else:
            areas = np.zeros(n)
        pending_labels = []
        for i in np.argsort(-areas, kind="stable").tolist():
            mask = self._resize_mask(mask_array[i]) if mask_array is not None else None
            if mask is not None:
                self._fill(mask, colors[i], alpha)
                self._contour(mask, _scale_color(colors[i], 0.6))
            if box_array is not None:
                x0, y0, x1, y1 = (float(v) * self.scale for v in box_array[i])
                self._rectangle(x0, y0, x1, y1, colors[i])
                if labels is not None:
                    pending_labels.append((labels[i], (x0, y0), colors[i], "above"))
            elif labels is not None and mask is not None and mask.any():
                pending_labels.append((labels[i], _interior_point(mask), colors[i], "center"))
        for text, xy, color, anchor in pending_labels:
            self._text(text, xy, color, anchor)
        return self.output

    # ------------------------------------------------------------------ helpers
    def _draw_instances(self, n: int, *, classes: Optional[ArrayLike], boxes: Optional[Union[Boxes, ArrayLike]],
                        masks: Optional[ArrayLike], scores: Optional[ArrayLike] = None,
                        suffixes: Optional[Sequence[str]] = None) -> VisImage:
        """Labels "<class>[ <score>%][<suffix>]" and colours by class and :class:`ColorMode`, then overlay."""
        class_list = [int(c) for c in _numpy(classes)] if classes is not None else None
        score_list = _numpy(scores).tolist() if scores is not None else None
        labels = [self._class_label(class_list[i] if class_list else None, score_list[i] if score_list else None)
                  + (suffixes[i] if suffixes else "") for i in range(n)]
        if self.instance_mode == ColorMode.IMAGE_BW and masks is not None:
            self._gray_outside(_numpy(masks).astype(bool).reshape(n, *self.input_size).any(axis=0))
        colors = self._instance_colors(class_list if class_list is not None else list(range(n)))
        return self.overlay_instances(boxes=boxes, labels=labels, masks=masks, assigned_colors=colors,
                                      alpha=0.65 if self.instance_mode == ColorMode.SEGMENTATION else 0.5)

    def _class_label(self, class_id: Optional[int], score: Optional[float],
                     names: Optional[Sequence[str]] = None) -> str:
        if names is None:
            names = self.metadata.get("thing_classes") or []
        text = "" if class_id is None else (names[class_id] if 0 <= class_id < len(names) else str(class_id))
        if score is not None:
            text = f"{text} {100 * float(score):.0f}%".strip()
        return text

    def _instance_colors(self, classes: Sequence[int]) -> List[Color]:
        colors = [class_color(self.metadata, c) for c in classes]
        if self.instance_mode == ColorMode.SEGMENTATION:
            return colors
        seen: Dict[int, int] = {}
        shaded = []
        for c, color in zip(classes, colors):
            shaded.append(shade_color(color, seen.setdefault(c, 0)))
            seen[c] += 1
        return shaded

    def _label_map(self, labels: ArrayLike, what: str) -> np.ndarray:
        array = _numpy(labels)
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what} must be an (H, W) integer map, got shape {array.shape} and dtype {array.dtype}"
                             f"{'; pass logits through argmax(dim=0)' if array.ndim == 3 else ''}.")
        if array.shape != self.input_size:
            raise ValueError(f"{what} has size {array.shape} but the image is {self.input_size}.")
        return array.astype(np.int64)

    def _resize_mask(self, mask: np.ndarray) -> np.ndarray:
        if self.output.img.shape[:2] == mask.shape:
            return mask
        resized = cv2.resize(mask.astype(np.uint8), (self.output.width, self.output.height),
                             interpolation=cv2.INTER_NEAREST)
        return resized.astype(bool)

    def _gray_outside(self, mask: np.ndarray) -> None:
        img = self.output.img
        gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        outside = ~self._resize_mask(mask)
        img[outside] = gray[outside]

    def _fill(self, mask: np.ndarray, color: Color, alpha: float) -> None:
        img = self.output.img
        blended = img[mask].astype(np.float32) * (1.0 - alpha) + np.asarray(color, dtype=np.float32) * alpha
        img[mask] = np.round(blended).astype(np.uint8)

    def _contour(self, mask: np.ndarray, color: Color) -> None:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(self.output.img, contours, -1, color, self.line_width, cv2.LINE_AA)

    def _rectangle(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        # XYXY covers pixels [x0, x1) x [y0, y1): the outline runs on its outermost pixels.
        p0 = (int(round(x0)), int(round(y0)))
        p1 = (max(p0[0], int(round(x1)) - 1), max(p0[1], int(round(y1)) - 1))
        cv2.rectangle(self.output.img, p0, p1, color, self.line_width, cv2.LINE_AA)

    def _draw_regions(self, regions: Sequence[Tuple[np.ndarray, Color, str]], alpha: float) -> None:
        """Fill and outline each (mask at output size, colour, label) region, then label it at its centre."""
        for mask, color, _ in regions:
            self._fill(mask, color, alpha)
            self._contour(mask, _scale_color(color, 0.6))
        for mask, color, name in regions:
            if mask.any():
                self._text(name, _interior_point(mask), color, "center")

    def _label_box(self, text: str) -> Tuple[int, int, Tuple[int, int, int, int], int]:
        """(width, height, text bbox, padding) of a label in output pixels."""
        bbox = _font(self.font_size).getbbox(text)
        pad = max(1, self.font_size // 6)
        return bbox[2] - bbox[0] + 2 * pad, bbox[3] - bbox[1] + 2 * pad, bbox, pad

    def _text(self, text: str, xy: Tuple[float, float], color: Color, anchor: str) -> None:
        """Label on a darkened box; ``anchor`` "above": box bottom-left at ``xy`` (inside the
        image), "center": box centred on ``xy``. The box is shifted to stay inside the image."""
        if not text:
            return
        w, h, bbox, pad = self._label_box(text)
        x, y = xy
        if anchor == "center":
            x, y = x - w / 2, y - h / 2
        elif y - h >= 0:
            y = y - h
        x0 = int(round(min(max(x, 0), max(self.output.width - w, 0))))
        y0 = int(round(min(max(y, 0), max(self.output.height - h, 0))))
        self._text_on_dark_box(text, x0, y0, w, h, bbox, pad, _scale_color(color, 0.5, towards=255))

    def _text_on_dark_box(self, text: str, x0: int, y0: int, w: int, h: int, bbox: Tuple[int, int, int, int],
                          pad: int, fill: Color) -> None:
        """Darken the (w, h) box at (x0, y0) (cut at the image border) and write ``text`` in it."""
        region = self.output.img[y0:y0 + h, x0:x0 + w]
        dark = np.round(region.astype(np.float32) * (1 - _LABEL_BACKGROUND_ALPHA)).astype(np.uint8)
        canvas = Image.fromarray(dark)
        ImageDraw.Draw(canvas).text((pad - bbox[0], pad - bbox[1]), text, font=_font(self.font_size), fill=fill)
        region[...] = np.asarray(canvas)

    def _draw_legend(self, entries: Sequence[Tuple[str, Color]]) -> None:
        """One row per (name, colour) in the top-right corner: a colour swatch and the name."""
        if not entries:
            return
        rows = [self._label_box(name) for name, _ in entries]
        row_h = max(h for _, h, _, _ in rows)
        width = row_h + max(w for w, _, _, _ in rows)
        x0 = max(self.output.width - width, 0)
        for k, ((name, color), (_, _, bbox, pad)) in enumerate(zip(entries, rows)):
            y0 = k * row_h
            if y0 >= self.output.height:
                break
            cv2.rectangle(self.output.img, (x0, y0), (x0 + row_h - 1, y0 + row_h - 1), color, -1)
            self._text_on_dark_box(name, x0 + row_h, y0, width - row_h, row_h, bbox, pad, (255, 255, 255))
