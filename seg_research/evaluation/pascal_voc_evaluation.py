"""PASCAL VOC box AP: the VOC2007 11-point metric or the VOC2010+ area under the PR curve.

Matching follows the VOC devkit (and detectron2's Python port of it): per class, detections
of all images sorted by decreasing score; each is a true positive when its best-overlapping
ground-truth box of the image has IoU > threshold, is not "difficult" and was not matched
before; a match with a difficult box counts neither way; anything else is a false positive.
Boxes are compared in VOC's inclusive pixel convention (width ``x1 - x0 + 1``): ground truth
as written in the XML, predictions (XYXY absolute, continuous) shifted to it by ``x0 + 1,
y0 + 1``. Recall is over the non-difficult ground truth of every image of the image set.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict, defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..data.catalog import MetadataCatalog
from ..data.datasets.pascal_voc import read_voc_image_set, read_voc_xml
from ..utils import comm
from .build import EVALUATOR_REGISTRY
from .evaluator import DatasetEvaluator

__all__ = ["PascalVOCDetectionEvaluator", "voc_ap", "voc_eval"]

logger = logging.getLogger(__name__)

IOU_THRESHOLDS = tuple(range(50, 100, 5))  # percent, as COCO-style AP = mean over them

#: one image's ground truth of one class: (K, 4) VOC boxes, (K,) difficult flags
GroundTruth = Tuple[np.ndarray, np.ndarray]


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool = False) -> float:
    """AP of a precision/recall curve (points in the order of decreasing score).

    ``use_07_metric``: VOC2007's mean, over recall levels 0, 0.1, ..., 1 (``np.arange(0, 1.1,
    0.1)``, as detectron2), of the highest precision at recall >= level (0 when none). Otherwise the area under the curve made
    monotone (each precision replaced by the highest precision at equal or higher recall).
    """
    rec, prec = np.asarray(rec, dtype=np.float64), np.asarray(prec, dtype=np.float64)
    if use_07_metric:
        # levels as the devkit's loop makes them (0.30000000000000004, ...): a recall of exactly 0.3 is below 0.3
        levels = np.arange(0.0, 1.1, 0.1)
        return float(np.mean([prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in levels]))
    recall = np.concatenate([[0.0], rec, [1.0]])
    envelope = np.maximum.accumulate(np.concatenate([[0.0], prec, [0.0]])[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def _iou_inclusive(box: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with (K, 4) boxes, in VOC's inclusive pixel convention."""
    iw = np.maximum(np.minimum(gt[:, 2], box[2]) - np.maximum(gt[:, 0], box[0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(gt[:, 3], box[3]) - np.maximum(gt[:, 1], box[1]) + 1.0, 0.0)
    inter = iw * ih
    area = (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
    return inter / (area + (gt[:, 2] - gt[:, 0] + 1.0) * (gt[:, 3] - gt[:, 1] + 1.0) - inter)


def voc_eval(detections: Sequence[Tuple[str, float, Sequence[float]]], ground_truth: Dict[str, GroundTruth],
             iou_threshold: float = 0.5, use_07_metric: bool = False) -> Tuple[np.ndarray, np.ndarray, float]:
    """Recall, precision and AP of one class.

    Args:
        detections: ``(image_id, score, [x0, y0, x1, y1])`` in VOC's inclusive convention.
        ground_truth: every image of the set -> (boxes, difficult) of this class.
        iou_threshold: a match needs IoU strictly above it.

    Returns:
        ``(rec, prec, ap)``; ``ap`` is NaN when the class has no non-difficult ground truth.
    """
    num_positive = int(sum((~difficult).sum() for _, difficult in ground_truth.values()))
    order = sorted(range(len(detections)), key=lambda k: -detections[k][1])
    matched = {image_id: np.zeros(len(boxes), dtype=bool) for image_id, (boxes, _) in ground_truth.items()}
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for rank, k in enumerate(order):
        image_id, _, box = detections[k]
        if image_id not in ground_truth:
            raise KeyError(f"Detection for image '{image_id}', which is not in the image set being evaluated.")
        gt_boxes, difficult = ground_truth[image_id]
        if len(gt_boxes) == 0:
            fp[rank] = 1
            continue
        overlaps = _iou_inclusive(np.asarray(box, dtype=np.float64), gt_boxes)
        j = int(np.argmax(overlaps))
        if overlaps[j] <= iou_threshold:
            fp[rank] = 1
        elif not difficult[j]:
            if matched[image_id][j]:
                fp[rank] = 1
            else:
                tp[rank], matched[image_id][j] = 1, True
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    if num_positive == 0:
        return tp * np.nan, tp / np.maximum(tp + fp, np.finfo(np.float64).eps), float("nan")
    rec = tp / num_positive
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)  # the first detections may all be difficult
    return rec, prec, voc_ap(rec, prec, use_07_metric)


class PascalVOCDetectionEvaluator(DatasetEvaluator):
    """Box AP of a VOC dataset registered by ``register_pascal_voc`` (metadata ``dirname``,
    ``split``, ``year`` 2007 (11-point AP) or 2012 (area AP), ``thing_classes``).

    Results: ``{"bbox": {"AP": mean over IoU 0.50:0.95, "AP50", "AP75"}}``, percentages;
    ``AP50`` is the VOC challenge's number. Classes without non-difficult ground truth in the
    image set are left out of the means (with a warning; detectron2 averages them in as AP 0,
    so on such a subset its numbers are lower by the fraction of absent classes). Predictions of all ranks are
    gathered on the main process (boxes and scores only).
    """

    def __init__(self, dataset_name: str) -> None:
        meta = MetadataCatalog.get(dataset_name)
        missing = [k for k in ("dirname", "split", "year", "thing_classes") if meta.get(k) is None]
        if missing:
            raise KeyError(f"PascalVOCDetectionEvaluator: dataset '{dataset_name}' has no metadata {missing}; "
                           "register it with seg_research.data.datasets.register_pascal_voc.")
        if meta.year not in (2007, 2012):
            raise ValueError(f"PascalVOCDetectionEvaluator: metadata year of '{dataset_name}' must be 2007 "
                             f"(11-point AP) or 2012 (area AP), got {meta.year!r}.")
        self._dataset_name = dataset_name
        self._dirname, self._split = meta.dirname, meta.split
        self._class_names = list(meta.thing_classes)
        self._is_2007 = meta.year == 2007
        self.reset()

    def reset(self) -> None:
        self._predictions: Dict[int, List[Tuple[str, float, List[float]]]] = defaultdict(list)

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        for inp, out in zip(inputs, outputs, strict=True):
            instances = out["instances"].to("cpu")
            boxes = instances.pred_boxes.tensor.numpy().astype(np.float64)
            boxes[:, :2] += 1.0  # the inverse of load_voc_instances' shift
            for box, score, cls in zip(boxes.tolist(), instances.scores.tolist(), instances.pred_classes.tolist(),
                                       strict=True):
                self._predictions[int(cls)].append((str(inp["image_id"]), float(score), box))

    def _ground_truth(self) -> Dict[str, Dict[str, GroundTruth]]:
        """class name -> image id -> (VOC boxes, difficult) for every image of the image set."""
        per_class: Dict[str, Dict[str, GroundTruth]] = {name: {} for name in self._class_names}
        for image_id in read_voc_image_set(self._dirname, self._split):
            objects = read_voc_xml(os.path.join(self._dirname, "Annotations", image_id + ".xml"))["objects"]
            for name in self._class_names:
                mine = [o for o in objects if o["name"] == name]
                per_class[name][image_id] = (np.asarray([o["bbox"] for o in mine], dtype=np.float64).reshape(-1, 4),
                                             np.asarray([o["difficult"] for o in mine], dtype=bool))
        return per_class

    def evaluate(self):
        gathered = comm.gather(dict(self._predictions), dst=0)
        if not comm.is_main_process():
            return None
        predictions: Dict[int, list] = defaultdict(list)
        for per_rank in gathered:
            for cls, dets in per_rank.items():
                predictions[cls].extend(dets)
        metric = 2007 if self._is_2007 else 2012
        logger.info(f"Evaluating {self._dataset_name} with the VOC{metric} AP "
                    f"({'11-point' if self._is_2007 else 'area under the PR curve'}).")
        ground_truth = self._ground_truth()
        aps: Dict[int, List[float]] = defaultdict(list)
        skipped = []
        for cls, name in enumerate(self._class_names):
            per_threshold = [voc_eval(predictions.get(cls, []), ground_truth[name], t / 100.0, self._is_2007)[2]
                             for t in IOU_THRESHOLDS]
            if np.isnan(per_threshold[0]):
                skipped.append(name)
                continue
            for t, ap in zip(IOU_THRESHOLDS, per_threshold, strict=True):
                aps[t].append(100.0 * ap)
        if skipped:
            logger.warning(f"{len(skipped)} classes have no non-difficult ground truth in {self._dataset_name} and "
                           f"are left out of the AP means: {skipped}")
        if not aps:
            raise ValueError(f"PascalVOCDetectionEvaluator: no class of {self._dataset_name} has non-difficult ground "
                             "truth; nothing to evaluate.")
        mean_ap = {t: float(np.mean(v)) for t, v in aps.items()}
        return OrderedDict(bbox={"AP": float(np.mean(list(mean_ap.values()))), "AP50": mean_ap[50],
                                 "AP75": mean_ap[75]})


@EVALUATOR_REGISTRY.register(name="pascal_voc")
def _build_pascal_voc_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    return PascalVOCDetectionEvaluator(dataset_name)
