"""LVIS box and mask AP (with the rare / common / frequent split), scored by the ``lvis`` package.

``lvis`` 0.5.3 declares ``opencv-python`` as a requirement, which would install a second
``cv2`` over this package's ``opencv-python-headless``; it only needs cv2 for drawing, so
install it with ``pip install --no-deps lvis==0.5.3`` (``make setup`` does).
"""
from __future__ import annotations

import copy
import logging
import os
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..data.catalog import MetadataCatalog
from ..utils import comm
from ..utils.file_io import PathManager, atomic_write_json
from .build import EVALUATOR_REGISTRY
from .coco_evaluation import instances_to_coco_json
from .evaluator import DatasetEvaluator, gather_predictions
from .numpy_compat import module_globals, numpy_view

__all__ = ["LVISEvaluator", "LVIS_RESULTS_FILE"]

logger = logging.getLogger(__name__)

LVIS_RESULTS_FILE = "lvis_instances_results.json"
_TASKS = ("bbox", "segm")
_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")
_INSTALL_HINT = "pip install --no-deps lvis==0.5.3"


def _import_lvis():
    try:
        import lvis
    except ImportError as e:
        raise ImportError(f"LVISEvaluator needs the 'lvis' package (LVIS's evaluation API): {_INSTALL_HINT} "
                          f"(--no-deps keeps opencv-python-headless as the only cv2).") from e
    return lvis


class LVISEvaluator(DatasetEvaluator):
    """AP of instance predictions on an LVIS dataset (detectron2's constructor).

    Args:
        dataset_name: a dataset whose metadata ``json_file`` is an LVIS annotation file; its
            contiguous class ids map to LVIS category ids by ``thing_dataset_id_to_contiguous_id``,
            or, without it, by the json's category ids in increasing order.
        tasks: subset of ``("bbox", "segm")``; None: ``segm`` too when the outputs have masks.
        distributed: gather predictions from all ranks; only the main process returns results.
        output_dir: where ``lvis_instances_results.json`` is written (None: not written).
        max_dets_per_image: detections kept per image (LVIS's default 300).

    Results: per task ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"}``,
    percentages (NaN where the ground truth has no object of that slice; detectron2 reports -100). Mask AP uses mask areas for the size ranges (the boxes are dropped before
    scoring ``segm``, as the ``lvis`` API would otherwise take box areas).
    """

    def __init__(self, dataset_name: str, tasks: Optional[Sequence[str]] = None, distributed: bool = True,
                 output_dir: Optional[str] = None, *, max_dets_per_image: Optional[int] = None) -> None:
        lvis = _import_lvis()
        if tasks is not None and (not tasks or any(t not in _TASKS for t in tasks)):
            raise ValueError(f"LVISEvaluator tasks must be a non-empty subset of {_TASKS}, got {tuple(tasks)}.")
        meta = MetadataCatalog.get(dataset_name)
        if meta.get("json_file") is None:
            raise KeyError(f"LVISEvaluator: dataset '{dataset_name}' has no metadata json_file (the LVIS annotation "
                           "json).")
        self._dataset_name = dataset_name
        self._tasks = tuple(tasks) if tasks is not None else None
        self._distributed = distributed
        self._output_dir = output_dir
        self._max_dets = 300 if max_dets_per_image is None else int(max_dets_per_image)
        self._lvis_api = lvis.LVIS(PathManager.get_local_path(meta.json_file))
        self._to_dataset_id = self._id_mapper(meta)
        self.reset()

    def _id_mapper(self, meta) -> Callable[[int], int]:
        forward = meta.get("thing_dataset_id_to_contiguous_id")
        inverse = ({int(c): int(d) for d, c in forward.items()} if forward
                   else dict(enumerate(sorted(self._lvis_api.get_cat_ids()))))

        def to_dataset_id(contiguous_id: int) -> int:
            if int(contiguous_id) not in inverse:
                raise ValueError(f"Class id {contiguous_id} is not a contiguous id of '{self._dataset_name}' "
                                 f"(0..{len(inverse) - 1}); check MODEL.ROI_HEADS.NUM_CLASSES.")
            return inverse[int(contiguous_id)]

        return to_dataset_id

    def reset(self) -> None:
        self._predictions: List[Dict[str, Any]] = []

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        for inp, out in zip(inputs, outputs, strict=True):
            if "instances" not in out:
                continue
            instances = out["instances"]
            with_masks = instances.has("pred_masks") and (self._tasks is None or "segm" in self._tasks)
            self._predictions.append({"image_id": inp["image_id"], "instances": instances_to_coco_json(
                instances, inp["image_id"], self._to_dataset_id, with_masks)})

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        predictions = self._predictions
        if self._distributed and comm.get_world_size() > 1:
            predictions = gather_predictions(predictions, self._output_dir, prefix="lvis_instances_predictions")
            if predictions is None:
                return None
        results = [r for p in predictions for r in p["instances"]]
        if self._output_dir:
            atomic_write_json(os.path.join(self._output_dir, LVIS_RESULTS_FILE), results)
        if not results:
            logger.warning(f"No predictions for {self._dataset_name}: LVIS AP is not computed.")
            return OrderedDict()
        tasks = self._tasks or (("bbox", "segm") if "segmentation" in results[0] else ("bbox",))
        return OrderedDict((task, self._evaluate_task(results, task)) for task in tasks)

    def _evaluate_task(self, results: List[Dict[str, Any]], task: str) -> Dict[str, float]:
        import lvis.eval

        if task == "segm":
            if "segmentation" not in results[0]:
                raise ValueError("LVISEvaluator task 'segm' needs 'pred_masks' in the output instances.")
            results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        with module_globals(lvis.eval, np=numpy_view()):
            lvis_results = lvis.LVISResults(self._lvis_api, copy.deepcopy(results), max_dets=self._max_dets)
            lvis_eval = lvis.LVISEval(self._lvis_api, lvis_results, iou_type=task)
            lvis_eval.run()
        lvis_eval.print_results()
        metrics = lvis_eval.get_results()
        # the API's -1 (no ground truth in that slice, e.g. no rare class) is NaN here, as in COCOEvaluator
        out = {m: 100.0 * float(metrics[m]) if metrics[m] != -1 else float("nan") for m in _METRICS}
        logger.info(f"LVIS {task} AP of {self._dataset_name}: " + ", ".join(f"{m} {v:.2f}" for m, v in out.items()))
        return out


@EVALUATOR_REGISTRY.register(name="lvis")
def _build_lvis_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    return LVISEvaluator(dataset_name, tasks=tasks, distributed=True, output_dir=output_folder,
                         max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE)
