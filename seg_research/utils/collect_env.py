"""``collect_env_info()``: the versions that matter when reporting a problem, as a printable table."""
from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import List, Tuple

import numpy as np
import torch

__all__ = ["collect_env_info"]

_PACKAGES = ("seg_research", "torchvision", "fvcore", "iopath", "pycocotools", "opencv-python-headless", "Pillow")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect_env_info() -> str:
    """A two-column table: platform, Python, numpy, torch (and its CUDA), GPUs, and the libraries seg_research uses."""
    rows: List[Tuple[str, str]] = [
        ("sys.platform", sys.platform), ("platform", platform.platform()),
        ("Python", sys.version.replace("\n", " ")), ("numpy", np.__version__),
        ("PyTorch", f"{torch.__version__} @{torch.__file__.rsplit('/', 2)[0]}"),
        ("PyTorch CUDA", str(torch.version.cuda)), ("CUDA available", str(torch.cuda.is_available())),
    ]
    if torch.cuda.is_available():
        rows += [(f"GPU {i}", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]
    rows += [(package, _version(package)) for package in _PACKAGES]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


if __name__ == "__main__":
    print(collect_env_info())
