"""Semantic segmentation metrics from a confusion matrix: mIoU, fwIoU, mACC, pACC, mDice; and each
class's Dice averaged over images (``Dice-per-image-<class>``, as medical papers report it)."""
from __future__ import annotations

import csv
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist

from ..data.catalog import MetadataCatalog
from ..data.detection_utils import read_record_sem_seg
from ..structures import bitmask_to_rle
from ..utils import comm
from ..utils.errors import DataError
from ..utils.file_io import atomic_open, atomic_write_json
from .evaluator import DatasetEvaluator

__all__ = ["SemSegEvaluator", "metrics_from_confusion", "dice_from_confusion", "SEM_SEG_PREDICTIONS_FILE"]

#: Written into ``output_dir`` with ``save_predictions``: a json list with, per image and predicted
#: class, ``{"file_name", "image_id", "category_id", "segmentation": RLE}`` (``category_id`` is the
#: dataset's id: the inverse of ``stuff_dataset_id_to_contiguous_id``, or the contiguous id without it).
SEM_SEG_PREDICTIONS_FILE = "sem_seg_predictions.json"

logger = logging.getLogger(__name__)


def dice_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Dice of each class, 2TP/(2TP+FP+FN) in [0, 1], from a K×K confusion matrix (rows: ground truth);
    NaN for a class absent from both ground truth and prediction."""
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    denominator = conf.sum(axis=1) + conf.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def metrics_from_confusion(conf: np.ndarray, class_names: Sequence[str]) -> "OrderedDict[str, float]":
    """Metrics (percentages) from a K×K confusion matrix (rows: ground truth, cols: prediction).

    IoU_k = TP/(TP+FP+FN), ACC_k = TP/(TP+FN), Dice_k = 2TP/(2TP+FP+FN). A class absent from
    both ground truth and prediction has NaN IoU/Dice and is excluded from mIoU, fwIoU and mDice;
    a class absent from the ground truth has NaN ACC and is excluded from mACC.
    """
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    pred = conf.sum(axis=0)
    union = gt + pred - tp
    iou_valid, acc_valid = union > 0, gt > 0
    dice = dice_from_confusion(conf)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(iou_valid, tp / union, np.nan)
        acc = np.where(acc_valid, tp / gt, np.nan)
    total = gt.sum()
    res: "OrderedDict[str, float]" = OrderedDict()
    res["mIoU"] = 100 * float(np.mean(iou[iou_valid])) if iou_valid.any() else float("nan")
    res["fwIoU"] = 100 * float(np.sum(iou[iou_valid] * gt[iou_valid]) / total) if total > 0 else float("nan")
    res["mACC"] = 100 * float(np.mean(acc[acc_valid])) if acc_valid.any() else float("nan")
    res["pACC"] = 100 * float(tp.sum() / total) if total > 0 else float("nan")
    res["mDice"] = 100 * float(np.mean(dice[iou_valid])) if iou_valid.any() else float("nan")
    for i, name in enumerate(class_names):
        res[f"IoU-{name}"] = 100 * float(iou[i])
        res[f"ACC-{name}"] = 100 * float(acc[i])
        res[f"Dice-{name}"] = 100 * float(dice[i])
    return res


class SemSegEvaluator(DatasetEvaluator):
    """Accumulates a confusion matrix per image and reports semantic segmentation metrics.

    Ground truth is read from each input's ``sem_seg_file_name`` (uint8 PNG of contiguous
    class ids, ``ignore_label`` pixels excluded; a binary mask read as 0/1 when the input has
    ``sem_seg_binary: True``, as the DatasetMapper does); predictions are the argmax over the
    output's ``sem_seg`` (C, H, W) logits, which must have the record's original size.
    Under distributed evaluation the confusion matrices are summed across ranks (one
    K×K reduction, independent of the number of images).

    Besides the metrics of the summed confusion matrix (:func:`metrics_from_confusion`), each class
    gets ``Dice-per-image-<class>``: its Dice computed on each image alone, averaged over the images
    where the class is in the ground truth or the prediction (the "mean Dice" of lesion papers such
    as those on PH2 and ISIC, where a small lesion counts as much as a large one).

    Args:
        dataset_name: registered dataset; metadata gives ``stuff_classes`` and ``ignore_label``.
        output_dir: where ``sem_seg_per_image.csv`` goes when ``per_image_csv`` is set.
        per_image_csv: also write per-image IoU and Dice of each class (medical use).
        save_predictions: also write each image's predicted classes as compressed RLE to
            ``output_dir/sem_seg_predictions.json`` (:data:`SEM_SEG_PREDICTIONS_FILE`), for
            ``tools/visualize.py --predictions`` (gathered on rank 0 in that compact form).
    """

    def __init__(
        self,
        dataset_name: str,
        distributed: bool = True,
        output_dir: Optional[str] = None,
        *,
        num_classes: Optional[int] = None,
        ignore_label: Optional[int] = None,
        per_image_csv: bool = False,
        save_predictions: bool = False,
    ) -> None:
        meta = MetadataCatalog.get(dataset_name)
        self._class_names: List[str] = list(meta.get("stuff_classes", []))
        self._num_classes = num_classes if num_classes is not None else len(self._class_names)
        if not self._class_names:
            self._class_names = [str(i) for i in range(self._num_classes)]
        if self._num_classes != len(self._class_names) or self._num_classes == 0:
            raise ValueError(
                f"SemSegEvaluator: dataset '{dataset_name}' metadata has {len(self._class_names)} stuff_classes but "
                f"num_classes={num_classes}. Set MetadataCatalog.get('{dataset_name}').stuff_classes to all class names."
            )
        self._ignore_label = ignore_label if ignore_label is not None else meta.get("ignore_label", 255)
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        self._per_image_csv = per_image_csv
        self._save_predictions = save_predictions
        to_contiguous = meta.get("stuff_dataset_id_to_contiguous_id")
        self._to_dataset_id = {int(c): int(d) for d, c in to_contiguous.items()} if to_contiguous else {}
        self.reset()

    def reset(self) -> None:
        self._conf = np.zeros((self._num_classes, self._num_classes), dtype=np.int64)
        # per class: the sum of its per-image Dice and the number of images where it is defined
        self._image_dice = np.zeros((2, self._num_classes), dtype=np.float64)
        self._per_image: List[list] = []
        self._predictions: List[dict] = []

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        k = self._num_classes
        for inp, out in zip(inputs, outputs, strict=True):
            file_name = inp["sem_seg_file_name"]
            gt = read_record_sem_seg(inp).astype(np.int64)
            pred = out["sem_seg"].argmax(dim=0).to("cpu", torch.int64).numpy()
            if pred.shape != gt.shape:
                raise DataError(
                    f"Prediction has size {pred.shape} but the ground truth has {gt.shape}; models must return "
                    f"sem_seg at the record's height/width.",
                    file_name=file_name,
                    record=inp.get("image_id"),
                )
            valid = gt != self._ignore_label
            bad = valid & ((gt < 0) | (gt >= k))
            if bad.any():
                raise DataError(
                    f"Ground truth has class ids {sorted(set(np.unique(gt[bad]).tolist()))} outside [0, {k}) and not "
                    f"ignore_label {self._ignore_label}.",
                    file_name=file_name,
                )
            conf = np.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
            self._conf += conf
            dice = dice_from_confusion(conf)
            defined = ~np.isnan(dice)
            self._image_dice[0, defined] += dice[defined]
            self._image_dice[1, defined] += 1
            if self._per_image_csv:
                self._per_image.append([inp.get("image_id", ""), file_name, conf])
            if self._save_predictions:
                self._predictions.extend(self._encode_prediction(inp, pred))

    def _encode_prediction(self, inp: dict, pred: np.ndarray) -> List[dict]:
        """One ``{file_name, image_id, category_id, segmentation}`` per class present in ``pred``."""
        return [
            {"file_name": inp.get("file_name"), "image_id": inp.get("image_id"),
             "category_id": self._to_dataset_id.get(c, c), "segmentation": bitmask_to_rle(pred == c)}
            for c in np.unique(pred).tolist()
        ]

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        if self._distributed and comm.get_world_size() > 1:
            conf = torch.from_numpy(self._conf)
            dist.all_reduce(conf)
            self._conf = conf.numpy()
            image_dice = torch.from_numpy(self._image_dice)
            dist.all_reduce(image_dice)
            self._image_dice = image_dice.numpy()
            per_image = sum(comm.gather(self._per_image), []) if self._per_image_csv else []
            predictions = sum(comm.gather(self._predictions), []) if self._save_predictions else []
            if not comm.is_main_process():
                return None
        else:
            per_image, predictions = self._per_image, self._predictions
        if self._output_dir and self._per_image_csv:
            self._write_per_image_csv(per_image)
        if self._output_dir and self._save_predictions:
            path = os.path.join(self._output_dir, SEM_SEG_PREDICTIONS_FILE)
            atomic_write_json(path, predictions)
            logger.info(f"Wrote the predictions of {len({p['file_name'] for p in predictions})} images to {path}")
        res = metrics_from_confusion(self._conf, self._class_names)
        total, count = self._image_dice
        for name, dice_sum, images in zip(self._class_names, total, count, strict=True):
            res[f"Dice-per-image-{name}"] = 100 * dice_sum / images if images else float("nan")
        absent = [n for n in self._class_names if np.isnan(res[f"IoU-{n}"])]
        if absent:
            logger.info(f"Classes absent from both ground truth and predictions (NaN, excluded from means): {absent}")
        return OrderedDict(sem_seg=res)

    def _write_per_image_csv(self, per_image: List[list]) -> None:
        path = os.path.join(self._output_dir, "sem_seg_per_image.csv")
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["image_id", "file_name"] + [f"{m}-{n}" for n in self._class_names for m in ("IoU", "Dice")])
            for image_id, file_name, conf in per_image:
                m = metrics_from_confusion(conf, self._class_names)
                writer.writerow([image_id, file_name] + [
                    f"{m[f'{x}-{n}']:.4f}" for n in self._class_names for x in ("IoU", "Dice")
                ])
        logger.info(f"Wrote per-image IoU/Dice to {path}")
