"""Printing evaluation results."""
from __future__ import annotations

import logging
from typing import Dict, Mapping

__all__ = ["print_csv_format"]


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
