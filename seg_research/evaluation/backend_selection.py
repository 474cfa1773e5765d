"""Choosing between a metric's registered backends: a fast one (an optional package) and the reference.

Each backend class in such a registry names the package it needs in its ``module`` attribute. Used by
the COCO backends (:mod:`.fast_eval_api`) and the panoptic quality backends (:mod:`.fast_pq_api`).
"""
from __future__ import annotations

import copy
import importlib
import logging
from typing import List, Optional, TypeVar

from ..utils.registry import Registry

__all__ = ["import_error", "select_backend", "available_backends", "copy_with_backend"]

logger = logging.getLogger(__name__)

EvaluatorT = TypeVar("EvaluatorT")


def import_error(registry: Registry, name: str) -> Optional[ImportError]:
    """The ImportError of backend ``name``'s package, or None when it imports."""
    try:
        importlib.import_module(registry.get(name).module)
    except ImportError as e:
        return e
    return None


def select_backend(registry: Registry, fast: str, reference: str, use_fast_impl: bool, what: str) -> str:
    """``fast`` when ``use_fast_impl`` and its package imports, else ``reference`` (with a warning naming
    ``what``, e.g. "COCO evaluation", when the fast one was asked for)."""
    if not use_fast_impl:
        return reference
    error = import_error(registry, fast)
    if error is not None:
        module = registry.get(fast).module
        logger.warning(f"{what}: the fast backend needs the '{module}' package ({error}); using {reference} "
                       f"(same numbers, slower). Install it with `pip install {module}`.")
        return reference
    return fast


def available_backends(registry: Registry, reference: str) -> List[str]:
    """The registered backends whose package imports, by name, with ``reference`` last."""
    names = sorted((name for name, _ in registry), key=lambda n: (n == reference, n))
    return [name for name in names if import_error(registry, name) is None]


def copy_with_backend(evaluator: EvaluatorT, registry: Registry, name: str, what: str) -> EvaluatorT:
    """A shallow copy of ``evaluator`` (which keeps its backend's name in ``_backend`` and has ``reset()``)
    set to backend ``name`` and reset; KeyError naming ``what`` and the registered backends otherwise."""
    if name not in registry:
        raise KeyError(f"No {what} backend '{name}'; registered: {sorted(k for k, _ in registry)}.")
    other = copy.copy(evaluator)
    other._backend = name  # type: ignore[attr-defined]
    other.reset()  # type: ignore[attr-defined]
    return other
