"""fvcore's Registry, with an optional explicit name: ``@REG.register(name="sem_seg")``; :func:`locate` of a
dotted path."""
from __future__ import annotations

import pydoc
from typing import Any, Optional

from fvcore.common.registry import Registry as _FvRegistry

from .errors import ConfigError

__all__ = ["Registry", "locate"]


class Registry(_FvRegistry):
    """Name → object map. ``@REG.register()`` uses the object's ``__name__``;
    ``@REG.register(name="x")`` registers under ``x``; duplicates raise."""

    def register(self, obj: Any = None, *, name: Optional[str] = None) -> Any:
        if obj is None:
            def decorator(func_or_class: Any) -> Any:
                self._do_register(name or func_or_class.__name__, func_or_class)
                return func_or_class

            return decorator
        self._do_register(name or obj.__name__, obj)
        return obj


def locate(name: str) -> Any:
    """The object at the dotted path ``name`` (``"torch.optim.SGD"``, ``"pkg.mod.Class.method"``); LazyConfig's
    ``_target_`` strings resolve through it (``seg_research.config.instantiate.locate``).

    Raises:
        ConfigError: nothing is importable at ``name``.
    """
    try:
        obj = pydoc.locate(name)
    except pydoc.ErrorDuringImport as e:
        raise ConfigError(f"Cannot import '{name}': importing its module failed: {e.value!r}") from e
    if obj is None:
        raise ConfigError(f"Cannot locate '{name}': no importable module or attribute has that dotted path. "
                          "Check the spelling, or that the package defining it is installed.")
    return obj
