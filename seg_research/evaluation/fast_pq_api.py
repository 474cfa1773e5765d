"""Panoptic quality backends: ours (:mod:`.panoptic_quality`, the reference, numpy) and hotcoco's
(Rust, ``hotcoco.panoptic``), behind one interface.

A backend turns image pairs (ground truth + prediction PNGs with their segments_info) into the
summed ``(num_categories, 4)`` float64 statistics ``(TP, FP, FN, sum of IoU)`` of
:func:`.panoptic_quality.image_pq_stats`; PQ/SQ/RQ are computed from them the same way for every
backend (:func:`.panoptic_quality.pq_from_stats`), and ranks sum them. ``COCOPanopticEvaluator``
(``use_fast_impl=True``, config ``TEST.PANOPTIC_USE_FAST_IMPL``, the default) uses
:data:`FAST_PQ_BACKEND` when hotcoco imports and ours otherwise.

hotcoco follows the reference COCO panoptic API, ours the same definition; three conventions of
its inputs are adapted so that its counts are ours (checked by tests/evaluation/test_fast_pq_api.py):

* ground-truth areas: hotcoco takes a segment's ``area`` from the json when it is there (as the
  reference), ours counts the PNG; ``area`` is not passed, so hotcoco counts the PNG too.
* image ids: hotcoco reads only non-negative integers; images are passed as 0..N-1 (our string ids,
  e.g. Cityscapes', stay ours).
* checks: hotcoco accepts repeated segment ids and ground-truth categories missing from the json,
  which ours rejects; they are checked here first, with ours' errors. Inputs that hotcoco rejects
  (missing or unreadable PNG, unlisted ids, size mismatch, ...) are scored by ours, which raises
  its DataError naming the file and image.

hotcoco scores images on its own thread pool (rayon: ``RAYON_NUM_THREADS``, default one thread per
core), in the calling process; ``num_workers`` (processes) applies to ours only.
"""
from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..utils.registry import Registry
from . import backend_selection
from .panoptic_quality import ImagePair, PanopticCategories, accumulate_stats, segment_ids

__all__ = ["PQ_BACKEND_REGISTRY", "PQBackend", "FAST_PQ_BACKEND", "REFERENCE_PQ_BACKEND", "select_pq_backend",
           "available_pq_backends"]

logger = logging.getLogger(__name__)

REFERENCE_PQ_BACKEND = "seg_research"
FAST_PQ_BACKEND = "hotcoco"

PQ_BACKEND_REGISTRY = Registry("PQ_BACKEND")
PQ_BACKEND_REGISTRY.__doc__ = """
Maps a backend name to a :class:`PQBackend` subclass, built without arguments. Its ``module``
attribute names the package it needs.
"""


class PQBackend:
    """Sums the panoptic quality statistics of image pairs, as :func:`.panoptic_quality.image_pq_stats` defines them."""

    module: str = ""

    def stats(self, pairs: Sequence[ImagePair], categories: PanopticCategories, num_workers: int = 0) -> np.ndarray:
        """float64 (len(categories), 4): TP, FP, FN and the sum of the matches' IoU per category (rows in
        ``categories`` order), summed over ``pairs``.

        Args:
            pairs: images to score (PNG paths, segments_info with dataset category ids).
            categories: the ground truth json's categories.
            num_workers: processes (0: this one), for backends that use them.

        Raises:
            DataError: inconsistent PNGs and segments_info (see ``image_pq_stats``).
        """
        raise NotImplementedError


@PQ_BACKEND_REGISTRY.register(name=REFERENCE_PQ_BACKEND)
class SegResearchPQBackend(PQBackend):
    """Ours (:mod:`.panoptic_quality`: numpy, one image at a time, optionally in a pool of processes)."""

    module = "numpy"

    def stats(self, pairs: Sequence[ImagePair], categories: PanopticCategories, num_workers: int = 0) -> np.ndarray:
        return accumulate_stats(pairs, categories, num_workers)


def _check_segments(pairs: Sequence[ImagePair], categories: PanopticCategories) -> None:
    """Ours' checks of the segments_info that hotcoco does not make: unique ids, known categories (DataError)."""
    for pair in pairs:
        for segments, listed, side, file_name in (
                (pair.gt_segments, "Ground truth segments_info", "Ground truth", pair.gt_file),
                (pair.pred_segments, "Predicted segments_info", "Prediction", pair.pred_file)):
            segment_ids(segments, listed, file_name, pair.image_id)
            categories.rows([int(s["category_id"]) for s in segments], side, file_name, pair.image_id)


def _hotcoco_inputs(pairs: Sequence[ImagePair], categories: PanopticCategories
                    ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Ground truth and prediction as COCO panoptic dicts for hotcoco: image ids 0..N-1, absolute PNG
    paths as file names (folders ``/``), ground-truth segments without ``area``."""
    gt: List[Dict[str, Any]] = []
    pred: List[Dict[str, Any]] = []
    for k, pair in enumerate(pairs):
        gt.append({"image_id": k, "file_name": os.path.abspath(pair.gt_file), "segments_info": [
            {"id": int(s["id"]), "category_id": int(s["category_id"]), "iscrowd": int(s.get("iscrowd", 0))}
            for s in pair.gt_segments]})
        pred.append({"image_id": k, "file_name": os.path.abspath(pair.pred_file), "segments_info": [
            {"id": int(s["id"]), "category_id": int(s["category_id"])} for s in pair.pred_segments]})
    cats = [{"id": i, "name": n, "isthing": int(t)} for i, n, t in zip(categories.ids, categories.names,
                                                                       categories.isthing, strict=True)]
    return {"annotations": gt, "categories": cats}, {"annotations": pred, "categories": cats}


@PQ_BACKEND_REGISTRY.register(name=FAST_PQ_BACKEND)
class HotcocoPQBackend(PQBackend):
    """hotcoco's ``PanopticEval`` (Rust, images on a thread pool), inputs adapted as the module doc says."""

    module = "hotcoco"

    def __init__(self) -> None:
        self._panoptic = importlib.import_module(f"{self.module}.panoptic")

    def stats(self, pairs: Sequence[ImagePair], categories: PanopticCategories, num_workers: int = 0) -> np.ndarray:
        if not pairs:
            return np.zeros((len(categories), 4), dtype=np.float64)
        _check_segments(pairs, categories)
        gt, pred = _hotcoco_inputs(pairs, categories)
        try:
            evaluation = self._panoptic.PanopticEval(gt, pred, gt_folder="/", pred_folder="/")
            evaluation.evaluate()
        except (ValueError, OSError) as e:
            logger.warning(f"Panoptic quality: hotcoco rejected the inputs ({e}); scoring them with "
                           f"{REFERENCE_PQ_BACKEND}, which names the file at fault.")
            return accumulate_stats(pairs, categories, num_workers)
        per_class = evaluation.results()["per_class"]
        return np.array([[per_class[c][k] for k in ("tp", "fp", "fn", "iou")] for c in categories.ids],
                        dtype=np.float64).reshape(len(categories), 4)


def select_pq_backend(use_fast_impl: bool) -> str:
    """:data:`FAST_PQ_BACKEND` when ``use_fast_impl`` and hotcoco imports, else ours (with a warning when
    the fast one was asked for)."""
    return backend_selection.select_backend(PQ_BACKEND_REGISTRY, FAST_PQ_BACKEND, REFERENCE_PQ_BACKEND,
                                            use_fast_impl, "Panoptic quality")


def available_pq_backends() -> List[str]:
    """The registered backends whose package imports: the fast one first, ours last."""
    return backend_selection.available_backends(PQ_BACKEND_REGISTRY, REFERENCE_PQ_BACKEND)
