"""``@configurable``: constructors and functions taking plain keyword arguments that can also take a cfg."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

from .config import CfgNode

__all__ = ["configurable"]


def _is_cfg(obj: Any) -> bool:
    return isinstance(obj, CfgNode)


def _called_with_cfg(args: tuple, kwargs: dict) -> bool:
    return bool(args and _is_cfg(args[0])) or _is_cfg(kwargs.get("cfg"))


def configurable(init_func: Optional[Callable] = None, *, from_config: Optional[Callable] = None) -> Callable:
    """Let a class ``__init__`` or a function be called either with a cfg or with plain kwargs.

    On a class: decorate ``__init__`` of a class defining ``from_config(cls, cfg, ...) -> dict``;
    ``Cls(cfg, **extra)`` becomes ``Cls(**Cls.from_config(cfg, **extra))``.
    On a function: ``@configurable(from_config=fn)``; ``f(cfg, **extra)`` becomes
    ``f(**fn(cfg, **extra))``. Without a cfg, arguments go straight through, so modules
    and loaders can be built and tested without any config.
    """
    if init_func is not None:
        assert init_func.__name__ == "__init__", "@configurable without from_config= decorates __init__ only"

        @functools.wraps(init_func)
        def wrapped_init(self, *args: Any, **kwargs: Any) -> None:
            if _called_with_cfg(args, kwargs):
                cls_from_config = getattr(type(self), "from_config", None)
                if cls_from_config is None:
                    raise AttributeError(f"{type(self).__name__} is @configurable but has no from_config().")
                init_func(self, **_call_from_config(cls_from_config, *args, **kwargs))
            else:
                init_func(self, *args, **kwargs)

        return wrapped_init

    assert from_config is not None, "use @configurable on __init__, or @configurable(from_config=fn) on a function"

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if _called_with_cfg(args, kwargs):
                return func(**_call_from_config(from_config, *args, **kwargs))
            return func(*args, **kwargs)

        wrapped.from_config = from_config  # type: ignore[attr-defined]
        return wrapped

    return decorator


def _call_from_config(from_config: Callable, *args: Any, **kwargs: Any) -> dict:
    """Call ``from_config`` with the arguments it accepts; the others override its result."""
    params = inspect.signature(from_config).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return from_config(*args, **kwargs)
    accepted = {k: v for k, v in kwargs.items() if k in params}
    extra = {k: v for k, v in kwargs.items() if k not in params}
    result = from_config(*args, **accepted)
    result.update(extra)
    return result
