"""Moved to :mod:`seg_research.utils.download`: the weights cache sits in utils, below every layer that reads
a path (``utils.file_io``'s ``PathManager`` resolves ``detectron2://`` and URLs through it). This module keeps
the detectron2-style import path working."""
from ..utils.download import (
    DETECTRON2_URL_PREFIX,
    WeightsDownloadError,
    WeightsHashMismatchError,
    cached_path_for_url,
    get_cache_dir,
    resolve_weights,
    weights_url,
)

__all__ = [
    "DETECTRON2_URL_PREFIX",
    "WeightsDownloadError",
    "WeightsHashMismatchError",
    "cached_path_for_url",
    "get_cache_dir",
    "resolve_weights",
    "weights_url",
]
