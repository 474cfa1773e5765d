"""Printing evaluation results and checking them against expected values (detectron2's ``testing``)."""
from __future__ import annotations

import logging
import math
import pprint
import sys
from typing import Dict, Mapping

from ..utils.events import flatten_results_dict

__all__ = ["print_csv_format", "verify_results", "flatten_results_dict", "max_metric_difference"]


def print_csv_format(results: Mapping[str, Mapping[str, float]]) -> None:
    """Log each task's main metrics as a copy-paste-able CSV pair of lines
    (per-class entries, whose names contain '-', are left to the evaluators' tables)."""
    logger = logging.getLogger(__name__)
    for task, res in results.items():
        if not isinstance(res, Mapping):
            continue
        important: Dict[str, float] = {k: v for k, v in res.items() if "-" not in k}
        logger.info(f"copypaste: Task: {task}")
        logger.info("copypaste: " + ",".join(important))
        logger.info("copypaste: " + ",".join(f"{v:.4f}" for v in important.values()))


def verify_results(cfg, results: Mapping[str, Mapping[str, float]]) -> bool:
    """Check ``results`` against ``cfg.TEST.EXPECTED_RESULTS``, as detectron2's ``verify_results``.

    Each entry ``[task, metric, expected, tolerance]`` passes when ``results[task][metric]``
    exists, is finite and is within ``tolerance`` of ``expected``.

    Returns:
        True when every entry passes (or there are none).

    Raises:
        SystemExit: with status 1 after logging the expected and actual results, when an
            entry fails (so that a CI job running ``train_net.py --eval-only`` fails).
    """
    expected_results = list(cfg.TEST.get("EXPECTED_RESULTS", []) or [])
    if not expected_results:
        return True
    logger = logging.getLogger(__name__)
    failures = []
    for entry in expected_results:
        if len(entry) != 4:
            raise ValueError(f"TEST.EXPECTED_RESULTS entries are [task, metric, expected, tolerance]; got {entry!r}.")
        task, metric, expected, tolerance = entry
        actual = results.get(task, {}).get(metric)
        if actual is None or not math.isfinite(actual) or abs(actual - expected) > tolerance:
            failures.append(f"{task}/{metric}: expected {expected} +- {tolerance}, got {actual}")
    if failures:
        logger.error("Result verification failed: " + "; ".join(failures))
        logger.error("Expected results: " + str(expected_results))
        logger.error("Actual results: " + pprint.pformat(results))
        sys.exit(1)
    logger.info("Results verification passed.")
    return True


def max_metric_difference(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]]) -> float:
    """Largest absolute difference between the metrics of two results dicts (``{task: {metric: value}}``).

    NaN matches NaN (a metric without ground truth); NaN against a number, or a task or metric that
    only one of them has, counts as ``inf``.
    """
    if a.keys() != b.keys():
        return math.inf
    worst = 0.0
    for task in a:
        if a[task].keys() != b[task].keys():
            return math.inf
        for metric, x in a[task].items():
            y = b[task][metric]
            if math.isnan(x) or math.isnan(y):
                worst = worst if math.isnan(x) and math.isnan(y) else math.inf
            else:
                worst = max(worst, abs(x - y))
    return worst
