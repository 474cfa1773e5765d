"""Run reference evaluation packages written for older numpy on today's numpy.

``cityscapesscripts`` 2.3 calls ``np.in1d`` (removed in numpy 2.4) and ``lvis`` 0.5.3 calls
``np.float`` (removed in numpy 1.24). :func:`numpy_aliases` gives one module of such a package
a view of numpy with the missing names added, only while the evaluation runs; numpy itself
and every other module are left as they are.
"""
from __future__ import annotations

import contextlib
import types
from typing import Any, Iterator

import numpy as np

__all__ = ["numpy_aliases", "LEGACY_NUMPY_NAMES"]


def _in1d(ar1: Any, ar2: Any, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
    """numpy's former ``in1d``: ``isin`` on the flattened input."""
    return np.isin(np.asarray(ar1).ravel(), ar2, assume_unique=assume_unique, invert=invert)


#: names removed from numpy that the reference packages still use, and what they meant
LEGACY_NUMPY_NAMES = {"in1d": _in1d, "float": float}


@contextlib.contextmanager
def numpy_aliases(*modules: types.ModuleType) -> Iterator[None]:
    """Within the block, the ``np`` global of each of ``modules`` is numpy plus the
    :data:`LEGACY_NUMPY_NAMES` that this numpy lacks (nothing changes when it has them all)."""
    missing = {name: value for name, value in LEGACY_NUMPY_NAMES.items() if not hasattr(np, name)}
    if not missing:
        yield
        return
    view = types.ModuleType("numpy")
    view.__dict__.update(missing)
    view.__getattr__ = lambda name: getattr(np, name)  # type: ignore[method-assign]  # PEP 562: the rest of numpy
    originals = [module.np for module in modules]
    try:
        for module in modules:
            module.np = view
        yield
    finally:
        for module, original in zip(modules, originals):
            module.np = original
