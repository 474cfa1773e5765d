"""Draw predictions and ground truth on an image: instance masks and boxes, semantic and panoptic maps.

Conventions: images are (H, W, 3) uint8 RGB; boxes are XYXY absolute pixels and masks (H, W)
of the image given to :class:`Visualizer`; class ids are 0-based contiguous ids indexing the
metadata's ``thing_classes`` (instances, panoptic things) or ``stuff_classes`` (semantic maps,
panoptic stuff), with colours from ``thing_colors`` / ``stuff_colors`` (RGB 0..255) when the
metadata has them. The public methods and their arguments are detectron2's
(``draw_instance_predictions``, ``draw_dataset_dict``, ``draw_sem_seg``, ``draw_panoptic_seg``,
``overlay_instances``, ``draw_text/box/binary_mask/polygon/line/circle``); drawing is raster
(OpenCV, Pillow's scalable font) rather than matplotlib: font size and line width grow with
the image, and labels are kept inside it. Colours, the canvas and mask formats live in
:mod:`.colormap`, :mod:`.vis_image` and :mod:`.vis_masks`.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..data.catalog import Metadata
from ..data.detection_utils import annotations_to_instances, read_panoptic_ids, read_record_sem_seg
from ..structures import BitMasks, Boxes, Instances, PolygonMasks
from . import vis_primitives as P
from .colormap import Color, class_color, colormap, random_color, scale_color, shade_color, to_rgb255
from .vis_image import VisImage, VisImageWriter
from .vis_masks import GenericMask, convert_masks
from .vis_primitives import Painter, to_numpy

__all__ = ["ColorMode", "GenericMask", "VisImage", "VisImageWriter", "Visualizer", "class_color", "shade_color",
           "colormap", "random_color", "read_panoptic_ids"]

ArrayLike = Union[np.ndarray, torch.Tensor]


class ColorMode(IntEnum):
    """How instances (and panoptic things) are coloured.

    IMAGE: each instance in its own shade of its class colour, over the image.
    SEGMENTATION: every instance in the exact colour of its class (same class, same colour).
    IMAGE_BW: as IMAGE, with the image turned gray where there is no instance mask.
    """

    IMAGE = 0
    SEGMENTATION = 1
    IMAGE_BW = 2


class Visualizer(Painter):
    """Draws on a copy of an image; each ``draw_*`` method adds to the same drawing and returns it.

    Args:
        img_rgb: (H, W, 3) RGB image (also accepted: (H, W) or (H, W, 1) grayscale, (H, W, 4)
            RGBA whose alpha is dropped); values are clipped to 0..255 and stored as uint8.
        metadata: class names and colours (``thing_classes, thing_colors, stuff_classes,
            stuff_colors``), ``ignore_label`` (default 255) of semantic maps.
        scale: the drawing is ``scale`` times the image size; inputs of the ``draw_*``
            methods stay in image coordinates.
        instance_mode: a :class:`ColorMode`.

    Example::

        vis = Visualizer(image_bgr[:, :, ::-1], MetadataCatalog.get("shapes_val"))
        vis.draw_instance_predictions(outputs["instances"].to("cpu")).save("out.png")
    """

    def __init__(self, img_rgb: ArrayLike, metadata: Optional[Metadata] = None, scale: float = 1.0,
                 instance_mode: ColorMode = ColorMode.IMAGE) -> None:
        super().__init__(img_rgb, scale)
        self.metadata = metadata if metadata is not None else Metadata()
        self.instance_mode = ColorMode(instance_mode)

    # ------------------------------------------------------------------ composite drawings
    def draw_instance_predictions(self, predictions: Instances) -> VisImage:
        """Draw a model's instance predictions.

        Args:
            predictions: Instances of the image with any of ``pred_boxes`` (Boxes or (N, 4)
                XYXY absolute), ``scores`` ((N,)), ``pred_classes`` ((N,) contiguous ids) and
                ``pred_masks``: (N, H, W) bool/uint8 or float probabilities (cut at 0.5), or a
                list of per-instance RLE dicts / polygon lists / bitmaps, as
                ``tools/visualize_json_results.py`` builds from ``coco_instances_results.json``.
                Labels read ``"<class> <score>%"``.
        """
        masks = self._masks(predictions.pred_masks) if predictions.has("pred_masks") else None
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
        masks = self._masks(instances.gt_masks) if instances.has("gt_masks") else None
        return self._draw_instances(len(instances), classes=instances.gt_classes, boxes=instances.gt_boxes,
                                    masks=masks)

    def draw_sem_seg(self, sem_seg: ArrayLike, area_threshold: Optional[int] = None, alpha: float = 0.8,
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
        for cid, area in zip(ids.tolist(), areas.tolist(), strict=True):
            if cid == ignore or (area_threshold is not None and area < area_threshold):
                continue
            name = names[cid] if 0 <= cid < len(names) else str(cid)
            regions.append((self._resize_mask(labels == cid), class_color(self.metadata, cid, thing=False), name))
        self._draw_regions(regions, alpha)
        if legend:
            P.draw_legend(self.output.img, [(name, color) for _, color, name in regions], self.font_size)
        return self.output

    def draw_panoptic_seg(self, panoptic_seg: ArrayLike, segments_info: Optional[Sequence[Dict[str, Any]]],
                          area_threshold: Optional[int] = None, alpha: float = 0.7) -> VisImage:
        """Draw a panoptic map: stuff in its class colour, things in per-instance shades of theirs.

        Args:
            panoptic_seg: (H, W) integer segment ids; ids absent from ``segments_info``
                (e.g. 0, void) are not drawn.
            segments_info: ``[{id, category_id, isthing, score (optional)}]``; ``category_id``
                indexes ``thing_classes`` when ``isthing`` else ``stuff_classes``. None: the
                ids are ``category_id * metadata.label_divisor + instance`` (-1 void), things
                being the categories among ``thing_dataset_id_to_contiguous_id.values()``.
            area_threshold: stuff segments with fewer pixels are not drawn.
            alpha: opacity of the fill.
        """
        ids = self._label_map(panoptic_seg, "panoptic_seg")
        if segments_info is None:
            segments_info = self._segments_from_label_divisor(ids)
        thing_names = self.metadata.get("thing_classes") or []
        stuff_names = self.metadata.get("stuff_classes") or []
        shades: Dict[int, int] = {}
        stuff, things, thing_masks = [], [], []
        for seg in segments_info:
            mask = ids == seg["id"]
            area = int(mask.sum())
            isthing = bool(seg.get("isthing", True))
            if area == 0 or (not isthing and area_threshold is not None and area < area_threshold):
                continue
            cid = int(seg["category_id"])
            name = self._class_label(cid, seg.get("score"), thing_names if isthing else stuff_names)
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

    draw_panoptic_seg_predictions = draw_panoptic_seg  # detectron2's older name

    def draw_dataset_dict(self, dic: Dict[str, Any]) -> VisImage:
        """Draw the ground truth of a dataset dict (the image itself is the one given to the Visualizer).

        Draws, when present: ``annotations`` (boxes in any ``bbox_mode``; ``segmentation`` as
        polygons, RLE with compressed or uncompressed counts, or an (H, W) bitmap;
        contiguous ``category_id``; crowd regions labelled ``"<class> crowd"``), the semantic
        map ``sem_seg`` ((H, W) array) or that of ``sem_seg_file_name`` (a 0/1 mask with
        ``sem_seg_binary``), and the panoptic map ``pan_seg`` ((H, W) ids) or that of
        ``pan_seg_file_name``, with ``segments_info``.

        Raises:
            DataError: naming the file or record at fault for unreadable files or malformed
                annotations (e.g. an RLE whose size is not the image's).
        """
        annos = dic.get("annotations")
        if annos:
            instances = annotations_to_instances(annos, self.input_size, mask_format="bitmask")
            self._draw_instances(len(instances), classes=instances.gt_classes, boxes=instances.gt_boxes,
                                 masks=instances.gt_masks.tensor.numpy() if instances.has("gt_masks") else None,
                                 suffixes=[" crowd" if a.get("iscrowd", 0) else "" for a in annos])
        sem_seg = dic.get("sem_seg")
        if sem_seg is None and "sem_seg_file_name" in dic:
            sem_seg = read_record_sem_seg(dic)
        if sem_seg is not None:
            self.draw_sem_seg(sem_seg, area_threshold=0, alpha=0.5)
        pan_seg = dic.get("pan_seg")
        if pan_seg is None and "pan_seg_file_name" in dic:
            pan_seg = read_panoptic_ids(dic["pan_seg_file_name"])
        if pan_seg is not None:
            self.draw_panoptic_seg(pan_seg, dic.get("segments_info", []), area_threshold=0, alpha=0.5)
        return self.output

    def overlay_instances(self, *, boxes: Optional[Union[Boxes, ArrayLike, Sequence]] = None,
                          labels: Optional[Sequence[str]] = None, masks: Any = None, keypoints: Any = None,
                          assigned_colors: Optional[Sequence[Any]] = None, alpha: float = 0.5) -> VisImage:
        """Draw N instances: translucent mask fill with a darker contour, box outline, label.

        Larger instances are drawn first so that smaller ones stay visible; labels go above
        the box's top-left corner (inside it at the image top), or at the mask's centre
        without a box.

        Args:
            boxes: (N, 4) XYXY absolute pixels (Boxes, tensor, array or list).
            labels: N strings.
            masks: N masks in any format of :func:`~.vis_masks.convert_masks` (PolygonMasks,
                BitMasks, (N, H, W) array/tensor, list of polygon lists / RLE dicts / bitmaps).
            keypoints: not supported (seg_research has no keypoint models); must be None.
            assigned_colors: N colours (RGB 0..255, matplotlib RGB 0..1 or names; default: a
                palette colour per instance).
            alpha: opacity of the mask fill.
        """
        if keypoints is not None:
            raise ValueError("overlay_instances: keypoints are not supported (seg_research has no keypoint "
                             "models); pass keypoints=None.")
        box_array = self._boxes(boxes) if boxes is not None else None
        mask_array = self._masks(masks) if masks is not None else None
        counts = {name: len(x) for name, x in (("boxes", box_array), ("labels", labels), ("masks", mask_array),
                                               ("assigned_colors", assigned_colors)) if x is not None}
        if len(set(counts.values())) > 1:
            raise ValueError(f"overlay_instances: the inputs describe different numbers of instances: {counts}.")
        n = next(iter(counts.values()), 0)
        colors = ([to_rgb255(c) for c in assigned_colors] if assigned_colors is not None
                  else [class_color(self.metadata, i) for i in range(n)])
        if mask_array is not None:
            areas = mask_array.sum(axis=(1, 2))  # (N,) also for N = 0: nothing to draw, image unchanged
        elif box_array is not None:
            areas = (box_array[:, 2] - box_array[:, 0]) * (box_array[:, 3] - box_array[:, 1])
        else:
            areas = np.zeros(n)
        img = self.output.img
        pending_labels = []
        for i in np.argsort(-areas, kind="stable").tolist():
            mask = self._resize_mask(mask_array[i]) if mask_array is not None else None
            if mask is not None:
                P.fill(img, mask, colors[i], alpha)
                P.draw_contour(img, mask, scale_color(colors[i], 0.6), self.line_width)
            if box_array is not None:
                box = [float(v) * self.scale for v in box_array[i]]
                P.draw_rectangle(img, box, colors[i], self.line_width)
                if labels is not None:
                    pending_labels.append((labels[i], (box[0], box[1]), colors[i], "above"))
            elif labels is not None and mask is not None and mask.any():
                pending_labels.append((labels[i], P.interior_point(mask), colors[i], "center"))
        for text, xy, color, anchor in pending_labels:
            self._text(text, xy, color, anchor)
        return self.output

    # ------------------------------------------------------------------ helpers
    def _draw_instances(self, n: int, *, classes: Optional[ArrayLike], boxes: Optional[Union[Boxes, ArrayLike]],
                        masks: Optional[np.ndarray], scores: Optional[ArrayLike] = None,
                        suffixes: Optional[Sequence[str]] = None, colors: Optional[Sequence[Color]] = None
                        ) -> VisImage:
        """Labels "<class>[ <score>%][<suffix>]" and colours (``colors``, else by class and
        :class:`ColorMode`), then overlay."""
        class_list = [int(c) for c in to_numpy(classes)] if classes is not None else None
        score_list = to_numpy(scores).tolist() if scores is not None else None
        labels = [self._class_label(class_list[i] if class_list else None, score_list[i] if score_list else None)
                  + (suffixes[i] if suffixes else "") for i in range(n)]
        if self.instance_mode == ColorMode.IMAGE_BW and masks is not None:
            self._gray_outside(masks.reshape(n, *self.input_size).any(axis=0))
        if colors is None:
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
        for c, color in zip(classes, colors, strict=True):
            shaded.append(shade_color(color, seen.setdefault(c, 0)))
            seen[c] += 1
        return shaded

    def _masks(self, masks: Any) -> np.ndarray:
        """(N, H, W) bool masks at the image size from any accepted format."""
        if isinstance(masks, PolygonMasks):
            masks = BitMasks.from_polygon_masks(masks, *self.input_size)
        return convert_masks(masks, *self.input_size)

    @staticmethod
    def _boxes(boxes: Any) -> np.ndarray:
        array = to_numpy(boxes.tensor if isinstance(boxes, Boxes) else boxes).astype(np.float64)
        if array.size and (array.ndim != 2 or array.shape[1] != 4):
            raise ValueError(f"boxes must be (N, 4) XYXY absolute pixels, got shape {array.shape} "
                             "(rotated (N, 5) boxes are not supported).")
        return array.reshape(-1, 4)

    def _segments_from_label_divisor(self, ids: np.ndarray) -> List[Dict[str, Any]]:
        divisor = self.metadata.get("label_divisor")
        if divisor is None:
            raise ValueError("draw_panoptic_seg: segments_info is None, so the ids are read as category_id * "
                             "label_divisor + instance, but the metadata has no label_divisor; set it or pass "
                             "segments_info.")
        thing_ids = set((self.metadata.get("thing_dataset_id_to_contiguous_id") or {}).values())
        return [{"id": int(i), "category_id": int(i) // divisor, "isthing": int(i) // divisor in thing_ids}
                for i in np.unique(ids).tolist() if i != -1]

    def _label_map(self, labels: ArrayLike, what: str) -> np.ndarray:
        array = to_numpy(labels)
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what} must be an (H, W) integer map, got shape {array.shape} and dtype {array.dtype}"
                             f"{'; pass logits through argmax(dim=0)' if array.ndim == 3 else ''}.")
        if array.shape != self.input_size:
            raise ValueError(f"{what} has size {array.shape} but the image is {self.input_size}.")
        return array.astype(np.int64)

