"""COCO box and mask AP, computed by pycocotools' ``COCOeval`` (the reference implementation)."""
from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tabulate import tabulate

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..data.datasets.coco import _index_coco, read_json
from ..data.datasets.coco_export import convert_to_coco_dict, convert_to_coco_json, dataset_id_mapper
from ..data.errors import DataError
from ..structures import BoxMode, Instances, bitmask_to_rle
from ..utils import comm
from ..utils.file_io import atomic_write_json
from .evaluator import DatasetEvaluator

__all__ = ["COCOEvaluator", "instances_to_coco_json", "RESULTS_FILE"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "coco_instances_results.json"
_TASKS = ("bbox", "segm")
_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# metric -> (IoU threshold or None for the mean over 0.50:0.95, COCOeval area range label)
_METRIC_SLICES = {"AP": (None, "all"), "AP50": (0.5, "all"), "AP75": (0.75, "all"),
                  "APs": (None, "small"), "APm": (None, "medium"), "APl": (None, "large")}


def instances_to_coco_json(instances: Instances, image_id: Any, to_dataset_id: Callable[[int], int],
                           with_masks: bool) -> List[Dict[str, Any]]:
    """COCO result dicts of one image's predictions.

    Args:
        instances: ``pred_boxes`` (Boxes, XYXY absolute pixels of the original image),
            ``scores`` (float, N), ``pred_classes`` (int64, N, contiguous 0..K-1) and, when
            ``with_masks``, ``pred_masks`` (bool or uint8, N×H×W, nonzero = foreground).
        image_id: the dataset dict's ``image_id`` (the json's image id).
        to_dataset_id: contiguous class id -> dataset category id (see ``dataset_id_mapper``).
        with_masks: also encode ``pred_masks`` as compressed RLE.

    Returns:
        one dict per instance ``{image_id, category_id, bbox: [x, y, w, h], score}`` plus
        ``segmentation: {size: [H, W], counts: str}`` when ``with_masks``.
    """
    instances = instances.to("cpu")
    boxes = BoxMode.convert(instances.pred_boxes.tensor.double(), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS).tolist()
    scores = instances.scores.tolist()
    classes = instances.pred_classes.tolist()
    results = []
    for i in range(len(instances)):
        result = {"image_id": image_id, "category_id": to_dataset_id(classes[i]), "bbox": boxes[i],
                  "score": float(scores[i])}
        if with_masks:
            result["segmentation"] = bitmask_to_rle(instances.pred_masks[i])
        results.append(result)
    return results


def _mean_precision(coco_eval: COCOeval, iou: Optional[float] = None, area: str = "all",
                    class_index: Optional[int] = None) -> float:
    """Mean of COCOeval's precision (at its largest maxDets) over valid entries, as a percentage.

    ``iou`` None averages over all IoU thresholds; ``class_index`` None over all classes.
    NaN when nothing is valid (pycocotools' -1: no ground truth in that slice).
    """
    params = coco_eval.params
    precision = coco_eval.eval["precision"]  # (iou thresholds, recall thresholds, classes, areas, maxDets)
    iou_index = slice(None) if iou is None else int(np.flatnonzero(np.isclose(params.iouThrs, iou))[0])
    class_slice = slice(None) if class_index is None else class_index
    values = precision[iou_index, :, class_slice, params.areaRngLbl.index(area), -1]
    valid = values[values > -1]
    return float(np.mean(valid)) * 100 if valid.size else float("nan")


class COCOEvaluator(DatasetEvaluator):
    """Box (``bbox``) and mask (``segm``) AP of instance predictions, by pycocotools' ``COCOeval``.

    Ground truth is the metadata ``json_file`` of the dataset; without one, the registered
    dataset dicts are converted to COCO (:func:`convert_to_coco_json`, cached in
    ``output_dir`` as ``<dataset_name>_coco_format.json``). :meth:`process` turns each
    output's ``instances`` into COCO result dicts at once (masks compressed to RLE, so no
    full mask is kept). :meth:`evaluate` gathers them on rank 0, writes
    ``coco_instances_results.json`` into ``output_dir`` and returns, per task, ``AP, AP50,
    AP75, APs, APm, APl`` and ``AP-<class>`` in percent (NaN where the ground truth has no
    instance). Only the images seen by :meth:`process` are evaluated.

    Args:
        dataset_name: a registered instance dataset whose metadata has ``thing_classes`` (loaded
            once here when missing, e.g. a COCO json not read yet) and, when its category ids
            are not 0..K-1, ``thing_dataset_id_to_contiguous_id``.
        tasks: subset of ``("bbox", "segm")``; ``segm`` needs ``pred_masks`` in every output.
        distributed: gather predictions from all ranks; only rank 0 returns results.
        output_dir: where the results json (and a converted ground truth) go; None writes nothing.
        max_dets_per_image: detections per image and class kept by COCOeval (default 100, as
            in COCO); every returned metric uses this limit.
        use_fast_impl: accepted for detectron2 configs; seg_research has no compiled COCOeval,
            so True logs a warning and pycocotools' (identical numbers) runs.
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: Sequence[str] = _TASKS,
        distributed: bool = True,
        output_dir: Optional[str] = None,
        *,
        max_dets_per_image: Optional[int] = None,
        use_fast_impl: bool = False,
    ) -> None:
        unknown = [t for t in tasks if t not in _TASKS]
        if unknown or not tasks:
            raise ValueError(f"COCOEvaluator tasks must be a non-empty subset of {_TASKS}, got {tuple(tasks)}.")
        if use_fast_impl:
            logger.warning("COCOEvaluator(use_fast_impl=True): seg_research has no compiled COCOeval; "
                           "using pycocotools'.")
        meta = MetadataCatalog.get(dataset_name)
        if not meta.get("thing_classes"):
            DatasetCatalog.get(dataset_name)  # loaders such as load_coco_json fill thing_classes and the id map
        if not meta.get("thing_classes"):
            raise ValueError(f"Dataset '{dataset_name}' has no thing_classes in its metadata; set "
                             f"MetadataCatalog.get('{dataset_name}').thing_classes to evaluate it with COCOEvaluator.")
        self._dataset_name = dataset_name
        self._class_names: List[str] = list(meta.thing_classes)
        self._to_dataset_id = dataset_id_mapper(dataset_name)
        self._tasks = tuple(tasks)
        self._distributed = distributed
        self._output_dir = output_dir
        limit = 100 if max_dets_per_image is None else int(max_dets_per_image)
        if limit < 1:
            raise ValueError(f"max_dets_per_image must be at least 1, got {max_dets_per_image}.")
        # Ascending with the limit last: COCOeval sorts maxDets and matches at most maxDets[-1] per class.
        self._max_dets = [m for m in (1, 10) if m < limit] + [limit]
        self.reset()

    def reset(self) -> None:
        self._predictions: List[Dict[str, Any]] = []

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Keep ``{image_id, instances: [COCO result dicts]}`` per input whose output has ``instances``.

        Raises:
            ValueError: an input without ``image_id``, ``segm`` requested but no ``pred_masks``,
                or a predicted class outside ``0..K-1``.
            DataError: ``pred_masks`` not of the input's ``height`` × ``width``.
        """
        with_masks = "segm" in self._tasks
        for inp, out in zip(inputs, outputs):
            if "instances" not in out:
                continue
            if "image_id" not in inp:
                raise ValueError("COCOEvaluator needs each input's 'image_id' (the dataset dict's; DatasetMapper "
                                 "keeps it) to match predictions with the ground truth.")
            instances = out["instances"]
            if with_masks:
                self._check_masks(inp, instances)
            self._predictions.append({
                "image_id": inp["image_id"],
                "instances": instances_to_coco_json(instances, inp["image_id"], self._to_dataset_id, with_masks),
            })

    def _check_masks(self, inp: dict, instances: Instances) -> None:
        if not instances.has("pred_masks"):
            raise ValueError("COCOEvaluator task 'segm' needs 'pred_masks' in the output instances; use "
                             "tasks=('bbox',) for a model without masks (MODEL.MASK_ON=False).")
        expected = (inp.get("height"), inp.get("width"))
        shape = tuple(instances.pred_masks.shape[-2:])
        if None not in expected and shape != expected:
            raise DataError(f"pred_masks have size {shape} but the image is {expected}; models must return masks "
                            f"pasted at the record's original height/width.",
                            file_name=inp.get("file_name"), record=inp["image_id"])

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        predictions = self._predictions
        if self._distributed and comm.get_world_size() > 1:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(predictions, dst=0)))
            if not comm.is_main_process():
                return None
        results = [r for p in predictions for r in p["instances"]]
        if self._output_dir:
            path = os.path.join(self._output_dir, RESULTS_FILE)
            atomic_write_json(path, results)
            logger.info(f"Wrote {len(results)} COCO results to {path}")
        if not predictions:
            logger.warning(f"COCOEvaluator on '{self._dataset_name}' received no predictions; was process() called?")
        elif not results:
            logger.warning(f"COCOEvaluator on '{self._dataset_name}': the model made no detection on "
                           f"{len(predictions)} images; AP is 0 (NaN for classes without ground truth).")
        coco_gt = self._load_ground_truth()
        image_ids = sorted({p["image_id"] for p in predictions})
        unknown = [i for i in image_ids if i not in coco_gt.imgs]
        if unknown:
            raise DataError(f"{len(unknown)} evaluated image ids are not in the ground truth, e.g. {unknown[:5]}; the "
                            f"inputs' image_id must be the ids of the dataset's COCO json.",
                            record=unknown[0])
        return OrderedDict((task, self._evaluate_task(coco_gt, results, task, image_ids)) for task in self._tasks)

    def _load_ground_truth(self) -> COCO:
        """pycocotools index of the metadata ``json_file``, else of the converted dataset dicts."""
        json_file = MetadataCatalog.get(self._dataset_name).get("json_file")
        if not json_file and self._output_dir:
            json_file = os.path.join(self._output_dir, f"{self._dataset_name}_coco_format.json")
            convert_to_coco_json(self._dataset_name, json_file, allow_cached=True)
        if json_file:
            return _index_coco(read_json(json_file), json_file)
        return _index_coco(convert_to_coco_dict(self._dataset_name), f"<dataset '{self._dataset_name}'>")

    def _evaluate_task(self, coco_gt: COCO, results: List[Dict[str, Any]], task: str,
                       image_ids: List[Any]) -> "OrderedDict[str, float]":
        if task == "segm" and any("segmentation" not in a for a in coco_gt.anns.values()):
            raise ValueError(f"Dataset '{self._dataset_name}' has annotations without 'segmentation'; evaluate it "
                             f"with tasks=('bbox',).")
        # Each task sees only its own fields: with a bbox present, loadRes would take the box area as a
        # mask's area (for the small/medium/large ranges) instead of the mask's pixel count.
        drop = "segmentation" if task == "bbox" else "bbox"
        task_results = [{k: v for k, v in r.items() if k != drop} for r in results]
        coco_eval = COCOeval(coco_gt, self._load_results(coco_gt, task_results), iouType=task)
        coco_eval.params.imgIds = image_ids
        coco_eval.params.maxDets = list(self._max_dets)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            coco_eval.evaluate()
            coco_eval.accumulate()
        logger.debug(f"pycocotools ({task}):\n{printed.getvalue()}")
        metrics: "OrderedDict[str, float]" = OrderedDict(
            (name, _mean_precision(coco_eval, iou, area)) for name, (iou, area) in _METRIC_SLICES.items()
        )
        logger.info(f"Evaluation results for {task} (maxDets={self._max_dets[-1]}):\n"
                    + tabulate([list(metrics.values())], headers=list(metrics), tablefmt="pipe", floatfmt=".3f"))
        cat_ids = coco_eval.params.catIds  # the class axis of the precision array
        per_class = OrderedDict(
            (f"AP-{name}", _mean_precision(coco_eval, class_index=cat_ids.index(self._to_dataset_id(i))))
            for i, name in enumerate(self._class_names)
        )
        logger.info(f"Per-category {task} AP:\n" + _per_class_table(per_class))
        metrics.update(per_class)
        return metrics

    @staticmethod
    def _load_results(coco_gt: COCO, results: List[Dict[str, Any]]) -> COCO:
        """pycocotools index of the results (``loadRes``, prints silenced); empty when there are none.

        ``loadRes`` adds keys (``id``, ``area``, ...) to the dicts it is given: pass copies.
        """
        with contextlib.redirect_stdout(io.StringIO()):
            if results:
                return coco_gt.loadRes(results)
            coco_dt = COCO()
            coco_dt.dataset = {"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"],
                               "annotations": []}
            coco_dt.createIndex()
        return coco_dt


def _per_class_table(per_class: Dict[str, float], pairs_per_row: int = 3) -> str:
    """``per_class`` ({"AP-<name>": value}) as a pipe table of (category, AP) pairs side by side."""
    flat = [x for name, ap in per_class.items() for x in (name[len("AP-"):], ap)]
    width = 2 * pairs_per_row
    rows = [flat[i: i + width] for i in range(0, len(flat), width)]
    return tabulate(rows, headers=["category", "AP"] * pairs_per_row, tablefmt="pipe", floatfmt=".3f")
