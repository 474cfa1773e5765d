"""Draw predictions on video frames with colours that follow each instance from frame to frame
(detectron2's ``VideoVisualizer``, as ``demo/predictor.py`` uses it)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..data.catalog import Metadata
from ..structures import Instances
from .colormap import Color, class_color, shade_color
from .vis_image import VisImage
from .vis_primitives import to_numpy
from .visualizer import ColorMode, Visualizer

__all__ = ["VideoVisualizer"]

_MATCH_IOU = 0.5  # an instance keeps the colour of the tracked one of its class it overlaps more than this
_TTL = 8  # frames a tracked instance is remembered without being seen


@dataclass
class _Tracked:
    label: int
    mask: np.ndarray  # (H, W) bool: the instance mask, or its filled box when there are no masks
    color: Color
    ttl: int


def _mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of (N, H, W) and (M, H, W) bool masks."""
    a, b = a.reshape(len(a), -1).astype(np.float32), b.reshape(len(b), -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


class VideoVisualizer:
    """Per-frame drawings whose instance colours persist across frames.

    Each instance takes the colour of the instance of the same class tracked in recent frames
    (seen within the last 8) whose mask (or box, without masks) it overlaps with IoU > 0.5;
    otherwise a new shade of its class colour. Semantic and panoptic maps are drawn as by
    :class:`Visualizer` (class colours are the same in every frame).

    Args:
        metadata: class names and colours, as for :class:`Visualizer`.
        instance_mode: :attr:`ColorMode.IMAGE` or :attr:`ColorMode.IMAGE_BW`; SEGMENTATION
            colours by class alone (no tracking needed).
    """

    def __init__(self, metadata: Optional[Metadata], instance_mode: ColorMode = ColorMode.IMAGE) -> None:
        self.metadata = metadata if metadata is not None else Metadata()
        self._instance_mode = ColorMode(instance_mode)
        self._tracked: List[_Tracked] = []
        self._new_per_class: Dict[int, int] = {}

    def draw_instance_predictions(self, frame: np.ndarray, predictions: Instances) -> VisImage:
        """Draw ``predictions`` (as :meth:`Visualizer.draw_instance_predictions`) on the (H, W, 3) RGB ``frame``."""
        vis = Visualizer(frame, self.metadata, instance_mode=self._instance_mode)
        n = len(predictions)
        classes = ([int(c) for c in to_numpy(predictions.pred_classes)] if predictions.has("pred_classes")
                   else [0] * n)
        masks = vis._masks(predictions.pred_masks) if predictions.has("pred_masks") else None
        boxes = predictions.pred_boxes if predictions.has("pred_boxes") else None
        colors = None
        if self._instance_mode != ColorMode.SEGMENTATION:
            regions = masks if masks is not None else self._box_masks(vis, boxes, n)
            colors = self._assign_colors(classes, regions)
        return vis._draw_instances(n, classes=classes if predictions.has("pred_classes") else None, boxes=boxes,
                                   masks=masks, scores=predictions.scores if predictions.has("scores") else None,
                                   colors=colors)

    def draw_sem_seg(self, frame: np.ndarray, sem_seg: Any, area_threshold: Optional[int] = None) -> VisImage:
        return Visualizer(frame, self.metadata).draw_sem_seg(sem_seg, area_threshold=area_threshold)

    def draw_panoptic_seg_predictions(self, frame: np.ndarray, panoptic_seg: Any,
                                      segments_info: Optional[Sequence[Dict[str, Any]]],
                                      area_threshold: Optional[int] = None, alpha: float = 0.5) -> VisImage:
        return Visualizer(frame, self.metadata, instance_mode=self._instance_mode).draw_panoptic_seg(
            panoptic_seg, segments_info, area_threshold=area_threshold, alpha=alpha)

    draw_panoptic_seg = draw_panoptic_seg_predictions

    @staticmethod
    def _box_masks(vis: Visualizer, boxes: Any, n: int) -> np.ndarray:
        regions = np.zeros((n, *vis.input_size), dtype=bool)
        if boxes is not None:
            for k, (x0, y0, x1, y1) in enumerate(vis._boxes(boxes)):
                regions[k, max(int(y0), 0):max(int(np.ceil(y1)), 0), max(int(x0), 0):max(int(np.ceil(x1)), 0)] = True
        return regions

    def _assign_colors(self, classes: List[int], regions: np.ndarray) -> List[Color]:
        if self._tracked and self._tracked[0].mask.shape != regions.shape[1:]:
            self._tracked = []  # the frame size changed: a new video
        iou = (_mask_iou(regions, np.stack([t.mask for t in self._tracked])) if len(regions) and self._tracked
               else np.zeros((len(regions), len(self._tracked))))
        for k, c in enumerate(classes):
            iou[k, [j for j, t in enumerate(self._tracked) if t.label != c]] = 0.0
        assigned: Dict[int, Color] = {}
        matched = set()
        # best-overlapping instances pick first; each tracked instance gives its colour once
        for k in np.argsort(-iou.max(axis=1, initial=0.0), kind="stable").tolist():
            candidates = [j for j in np.argsort(-iou[k]).tolist() if iou[k, j] > _MATCH_IOU and j not in matched]
            assigned[k] = self._tracked[candidates[0]].color if candidates else self._new_color(classes[k])
            matched.update(candidates[:1])
        kept = [t for j, t in enumerate(self._tracked) if j not in matched and t.ttl > 1]
        for t in kept:
            t.ttl -= 1
        self._tracked = kept + [_Tracked(c, regions[k], assigned[k], _TTL) for k, c in enumerate(classes)]
        return [assigned[k] for k in range(len(classes))]

    def _new_color(self, label: int) -> Color:
        index = self._new_per_class.get(label, 0)
        self._new_per_class[label] = index + 1
        return shade_color(class_color(self.metadata, label), index)
