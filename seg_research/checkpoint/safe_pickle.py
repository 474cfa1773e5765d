"""Read detectron2 ``.pkl`` weight files without running code from them.

A pickle can call any importable function while loading (``os.system`` included).
Weight files only need numpy arrays inside plain dicts/lists, so ``restricted_load``
resolves the few globals that rebuild numpy arrays and refuses every other one.
"""
from __future__ import annotations

import codecs
import pickle
from typing import IO, Any, Callable, Dict, Tuple

import numpy as np

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "restricted_load"]

_ALLOWED_GLOBALS: Dict[Tuple[str, str], Callable[..., Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    # Pickle protocol 5 rebuilds arrays from a buffer.
    ("numpy.core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python-2 pickles (and protocol-2 ones written by Python 3) encode bytes this way.
    ("_codecs", "encode"): codecs.encode,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global that is not needed to rebuild numpy arrays."""


class RestrictedUnpickler(pickle.Unpickler):
    """An ``Unpickler`` whose ``find_class`` only resolves numpy array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refusing to load global '{module}.{name}': weight .pkl files may only contain "
                "numpy arrays in dicts/lists. If you trust this file, convert it to a state_dict of "
                "tensors saved with torch.save and load that instead."
            ) from None


def restricted_load(file: IO[bytes]) -> Any:
    """``pickle.load(file, encoding="latin1")`` restricted to numpy arrays, numbers,
    strings and containers; raises ``UnsafePickleError`` (a ``pickle.UnpicklingError``)
    naming any other global."""
    return RestrictedUnpickler(file, encoding="latin1").load()
