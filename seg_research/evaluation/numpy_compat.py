"""Run reference evaluation packages written for older numpy on today's numpy.

``cityscapesscripts`` 2.3 calls ``np.in1d`` (removed in numpy 2.4) and dumps numpy integers
with ``json`` (numpy 2 returns them where numpy 1 returned ints); ``lvis`` 0.5.3 calls
``np.float`` (removed in numpy 1.24). :func:`module_globals` replaces such names in one module
of the package only while the evaluation runs; numpy itself and every other module are left
as they are.
"""
from __future__ import annotations

import contextlib
import json
import types
from typing import Any, Iterator

import numpy as np

__all__ = ["module_globals", "numpy_view", "write_json", "LEGACY_NUMPY_NAMES"]


def _in1d(ar1: Any, ar2: Any, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
    """numpy's former ``in1d``: ``isin`` on the flattened input."""
    return np.isin(np.asarray(ar1).ravel(), ar2, assume_unique=assume_unique, invert=invert)


#: names removed from numpy that the reference packages still use, and what they meant
LEGACY_NUMPY_NAMES = {"in1d": _in1d, "float": float}


def numpy_view() -> types.ModuleType:
    """numpy plus the :data:`LEGACY_NUMPY_NAMES` this numpy lacks (numpy itself when it has them all)."""
    missing = {name: value for name, value in LEGACY_NUMPY_NAMES.items() if not hasattr(np, name)}
    if not missing:
        return np
    view = types.ModuleType("numpy")
    view.__dict__.update(missing)
    view.__getattr__ = lambda name: getattr(np, name)  # type: ignore[method-assign]  # PEP 562: the rest of numpy
    return view


def json_default(obj: Any) -> Any:
    """``json`` fallback for numpy scalars and arrays, and for plain objects (their ``__dict__``)."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    return obj.__dict__


def write_json(obj: Any, path: str) -> None:
    """cityscapesscripts' ``writeDict2JSON``, accepting numpy values."""
    with open(path, "w") as f:
        json.dump(obj, f, default=json_default, sort_keys=True, indent=4)


@contextlib.contextmanager
def module_globals(module: types.ModuleType, **values: Any) -> Iterator[None]:
    """Within the block, ``module.<name>`` is ``values[name]``; restored afterwards."""
    originals = {name: getattr(module, name) for name in values}
    try:
        for name, value in values.items():
            setattr(module, name, value)
        yield
    finally:
        for name, value in originals.items():
            setattr(module, name, value)
