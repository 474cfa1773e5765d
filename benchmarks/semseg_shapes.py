"""Semantic FPN, FCN-8s, U-Net and DeepLabV3+ on Shapes at the same training time, in one sitting.

Each model's Shapes demo config is first timed for ``--probe-iters`` iterations (median ``time``
of metrics.json, logged every iteration, after the first 5); its ``SOLVER.MAX_ITER`` is then set so that training takes
``--minutes`` (the cosine schedule follows MAX_ITER), and the model is trained and evaluated once
through its ``train_net.py``. One JSON line per model goes to stdout (and to ``--json``)::

    .venv/bin/python benchmarks/semseg_shapes.py --minutes 6 --json output/semseg_shapes.jsonl

Fields: ``model``, ``config``, ``probe_s_per_iter``, ``max_iter``, ``train_minutes`` (measured wall
time of the training run, evaluation included), ``mIoU``, ``fwIoU``, ``pACC``, ``loadavg`` (1-minute
load average at the start and end: the figures are only comparable when nothing else ran).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent

#: model -> (train_net.py, demo config), all relative to the repository root
MODELS = {
    "Semantic FPN R18": ("tools/train_net.py", "configs/Shapes/semantic_fpn_R_18_demo.yaml"),
    "FCN-8s R18": ("projects/FCN/train_net.py", "projects/FCN/configs/Shapes/fcn8s_R_18_demo.yaml"),
    "U-Net": ("projects/UNet/train_net.py", "projects/UNet/configs/Shapes/unet_demo.yaml"),
    "DeepLabV3+ R18": ("projects/DeepLabV3Plus/train_net.py",
                       "projects/DeepLabV3Plus/configs/Shapes/deeplab_v3plus_R_18_demo.yaml"),
}


def _train(script: str, config: str, output_dir: Path, *opts: str) -> float:
    """Runs ``script --config-file config OUTPUT_DIR output_dir opts``; returns its wall time (s)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / script), "--config-file", str(ROOT / config),
                    "OUTPUT_DIR", str(output_dir), *opts], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _metrics(output_dir: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]


def _loadavg() -> float:
    return os.getloadavg()[0]


def compare(minutes: float, probe_iters: int, work: Path) -> List[Dict[str, Any]]:
    records = []
    for model, (script, config) in MODELS.items():
        start_load = _loadavg()
        probe_dir = work / f"{model}-probe"
        _train(script, config, probe_dir, "SOLVER.MAX_ITER", str(probe_iters), "TEST.EVAL_PERIOD", "0",
               "SOLVER.CHECKPOINT_PERIOD", str(10 * probe_iters), "LOG_PERIOD", "1", "DATASETS.TEST", "()")
        times = [m["time"] for m in _metrics(probe_dir) if "time" in m][5:]
        s_per_iter = statistics.median(times)
        max_iter = max(int(minutes * 60 / s_per_iter), 10)
        run_dir = work / model
        seconds = _train(script, config, run_dir, "SOLVER.MAX_ITER", str(max_iter), "TEST.EVAL_PERIOD", "0",
                         "SOLVER.CHECKPOINT_PERIOD", str(max_iter))
        result = json.loads(next((run_dir / "inference").glob("*/results.json")).read_text())["sem_seg"]
        record = {"model": model, "config": config, "probe_s_per_iter": round(s_per_iter, 3),
                  "max_iter": max_iter, "train_minutes": round(seconds / 60, 2),
                  **{k: round(result[k], 1) for k in ("mIoU", "fwIoU", "pACC")},
                  "loadavg": [round(start_load, 2), round(_loadavg(), 2)]}
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="training time of each model")
    parser.add_argument("--probe-iters", type=int, default=25, help="iterations timed to size each run")
    parser.add_argument("--json", help="also append the records to this JSON-lines file")
    parser.add_argument("--work-dir", help="keep the output directories here (default: a temporary folder)")
    args = parser.parse_args()
    if args.work_dir:
        records = compare(args.minutes, args.probe_iters, Path(args.work_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="semseg_shapes_") as work:
            records = compare(args.minutes, args.probe_iters, Path(work))
    if args.json:
        with open(args.json, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
    main()
