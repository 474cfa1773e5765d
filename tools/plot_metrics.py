#!/usr/bin/env python
"""Plot the training curves of a run: losses, learning rate, training diagnostics and evaluation
metrics over iterations.

    python tools/plot_metrics.py OUTPUT_DIR [--output OUTPUT_DIR/metrics.png]

Reads ``OUTPUT_DIR/metrics.json`` (JSON lines written during training). When an iteration
appears more than once (a run resumed with --resume), its last values are used; an
unreadable line (e.g. cut by a killed run) is skipped with a warning. The models' training
diagnostics (``rpn/``, ``roi_head/``, ``fast_rcnn/``, ``mask_rcnn/``, ``sem_seg_head/`` events)
get two panels: sample counts per image (``.../num_*``) and accuracies (fractions). Evaluation
metrics are the other ``<task>/<metric>`` entries without a per-class suffix (``sem_seg/mIoU``,
``bbox/AP``, ...).
"""
import argparse
import io
import json
import logging
import os
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from seg_research.utils.file_io import atomic_write_bytes  # noqa: E402
from seg_research.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("seg_research.plot_metrics")

Series = Dict[str, List[Tuple[int, float]]]

# Namespaces of the events models put in training (detectron2's names, plus sem_seg_head/).
DIAGNOSTIC_PREFIXES = ("rpn/", "roi_head/", "fast_rcnn/", "mask_rcnn/", "sem_seg_head/")
SAMPLES_PANEL = "diagnostics: samples per image"
ACCURACY_PANEL = "diagnostics: accuracies and error rates"


def read_metrics(json_file: str) -> Series:
    """``{name: [(iteration, value), ...]}`` sorted by iteration; the last value wins per iteration."""
    latest: Dict[str, Dict[int, float]] = defaultdict(dict)
    with open(json_file, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                iteration = int(entry.pop("iteration"))
            except (ValueError, KeyError) as e:
                logger.warning(f"{json_file}:{line_no}: skipped an unreadable line ({e}).")
                continue
            for name, value in entry.items():
                if isinstance(value, (int, float)):
                    latest[name][iteration] = float(value)
    return {name: sorted(values.items()) for name, values in latest.items()}


def group_series(series: Series) -> Dict[str, Series]:
    """Panels: ``losses`` (names containing "loss"), ``learning rate`` (``lr``), the training
    diagnostics (names starting with one of ``DIAGNOSTIC_PREFIXES``: ``SAMPLES_PANEL`` for
    ``.../num_*`` counts, ``ACCURACY_PANEL`` for the others) and ``evaluation`` (other
    ``<task>/<metric>`` without a ``-<class>`` suffix). Empty panels are left out."""
    groups: Dict[str, Series] = {"losses": {}, "learning rate": {}, SAMPLES_PANEL: {}, ACCURACY_PANEL: {},
                                 "evaluation": {}}
    for name, points in sorted(series.items()):
        if "loss" in name:
            groups["losses"][name] = points
        elif name == "lr":
            groups["learning rate"][name] = points
        elif name.startswith(DIAGNOSTIC_PREFIXES):
            panel = SAMPLES_PANEL if name.rsplit("/", 1)[1].startswith("num_") else ACCURACY_PANEL
            groups[panel][name] = points
        elif "/" in name and "-" not in name.split("/", 1)[1]:
            groups["evaluation"][name] = points
    return {title: group for title, group in groups.items() if group}


def plot(groups: Dict[str, Series], title: str) -> bytes:
    """One panel per group, stacked, as PNG bytes."""
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 3 * len(groups)), sharex=True, squeeze=False)
    for ax, (name, group) in zip(axes[:, 0], groups.items(), strict=True):
        for label, points in group.items():
            its, values = zip(*points, strict=True)
            ax.plot(its, values, marker="o" if len(points) <= 20 else None, markersize=3, label=label)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel("iteration")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", help="training OUTPUT_DIR holding metrics.json")
    parser.add_argument("--output", help="PNG to write (default: OUTPUT_DIR/metrics.png)")
    args = parser.parse_args(argv)
    json_file = os.path.join(args.output_dir, "metrics.json")
    if not os.path.isfile(json_file):
        logger.error(f"No metrics.json in '{args.output_dir}'; pass the OUTPUT_DIR of a training run.")
        return 1
    groups = group_series(read_metrics(json_file))
    if not groups:
        logger.error(f"{json_file} holds no loss, lr, diagnostic or evaluation metric yet.")
        return 1
    out = args.output or os.path.join(args.output_dir, "metrics.png")
    atomic_write_bytes(out, plot(groups, os.path.basename(os.path.normpath(args.output_dir))))
    logger.info(f"Wrote {out} ({', '.join(groups)})")
    return 0


if __name__ == "__main__":
    setup_logger(name="seg_research")
    sys.exit(main())
