"""``instantiate``: build the objects a LazyConfig describes with ``_target_`` dicts.

A ``_target_`` dict is ``{"_target_": callable or "dotted.import.path", **kwargs}`` (what
:class:`~seg_research.config.LazyCall` makes); ``instantiate`` calls ``target(**kwargs)`` after
instantiating every argument, depth first. Targets may be classes, functions or dataclasses.
"""
from __future__ import annotations

import dataclasses
import pydoc
from collections import abc
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..utils.registry import locate
from .config import ConfigError

__all__ = ["instantiate", "locate", "target_to_string", "dump_dataclass"]

TARGET_KEY = "_target_"


def target_to_string(obj: Callable) -> str:
    """The shortest dotted path that :func:`locate` maps back to ``obj``: e.g.
    ``seg_research.modeling.GeneralizedRCNN`` rather than ``...meta_arch.rcnn.GeneralizedRCNN``
    when a package re-exports it.

    Raises:
        ConfigError: ``obj`` has no importable path (a lambda, a function defined inside a
            function or in a config file).
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ConfigError(f"{obj!r} has no importable dotted path (a lambda or a local function?); define it at "
                          "module level of an importable module to use it as a _target_ in a saved config.")
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        candidate = ".".join(parts[:i] + [qualname])
        try:
            if pydoc.locate(candidate) is obj:
                return candidate
        except pydoc.ErrorDuringImport:
            continue
    raise ConfigError(f"{module}.{qualname} does not import back to {obj!r} (is its module a config file?); "
                      "define the target in an importable module.")


def dump_dataclass(obj: Any) -> dict:
    """A dataclass instance as a ``_target_`` dict that :func:`instantiate` turns back into an
    equal instance: ``{"_target_": "pkg.Class", field: value, ...}``, nested dataclasses (also in
    lists and tuples) dumped the same way."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"dump_dataclass takes a dataclass instance, got {obj!r}.")

    def dump(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dump_dataclass(value)
        if isinstance(value, (list, tuple)):
            return [dump(v) for v in value]
        return value

    return {TARGET_KEY: target_to_string(type(obj)),
            **{f.name: dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}


def _is_dataclass_config(cfg: Any) -> bool:
    """A DictConfig made from a dataclass instance (``ShapeSpec(channels=8)`` put in a config)."""
    if not isinstance(cfg, DictConfig):
        return False
    object_type = OmegaConf.get_type(cfg)
    return object_type is not None and dataclasses.is_dataclass(object_type)


def instantiate(cfg: Any, _path: str = "") -> Any:
    """Build the objects described by ``cfg``, recursively.

    - a mapping with ``_target_``: ``target(**{k: instantiate(v)})``, where the target is a
      callable or a dotted path (:func:`locate`);
    - any other mapping / sequence config (``DictConfig``, ``ListConfig``, dict, list, tuple):
      the plain Python dict / list (tuple for a tuple) of its instantiated values, with
      ``${...}`` interpolations resolved;
    - a config made from a dataclass instance: that dataclass instance again;
    - anything else is returned unchanged.

    Errors raised while calling a target name its key in the config and the target.
    """
    if _is_dataclass_config(cfg):
        return OmegaConf.to_object(cfg)
    if isinstance(cfg, (abc.Mapping, DictConfig)):
        items = cfg.items_ex(resolve=True) if isinstance(cfg, DictConfig) else cfg.items()
        values = {key: instantiate(value, f"{_path}.{key}" if _path else str(key)) for key, value in items}
        if TARGET_KEY not in values:
            return values
        return _call_target(values.pop(TARGET_KEY), values, _path)
    if isinstance(cfg, (ListConfig, list, tuple)):
        items = cfg if not isinstance(cfg, ListConfig) else [cfg[i] for i in range(len(cfg))]
        values = [instantiate(value, f"{_path}[{i}]") for i, value in enumerate(items)]
        return tuple(values) if isinstance(cfg, tuple) else values
    return cfg


def _call_target(target: Any, kwargs: dict, path: str) -> Any:
    where = f"'{path}'" if path else "the top level"
    if isinstance(target, str):
        target = locate(target)
    if not callable(target):
        raise ConfigError(f"_target_ at {where} is {target!r}, which is not callable.")
    try:
        return target(**kwargs)
    except Exception as e:
        if hasattr(e, "add_note"):  # Python >= 3.11
            e.add_note(f"(raised by instantiate: {getattr(target, '__module__', '')}."
                       f"{getattr(target, '__qualname__', repr(target))}(**{sorted(kwargs)}), the _target_ at {where})")
        raise
