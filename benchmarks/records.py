"""Timing and the JSON record of one benchmark run: :class:`Timer`, :func:`base_record`, :func:`emit`."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import resource
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

import torch
import torchvision

from seg_research.config import CfgNode
from seg_research.evaluation.testing import max_metric_difference


# ----------------------------------------------------------------------------- environment
def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")


def _status_mb(field: str) -> Optional[float]:
    """A memory field of /proc/self/status (``VmHWM``, ``VmRSS``) in MiB; None off Linux."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    return None


def peak_rss_mb_since_reset() -> float:
    """Peak resident memory (MiB) since the last :func:`reset_peak_rss` (of the process elsewhere)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory (MiB) of this process now (Linux; 0.0 elsewhere)."""
    return _status_mb("VmRSS") or 0.0


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()


class Timer:
    """Times calls of each implementation and tracks its peak RSS / CUDA memory."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: Dict[str, List[float]] = {}
        self.peak_rss_mb: Dict[str, float] = {}
        self.peak_cuda_mb: Dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, key: str, fn: Callable[[], Any], record: bool) -> Any:
        """Run ``fn``; with ``record``, add its wall time (``time.perf_counter``) under ``key``."""
        reset_peak_rss()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._sync()
        start = time.perf_counter()
        out = fn()
        self._sync()
        elapsed = time.perf_counter() - start
        if record:
            self.seconds.setdefault(key, []).append(elapsed)
        impl = key.split("/")[0]
        self.peak_rss_mb[impl] = max(self.peak_rss_mb.get(impl, 0.0), peak_rss_mb_since_reset())
        if self.device.type == "cuda":
            cuda_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.peak_cuda_mb[impl] = max(self.peak_cuda_mb.get(impl, 0.0), cuda_mb)
        return out

    def summary(self, key: str, prefix: str = "") -> Dict[str, Any]:
        values = self.seconds[key]
        return {f"{prefix}median_s": round(statistics.median(values), 6), f"{prefix}min_s": round(min(values), 6),
                f"{prefix}max_s": round(max(values), 6)}

    def memory(self, impl: str) -> Dict[str, Any]:
        out = {"peak_rss_mb": round(self.peak_rss_mb.get(impl, peak_rss_mb_since_reset()), 1)}
        if impl in self.peak_cuda_mb:
            out["peak_cuda_mb"] = round(self.peak_cuda_mb[impl], 1)
        return out


def base_record(args: argparse.Namespace, cfg: Optional[CfgNode], impl: str) -> Dict[str, Any]:
    """Fields of every record; ``cfg`` None for the generated tasks (no config, CPU)."""
    return {
        "impl": impl, "task": args.task, "config": args.config_file, "opts": list(args.opts or []),
        "n": args.iters, "warmup": args.warmup, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "device": cfg.MODEL.DEVICE if cfg is not None else "cpu",
        "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "keep_freed_memory": args.keep_freed_memory,
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }


#: Largest difference (percentage points) between two backends' metrics that counts as equal.
METRICS_ATOL = 1e-6


def metrics_agreement(results: Dict[str, Dict[str, float]], reference: Optional[Dict[str, Dict[str, float]]]
                      ) -> Dict[str, Any]:
    """``metrics_equal`` (every metric within :data:`METRICS_ATOL` of ``reference``'s, NaN matching NaN)
    and ``max_metric_diff`` (null when a metric is missing or NaN on one side only); both null without
    a reference (pycocotools not installed)."""
    if reference is None:
        return {"metrics_equal": None, "max_metric_diff": None}
    diff = max_metric_difference(results, reference)
    return {"metrics_equal": diff <= METRICS_ATOL, "max_metric_diff": diff if math.isfinite(diff) else None}


def emit(record: Dict[str, Any], json_out: str) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if json_out:
        os.makedirs(os.path.dirname(os.path.abspath(json_out)), exist_ok=True)
        with open(json_out, "a") as f:
            f.write(line + "\n")
