"""The COCO panoptic evaluator: writes predictions in COCO panoptic format and scores them with a
:mod:`.fast_pq_api` backend, hotcoco or ours (:mod:`.panoptic_quality`: PQ, SQ, RQ; the definition is
in that module's doc). ``pq_compute``, ``pq_from_stats``, ``image_pq_stats`` and ``PanopticCategories``
stay importable from here.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from tabulate import tabulate

from ..data.catalog import DatasetCatalog, MetadataCatalog
from ..data.datasets.coco import read_json
from ..data.detection_utils import write_panoptic_ids
from ..utils import comm
from ..utils.errors import DataError
from ..utils.file_io import PathManager, atomic_write_json
from .backend_selection import copy_with_backend
from .evaluator import DatasetEvaluator
from .fast_pq_api import PQ_BACKEND_REGISTRY, select_pq_backend
from .panoptic_quality import (
    VOID,
    ImagePair,
    PanopticCategories,
    class_metrics,
    image_pq_stats,
    pq_compute,
    pq_from_stats,
    summary_table,
)

__all__ = ["COCOPanopticEvaluator", "pq_compute", "pq_from_stats", "image_pq_stats", "PanopticCategories",
           "PANOPTIC_PREDICTIONS_FILE", "PANOPTIC_PREDICTIONS_FOLDER"]

logger = logging.getLogger(__name__)

#: Written into the evaluator's ``output_dir``: a COCO panoptic json (``images``, ``categories``,
#: ``annotations: [{image_id, file_name, segments_info: [{id, category_id (dataset id), isthing?,
#: score?}]}]``) whose PNGs are in :data:`PANOPTIC_PREDICTIONS_FOLDER` beside it.
PANOPTIC_PREDICTIONS_FILE = "panoptic_predictions.json"
PANOPTIC_PREDICTIONS_FOLDER = "panoptic_predictions"


def _all_reduce_sum(stats: np.ndarray) -> np.ndarray:
    """Sum a float64 array over ranks (on the GPU for NCCL, which has no CPU tensors; gloo sums float64 on CPU)."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.from_numpy(stats).to(device)
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


class COCOPanopticEvaluator(DatasetEvaluator):
    """PQ, SQ and RQ of panoptic predictions against a dataset's COCO panoptic ground truth.

    :meth:`process` writes each prediction as a COCO panoptic PNG (named as the ground truth's)
    into ``output_dir/panoptic_predictions/`` (a temporary folder when ``output_dir`` is None) and
    keeps its small json entry. :meth:`evaluate` scores this rank's images with :attr:`backend`
    (hotcoco on its threads; ours in process or with a pool of ``num_workers`` processes), sums the
    per-category statistics over ranks (one ``(num_categories, 4)`` all-reduce), gathers the json
    entries on rank 0, which writes ``output_dir/panoptic_predictions.json``
    (:data:`PANOPTIC_PREDICTIONS_FILE`), logs a table and returns ``{"panoptic_seg": {"PQ", "SQ",
    "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st", "PQ-<class>", "SQ-<class>",
    "RQ-<class>"}}`` in percent. A class with no TP, FP or
    FN is NaN in the per-class entries and left out of the means (as are Things/Stuff means without
    such classes). Only the processed images are evaluated; the numbers equal :func:`pq_compute`
    on the written files.

    Model output contract: ``outputs[i]["panoptic_seg"] = (panoptic_ids, segments_info)`` with
    ``panoptic_ids`` an (H, W) integer tensor at the input's ``height`` × ``width`` (0 or -1 =
    void) and ``segments_info`` a list of ``{"id", "category_id", "isthing", "score" (optional)}``:
    with ``isthing`` True, ``category_id`` is a contiguous thing id (inverse of the metadata's
    ``thing_dataset_id_to_contiguous_id``), with False a contiguous stuff id (inverse of
    ``stuff_dataset_id_to_contiguous_id``); without ``isthing`` it is the dataset category id.
    Listed segments without pixels are dropped.

    Args:
        dataset_name: a dataset whose metadata has ``panoptic_json`` and ``panoptic_root`` (as set by
            ``register_coco_panoptic[_separated]``) and the two id maps.
        output_dir: where the json and PNGs go.
        distributed: sum statistics and gather json entries across ranks; only rank 0 returns results.
        num_workers: processes scoring the images of a rank with ours (0: in the evaluating process).
        use_fast_impl: score with hotcoco (:data:`~.fast_pq_api.FAST_PQ_BACKEND`, same counts) when it
            imports; False: with ours (:data:`~.fast_pq_api.REFERENCE_PQ_BACKEND`).
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *, distributed: bool = True,
                 num_workers: int = 0, use_fast_impl: bool = True) -> None:
        meta = MetadataCatalog.get(dataset_name)
        missing = [k for k in ("panoptic_json", "panoptic_root", "thing_dataset_id_to_contiguous_id",
                               "stuff_dataset_id_to_contiguous_id") if meta.get(k) is None]
        if missing:
            raise ValueError(f"COCOPanopticEvaluator: dataset '{dataset_name}' lacks the metadata {missing}; "
                             f"register it with seg_research.data.datasets.register_coco_panoptic.")
        if num_workers < 0:
            raise ValueError(f"num_workers (TEST.PANOPTIC_NUM_WORKERS) must be >= 0, got {num_workers}.")
        self._dataset_name = dataset_name
        self._gt_json_file = meta.panoptic_json
        self._gt_root = meta.panoptic_root
        if not PathManager.exists(self._gt_json_file):
            DatasetCatalog.get(dataset_name)  # generated datasets (Shapes) write their files on first load
        gt_json = read_json(self._gt_json_file)
        self._gt_categories = gt_json["categories"]
        self._categories = PanopticCategories.from_json(self._gt_categories)
        self._gt_images = {img["id"]: img for img in gt_json.get("images", [])}
        self._gt_annotations = {ann["image_id"]: ann for ann in gt_json.get("annotations", [])}
        self._thing_ids = {int(c): int(d) for d, c in meta.thing_dataset_id_to_contiguous_id.items()}
        self._stuff_ids = {int(c): int(d) for d, c in meta.stuff_dataset_id_to_contiguous_id.items()}
        self._output_dir = output_dir
        self._distributed = distributed
        self._num_workers = int(num_workers)
        self._backend = select_pq_backend(use_fast_impl)
        self.reset()

    @property
    def backend(self) -> str:
        """Name of the :data:`~.fast_pq_api.PQ_BACKEND_REGISTRY` backend that scores (``hotcoco``, ``seg_research``)."""
        return self._backend

    def with_backend(self, name: str) -> "COCOPanopticEvaluator":
        """A copy of this evaluator (same dataset, output folder and workers, no predictions) that scores
        with the registered backend ``name`` (its package must be installed)."""
        return copy_with_backend(self, PQ_BACKEND_REGISTRY, name, "panoptic quality")

    def reset(self) -> None:
        self._predictions: List[Dict[str, Any]] = []
        if self._output_dir:
            self._png_dir = os.path.join(self._output_dir, PANOPTIC_PREDICTIONS_FOLDER)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="panoptic_eval_")
            self._png_dir = self._tmp.name

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Write each ``panoptic_seg`` output as a PNG and keep its json entry.

        Raises:
            ValueError: an input without ``image_id``.
            DataError: an image_id not in the ground truth json, a map of the wrong size, nonzero
                ids not in segments_info, or a category_id not in the metadata's maps.
        """
        for inp, out in zip(inputs, outputs, strict=True):
            if "panoptic_seg" not in out:
                continue
            if "image_id" not in inp:
                raise ValueError("COCOPanopticEvaluator needs each input's 'image_id' (the dataset dict's; "
                                 "DatasetMapper keeps it) to find its ground truth.")
            image_id = inp["image_id"]
            gt_ann = self._gt_annotations.get(image_id)
            if gt_ann is None:
                raise DataError(f"image_id {image_id!r} is not in the panoptic ground truth; inputs must come from "
                                f"dataset '{self._dataset_name}'.", file_name=self._gt_json_file, record=image_id)
            ids, segments = self._prediction(inp, *out["panoptic_seg"])
            write_panoptic_ids(os.path.join(self._png_dir, gt_ann["file_name"]), ids)
            self._predictions.append({"image_id": image_id, "file_name": gt_ann["file_name"],
                                      "segments_info": segments})

    def _prediction(self, inp: dict, panoptic_ids: Any, segments_info: Optional[Sequence[Mapping[str, Any]]]
                    ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
        """(H, W) int64 ids (void 0) and the segments_info with dataset category ids of one output."""
        image_id, file_name = inp["image_id"], inp.get("file_name")
        if segments_info is None:
            raise ValueError("COCOPanopticEvaluator needs segments_info in panoptic_seg = (ids, segments_info); "
                             "convert label_divisor-encoded maps to segments first.")
        ids = torch.as_tensor(panoptic_ids).to("cpu", torch.int64).numpy()
        ids = np.where(ids == -1, VOID, ids)
        image = self._gt_images.get(image_id, {})
        expected = (inp.get("height", image.get("height")), inp.get("width", image.get("width")))
        if None not in expected and ids.shape != tuple(expected):
            raise DataError(f"panoptic_seg has size {tuple(ids.shape)} but the image is {tuple(expected)}; models "
                            f"must return panoptic_seg at the record's original height/width.",
                            file_name=file_name, record=image_id)
        present = set(np.unique(ids).tolist()) - {VOID}
        listed = {int(s["id"]) for s in segments_info}
        if present - listed:
            raise DataError(f"panoptic_seg has segment id(s) {sorted(present - listed)[:10]} that are not in "
                            f"segments_info; every nonzero id (void: 0 or -1) needs an entry.",
                            file_name=file_name, record=image_id)
        segments = []
        for seg in segments_info:
            if int(seg["id"]) not in present:
                continue
            entry = {"id": int(seg["id"]), "category_id": self._dataset_category(seg, file_name, image_id)}
            if "isthing" in seg:
                entry["isthing"] = bool(seg["isthing"])
            if "score" in seg:
                entry["score"] = float(seg["score"])
            segments.append(entry)
        return ids, segments

    def _dataset_category(self, seg: Mapping[str, Any], file_name: Optional[str], image_id: Any) -> int:
        category = int(seg["category_id"])
        if "isthing" not in seg:
            return category
        mapping, key = ((self._thing_ids, "thing_dataset_id_to_contiguous_id") if seg["isthing"]
                        else (self._stuff_ids, "stuff_dataset_id_to_contiguous_id"))
        if category not in mapping:
            raise DataError(f"Segment {seg['id']} has isthing={bool(seg['isthing'])} and contiguous category_id "
                            f"{category}, which is not a value of the metadata's {key} ({sorted(mapping)}).",
                            file_name=file_name, record=image_id)
        return mapping[category]

    def _pairs(self) -> List[ImagePair]:
        return [ImagePair(p["image_id"], os.path.join(self._gt_root, p["file_name"]),
                           self._gt_annotations[p["image_id"]]["segments_info"],
                           os.path.join(self._png_dir, p["file_name"]), p["segments_info"])
                for p in self._predictions]

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        stats = PQ_BACKEND_REGISTRY.get(self._backend)().stats(self._pairs(), self._categories, self._num_workers)
        predictions = self._predictions
        if self._distributed and comm.get_world_size() > 1:
            stats = _all_reduce_sum(stats)
            predictions = [p for rank in comm.gather(predictions, dst=0) for p in rank]
            if not comm.is_main_process():
                return None
        if not predictions:
            logger.warning(f"COCOPanopticEvaluator on '{self._dataset_name}' received no predictions; was "
                           f"process() called?")
        if self._output_dir:
            self._write_json(predictions)
        results = pq_from_stats(stats, self._categories)
        logger.info(f"Panoptic evaluation of {len(predictions)} images of '{self._dataset_name}' "
                    f"({self._backend}):\n"
                    + summary_table(results))
        return OrderedDict(panoptic_seg=self._percentages(results, stats))

    def _write_json(self, predictions: Iterable[Dict[str, Any]]) -> None:
        annotations = list(predictions)
        path = os.path.join(self._output_dir, PANOPTIC_PREDICTIONS_FILE)
        atomic_write_json(path, {
            "images": [self._gt_images[a["image_id"]] for a in annotations if a["image_id"] in self._gt_images],
            "categories": self._gt_categories,
            "annotations": annotations,
        })
        logger.info(f"Wrote {len(annotations)} panoptic predictions to {path} (PNGs in {self._png_dir})")

    def _percentages(self, results: Mapping[str, Any], stats: np.ndarray) -> "OrderedDict[str, float]":
        res: "OrderedDict[str, float]" = OrderedDict()
        for name, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
            for metric in ("pq", "sq", "rq"):
                res[metric.upper() + suffix] = 100 * results[name][metric]
        counted = class_metrics(stats)[3]
        rows = []
        for i, (cid, name) in enumerate(zip(self._categories.ids, self._categories.names, strict=True)):
            values = [100 * results["per_class"][cid][m] if counted[i] else float("nan") for m in ("pq", "sq", "rq")]
            res.update({f"{m}-{name}": v for m, v in zip(("PQ", "SQ", "RQ"), values, strict=True)})
            rows.append([name, "thing" if self._categories.isthing[i] else "stuff", *values])
        logger.info("Per-category panoptic quality:\n" + tabulate(
            rows, headers=["category", "kind", "PQ", "SQ", "RQ"], tablefmt="pipe", floatfmt=".3f"))
        return res
