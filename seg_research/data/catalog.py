"""DatasetCatalog (name -> lazy loader) and MetadataCatalog (name -> Metadata)."""
from __future__ import annotations

from collections import UserDict
from typing import Any, Callable, Dict, List

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "DatasetNotRegisteredError"]


class DatasetNotRegisteredError(KeyError):
    """Raised for an unknown dataset name; the message lists the registered ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _DatasetCatalog(UserDict):
    """A global dict from dataset name to a zero-argument callable returning ``list[dict]``.

    Registration is lazy: the callable runs at each :meth:`get`. Register datasets at
    import time of a module (or inside ``main``) so spawned worker processes see them too.
    """

    #: Names registered in a parent process with a loader that could not be sent to spawned
    #: workers (e.g. a lambda); filled by ``engine.launch`` in the workers.
    parent_only_names: set = set()

    def register(self, name: str, func: Callable[[], List[dict]]) -> None:
        if not callable(func):
            raise TypeError(
                f"DatasetCatalog.register('{name}', ...) needs a callable that returns the list of "
                f"dataset dicts, got a {type(func).__name__}. Wrap it: lambda: my_dicts."
            )
        if name in self:
            raise ValueError(f"Dataset '{name}' is already registered. Use DatasetCatalog.remove('{name}') first.")
        self[name] = func

    def get(self, name: str) -> List[dict]:  # type: ignore[override]
        try:
            func = self[name]
        except KeyError:
            if name in self.parent_only_names:
                raise DatasetNotRegisteredError(
                    f"Dataset '{name}' was registered in the launching process only, with a loader that cannot be "
                    f"sent to worker processes (a lambda or local function). Register it in a module imported by "
                    f"your script, or inside main(), so that every process registers it."
                ) from None
            raise DatasetNotRegisteredError(
                f"Dataset '{name}' is not registered. Registered datasets: {', '.join(sorted(self)) or '(none)'}. "
                f"Register it with DatasetCatalog.register('{name}', loader_fn) before building a loader."
            ) from None
        return func()

    def list(self) -> List[str]:
        return list(self.keys())

    def remove(self, name: str) -> None:
        self.pop(name)

    def __str__(self) -> str:
        return f"DatasetCatalog(registered datasets: {', '.join(self.keys())})"

    __repr__ = __str__


DatasetCatalog = _DatasetCatalog()


class Metadata:
    """Attribute bag for one dataset (``thing_classes``, ``evaluator_type``, ...).

    Setting an attribute to a different value than it already has raises: metadata is
    shared global state and silent overwrites hide registration bugs.
    """

    name: str = "N/A"

    def __init__(self, name: str = "N/A", **kwargs: Any) -> None:
        object.__setattr__(self, "name", name)
        self.set(**kwargs)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
            f"Available keys are {sorted(self.__dict__)}."
        )

    def __setattr__(self, key: str, val: Any) -> None:
        try:
            old = self.__dict__[key]
        except KeyError:
            object.__setattr__(self, key, val)
            return
        if not _same(old, val):
            raise ValueError(
                f"Metadata '{key}' of dataset '{self.name}' is already {old!r}; refusing to set it to {val!r}. "
                f"Use a different dataset name, or MetadataCatalog.remove('{self.name}') first."
            )

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    def set(self, **kwargs: Any) -> "Metadata":
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def __repr__(self) -> str:
        return f"Metadata({self.__dict__})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays
        return a is b


class _MetadataCatalog(UserDict):
    """A global dict from dataset name to its :class:`Metadata`, created on first access."""

    def get(self, name: str) -> Metadata:  # type: ignore[override]
        assert len(name), "Dataset name is empty"
        if name not in self:
            self[name] = Metadata(name=name)
        return self[name]

    def list(self) -> List[str]:
        return list(self.keys())

    def remove(self, name: str) -> None:
        self.pop(name)


MetadataCatalog = _MetadataCatalog()
