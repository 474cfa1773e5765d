"""fvcore's Registry, with an optional explicit name: ``@REG.register(name="sem_seg")``."""
from __future__ import annotations

from typing import Any, Optional

from fvcore.common.registry import Registry as _FvRegistry

__all__ = ["Registry"]


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
    """The object at the dotted path ``name`` (``"torch.optim.SGD"``); see :func:`seg_research.config.instantiate.locate`."""
    from ..config.instantiate import locate as _locate

    return _locate(name)
