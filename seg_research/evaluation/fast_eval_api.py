"""COCO evaluation backends: pycocotools' ``COCOeval`` (the reference) and hotcoco's (a Rust port
with the same numbers, ~10-40x faster on COCO-sized problems), behind one interface.

A backend turns ground truth + COCO result dicts into COCOeval's ``precision`` array; the
metrics are read from that array the same way for every backend (see ``coco_evaluation``).
``COCOEvaluator(use_fast_impl=True)`` (the default) uses :data:`FAST_BACKEND` when it is
installed and pycocotools otherwise. hotcoco was chosen over faster-coco-eval (1.8.0) for
exactness first: on the generated 5,000-image problem its precision arrays are bit-identical to
pycocotools', faster-coco-eval's differ by float rounding (up to 2.2e-16, in ~0.2% of the entries;
the 12 summary stats are equal); and it is faster there (0.48-0.68 s vs 8.7 s for bbox + segm,
pycocotools 35.7 s): benchmarks/README.md, section "COCO-scale evaluation".
"""
from __future__ import annotations

import contextlib
import importlib
import io
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..utils.absent import absent_names
from ..utils.registry import Registry
from . import backend_selection

__all__ = ["COCO_EVAL_BACKEND_REGISTRY", "COCOEvalBackend", "COCOPrecision", "FAST_BACKEND", "REFERENCE_BACKEND",
           "available_backends", "select_backend"]

REFERENCE_BACKEND = "pycocotools"
FAST_BACKEND = "hotcoco"

COCO_EVAL_BACKEND_REGISTRY = Registry("COCO_EVAL_BACKEND")
COCO_EVAL_BACKEND_REGISTRY.__doc__ = """
Maps a backend name to a :class:`COCOEvalBackend` subclass, built as ``cls(coco_gt)`` with the
ground truth's pycocotools index. Its ``module`` attribute names the package it needs.
"""


@dataclass(frozen=True)
class COCOPrecision:
    """COCOeval's accumulated precision and the axes it is laid out on.

    Attributes:
        precision: float64 (T, R, K, A, M): IoU thresholds × 101 recall points × categories ×
            area ranges × maxDets; -1 where the slice has no ground truth.
        iou_thrs: (T,) IoU thresholds (0.50:0.05:0.95).
        cat_ids: the K dataset category ids of the class axis (ascending).
        area_labels: the A area range names (``all, small, medium, large``).
        max_dets: the M per-image detection limits (ascending).
    """

    precision: np.ndarray
    iou_thrs: np.ndarray
    cat_ids: List[int]
    area_labels: List[str]
    max_dets: List[int]


class COCOEvalBackend:
    """Scores detection results against one ground truth, as pycocotools' COCOeval does.

    Args:
        coco_gt: pycocotools index of the ground truth json (checked by the caller).
    """

    module: str = ""

    def __init__(self, coco_gt: COCO) -> None:
        self._coco_gt = coco_gt

    def precision(self, results: List[Dict[str, Any]], iou_type: str, img_ids: Sequence[Any],
                  max_dets: Sequence[int]) -> COCOPrecision:
        """COCOeval ``evaluate`` + ``accumulate`` over ``img_ids`` with ``maxDets = max_dets``.

        Args:
            results: COCO result dicts of ``iou_type`` only (``bbox``: no ``segmentation``;
                ``segm``: no ``bbox``, so that area ranges use the mask's area); not modified.
            iou_type: ``"bbox"`` or ``"segm"``.
            img_ids: the images evaluated (images without results count their ground truth as missed).
            max_dets: ascending per-image detection limits.
        """
        raise NotImplementedError


def _laid_out(coco_eval: Any) -> COCOPrecision:
    params = coco_eval.params
    return COCOPrecision(np.asarray(coco_eval.eval["precision"], dtype=np.float64), np.asarray(params.iouThrs),
                         list(params.catIds), list(params.areaRngLbl), list(params.maxDets))


@COCO_EVAL_BACKEND_REGISTRY.register(name=REFERENCE_BACKEND)
class PycocotoolsBackend(COCOEvalBackend):
    """pycocotools' ``COCOeval`` (pure Python matching, the reference numbers)."""

    module = "pycocotools"

    def precision(self, results: List[Dict[str, Any]], iou_type: str, img_ids: Sequence[Any],
                  max_dets: Sequence[int]) -> COCOPrecision:
        with contextlib.redirect_stdout(io.StringIO()):
            if results:  # loadRes adds keys (id, area, ...) to the dicts it gets: give it copies
                coco_dt = self._coco_gt.loadRes([dict(r) for r in results])
            else:  # loadRes refuses an empty list
                coco_dt = COCO()
                coco_dt.dataset = {"images": self._coco_gt.dataset["images"],
                                   "categories": self._coco_gt.dataset["categories"], "annotations": []}
                coco_dt.createIndex()
            coco_eval = COCOeval(self._coco_gt, coco_dt, iouType=iou_type)
            coco_eval.params.imgIds = list(img_ids)
            coco_eval.params.maxDets = list(max_dets)
            coco_eval.evaluate()
            coco_eval.accumulate()
        return _laid_out(coco_eval)


@COCO_EVAL_BACKEND_REGISTRY.register(name=FAST_BACKEND)
class HotcocoBackend(COCOEvalBackend):
    """hotcoco's ``COCOeval`` (Rust; pycocotools' matching, accumulation and -1 conventions)."""

    module = "hotcoco"

    def __init__(self, coco_gt: COCO) -> None:
        super().__init__(coco_gt)
        hotcoco = importlib.import_module(self.module)
        self._hotcoco = hotcoco
        self._gt = hotcoco.COCO(coco_gt.dataset)

    def precision(self, results: List[Dict[str, Any]], iou_type: str, img_ids: Sequence[Any],
                  max_dets: Sequence[int]) -> COCOPrecision:
        if not img_ids:  # hotcoco reads an empty imgIds as "every image"; pycocotools evaluates none
            return PycocotoolsBackend(self._coco_gt).precision(results, iou_type, img_ids, max_dets)
        coco_eval = self._hotcoco.COCOeval(self._gt, self._gt.load_res(list(results)), iou_type)
        params = coco_eval.params
        params.imgIds = list(img_ids)
        params.maxDets = list(max_dets)
        coco_eval.evaluate()
        coco_eval.accumulate()
        return _laid_out(coco_eval)


def select_backend(use_fast_impl: bool) -> str:
    """:data:`FAST_BACKEND` when ``use_fast_impl`` and its package imports, else pycocotools (with a
    warning when the fast one was asked for)."""
    return backend_selection.select_backend(COCO_EVAL_BACKEND_REGISTRY, FAST_BACKEND, REFERENCE_BACKEND,
                                            use_fast_impl, "COCO evaluation")


def available_backends() -> List[str]:
    """The registered backends whose package imports: the fast one first, the reference last."""
    return backend_selection.available_backends(COCO_EVAL_BACKEND_REGISTRY, REFERENCE_BACKEND)


__getattr__ = absent_names(__name__, {
    "COCOeval_opt": "detectron2's C++ COCOeval is not built; COCOEvaluator(use_fast_impl=True) scores with "
                    "hotcoco when it is installed (COCO_EVAL_BACKEND_REGISTRY), else pycocotools' COCOeval.",
})
