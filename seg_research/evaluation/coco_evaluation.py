"""COCO box and mask AP with COCOeval's definition, by a fast backend or pycocotools (``fast_eval_api``)."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from tabulate import tabulate

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..data.datasets.coco import index_coco, read_json
from ..data.datasets.coco_export import convert_to_coco_dict, convert_to_coco_json, dataset_id_mapper
from ..structures import BoxMode, Instances, bitmask_to_rle
from ..utils import comm
from ..utils.absent import absent_names
from ..utils.errors import DataError
from ..utils.file_io import atomic_write_json
from .backend_selection import copy_with_backend
from .box_proposals import evaluate_box_proposals
from .evaluator import DatasetEvaluator, gather_predictions
from .fast_eval_api import COCO_EVAL_BACKEND_REGISTRY, COCOEvalBackend, COCOPrecision, select_backend

__all__ = ["COCOEvaluator", "instances_to_coco_json", "coco_metrics", "score_coco_task", "RESULTS_FILE"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "coco_instances_results.json"
#: File name prefix of the prediction shards that ranks write into output_dir (``prediction_shards``).
SHARD_PREFIX = "coco_instances_predictions"
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


def _mean_precision(accumulated: COCOPrecision, iou: Optional[float] = None, area: str = "all",
                    class_index: Optional[int] = None) -> float:
    """Mean of COCOeval's precision (at its largest maxDets) over valid entries, as a percentage.

    ``iou`` None averages over all IoU thresholds; ``class_index`` None over all classes.
    NaN when nothing is valid (pycocotools' -1: no ground truth in that slice).
    """
    iou_index = slice(None) if iou is None else int(np.flatnonzero(np.isclose(accumulated.iou_thrs, iou))[0])
    class_slice = slice(None) if class_index is None else class_index
    values = accumulated.precision[iou_index, :, class_slice, accumulated.area_labels.index(area), -1]
    valid = values[values > -1]
    return float(np.mean(valid)) * 100 if valid.size else float("nan")


def coco_metrics(accumulated: COCOPrecision, class_names: Sequence[str], class_dataset_ids: Sequence[int]
                 ) -> "OrderedDict[str, float]":
    """``AP, AP50, AP75, APs, APm, APl`` and ``AP-<class>`` (percent, NaN without ground truth) of one task.

    Args:
        accumulated: a backend's COCOeval precision.
        class_names: the K contiguous classes' names.
        class_dataset_ids: their dataset category ids (``accumulated.cat_ids`` must hold each).
    """
    metrics: "OrderedDict[str, float]" = OrderedDict(
        (name, _mean_precision(accumulated, iou, area)) for name, (iou, area) in _METRIC_SLICES.items())
    for name, dataset_id in zip(class_names, class_dataset_ids, strict=True):
        metrics[f"AP-{name}"] = _mean_precision(accumulated, class_index=accumulated.cat_ids.index(dataset_id))
    return metrics


def score_coco_task(backend: COCOEvalBackend, results: List[Dict[str, Any]], task: str, image_ids: Sequence[Any],
                    max_dets: Sequence[int], class_names: Sequence[str], class_dataset_ids: Sequence[int]
                    ) -> "OrderedDict[str, float]":
    """COCOeval's evaluate + accumulate by ``backend`` and the metrics of :func:`coco_metrics`, for one task.

    Args:
        backend: a :class:`~.fast_eval_api.COCOEvalBackend` on the ground truth.
        results: COCO result dicts with both ``bbox`` and ``segmentation`` (or the one of ``task``); each
            task sees only its own field (with a bbox present, loadRes would take the box area as a mask's
            area for the small/medium/large ranges instead of the mask's pixel count); not modified.
        task: ``"bbox"`` or ``"segm"``.
        image_ids: the images evaluated.
        max_dets: ascending per-image detection limits; the metrics use the last.
        class_names, class_dataset_ids: the K contiguous classes' names and dataset category ids.
    """
    drop = "segmentation" if task == "bbox" else "bbox"
    task_results = [{k: v for k, v in r.items() if k != drop} for r in results]
    return coco_metrics(backend.precision(task_results, task, image_ids, max_dets), class_names, class_dataset_ids)


class COCOEvaluator(DatasetEvaluator):
    """Box (``bbox``) and mask (``segm``) AP of instance predictions, with COCOeval's definition.

    Ground truth is the metadata ``json_file`` of the dataset; without one, the registered
    dataset dicts are converted to COCO (:func:`convert_to_coco_json`, cached in
    ``output_dir`` as ``<dataset_name>_coco_format.json``). :meth:`process` turns each
    output's ``instances`` into COCO result dicts at once (masks compressed to RLE, so no
    full mask is kept). :meth:`evaluate` brings them to rank 0 through per-rank shard files in
    ``output_dir`` (:func:`gather_predictions`), writes
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
        use_fast_impl: score with :data:`~.fast_eval_api.FAST_BACKEND` (hotcoco: the same
            numbers, 10-40x faster); when its package is missing, warn and use pycocotools.
            False: pycocotools' ``COCOeval``, the reference.
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: Sequence[str] = _TASKS,
        distributed: bool = True,
        output_dir: Optional[str] = None,
        *,
        max_dets_per_image: Optional[int] = None,
        use_fast_impl: bool = True,
    ) -> None:
        unknown = [t for t in tasks if t not in _TASKS]
        if unknown or not tasks:
            raise ValueError(f"COCOEvaluator tasks must be a non-empty subset of {_TASKS}, got {tuple(tasks)}.")
        self._backend = select_backend(use_fast_impl)
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

    @property
    def backend(self) -> str:
        """Name of the COCO_EVAL_BACKEND_REGISTRY backend that scores (``hotcoco``, ``pycocotools``)."""
        return self._backend

    def with_backend(self, name: str) -> "COCOEvaluator":
        """A copy of this evaluator (same dataset, tasks, limits and output folder, no predictions) that
        scores with the registered backend ``name`` (a :data:`~.fast_eval_api.COCO_EVAL_BACKEND_REGISTRY`
        key; its package must be installed)."""
        return copy_with_backend(self, COCO_EVAL_BACKEND_REGISTRY, name, "COCO evaluation")

    def reset(self) -> None:
        self._predictions: List[Dict[str, Any]] = []

    def process_coco_results(self, image_id: Any, results: List[Dict[str, Any]]) -> None:
        """Keep one image's predictions given as COCO result dicts (``{image_id, category_id (dataset
        id), bbox (XYWH absolute), score, segmentation (RLE)}``, e.g. read back from a results json), as
        :meth:`process` keeps those it converts."""
        self._predictions.append({"image_id": image_id, "instances": results})

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Keep ``{image_id, instances: [COCO result dicts]}`` per input whose output has ``instances``,
        and ``{image_id, proposal_boxes: [[x0, y0, x1, y1], ...]}`` (best first) per output with
        ``proposals`` (ProposalNetwork), scored as ``box_proposals`` average recall.

        Raises:
            ValueError: an input without ``image_id``, ``segm`` requested but no ``pred_masks``,
                or a predicted class outside ``0..K-1``.
            DataError: ``pred_masks`` not of the input's ``height`` × ``width``.
        """
        with_masks = "segm" in self._tasks
        for inp, out in zip(inputs, outputs, strict=True):
            if "instances" not in out and "proposals" not in out:
                continue
            if "image_id" not in inp:
                raise ValueError("COCOEvaluator needs each input's 'image_id' (the dataset dict's; DatasetMapper "
                                 "keeps it) to match predictions with the ground truth.")
            if "proposals" in out:
                boxes = out["proposals"].proposal_boxes.tensor.detach().cpu().tolist()
                self._predictions.append({"image_id": inp["image_id"], "proposal_boxes": boxes})
            if "instances" not in out:
                continue
            instances = out["instances"]
            if with_masks:
                self._check_masks(inp, instances)
            self.process_coco_results(
                inp["image_id"], instances_to_coco_json(instances, inp["image_id"], self._to_dataset_id, with_masks))

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
            predictions = gather_predictions(predictions, self._output_dir, prefix=SHARD_PREFIX)
            if predictions is None:
                return None
        proposals = [p for p in predictions if "proposal_boxes" in p]
        predictions = [p for p in predictions if "instances" in p]
        if proposals and not predictions:  # a ProposalNetwork: average recall only, as detectron2
            return OrderedDict([("box_proposals", self._evaluate_box_proposals(proposals))])
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
        backend = COCO_EVAL_BACKEND_REGISTRY.get(self._backend)(coco_gt)
        metrics = OrderedDict((task, self._evaluate_task(backend, coco_gt, results, task, image_ids))
                              for task in self._tasks)
        if proposals:
            metrics["box_proposals"] = self._evaluate_box_proposals(proposals)
        return metrics

    def _evaluate_box_proposals(self, proposals: List[Dict[str, Any]]) -> "OrderedDict[str, float]":
        metrics = evaluate_box_proposals(self._load_ground_truth(), proposals)
        logger.info(f"Proposal average recall on {len(proposals)} images:\n"
                    + tabulate([list(metrics.values())], headers=list(metrics), tablefmt="pipe", floatfmt=".3f"))
        return metrics

    def _load_ground_truth(self) -> COCO:
        """pycocotools index of the metadata ``json_file``, else of the converted dataset dicts."""
        json_file = MetadataCatalog.get(self._dataset_name).get("json_file")
        if not json_file and self._output_dir:
            json_file = os.path.join(self._output_dir, f"{self._dataset_name}_coco_format.json")
            convert_to_coco_json(self._dataset_name, json_file, allow_cached=True)
        if json_file:
            return index_coco(read_json(json_file), json_file)
        return index_coco(convert_to_coco_dict(self._dataset_name), f"<dataset '{self._dataset_name}'>")

    def _evaluate_task(self, backend, coco_gt: COCO, results: List[Dict[str, Any]], task: str,
                       image_ids: List[Any]) -> "OrderedDict[str, float]":
        if task == "segm" and any("segmentation" not in a for a in coco_gt.anns.values()):
            raise ValueError(f"Dataset '{self._dataset_name}' has annotations without 'segmentation'; evaluate it "
                             f"with tasks=('bbox',).")
        metrics = score_coco_task(backend, results, task, image_ids, self._max_dets, self._class_names,
                                  [self._to_dataset_id(i) for i in range(len(self._class_names))])
        main = OrderedDict((k, v) for k, v in metrics.items() if not k.startswith("AP-"))
        logger.info(f"Evaluation results for {task} ({self._backend}, maxDets={self._max_dets[-1]}):\n"
                    + tabulate([list(main.values())], headers=list(main), tablefmt="pipe", floatfmt=".3f"))
        logger.info(f"Per-category {task} AP:\n"
                    + _per_class_table(OrderedDict((k, v) for k, v in metrics.items() if k.startswith("AP-"))))
        return metrics


def _per_class_table(per_class: Dict[str, float], pairs_per_row: int = 3) -> str:
    """``per_class`` ({"AP-<name>": value}) as a pipe table of (category, AP) pairs side by side."""
    flat = [x for name, ap in per_class.items() for x in (name[len("AP-"):], ap)]
    width = 2 * pairs_per_row
    rows = [flat[i: i + width] for i in range(0, len(flat), width)]
    return tabulate(rows, headers=["category", "AP"] * pairs_per_row, tablefmt="pipe", floatfmt=".3f")


__getattr__ = absent_names(__name__, {
    "COCOevalMaxDets": "not provided; COCOEvaluator(max_dets_per_image=...) sets COCOeval's maxDets, and its "
                       "AP reports the largest of them.",
})
