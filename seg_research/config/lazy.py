"""LazyConfig: configs written in Python (or YAML) as trees of ``_target_`` dicts, on omegaconf.

detectron2's "new-style" configs: a ``.py`` config file builds ``omegaconf`` dicts with
:class:`LazyCall` (``L(GeneralizedRCNN)(backbone=L(FPN)(...), ...)``); nothing is constructed
until :func:`~seg_research.config.instantiate`. Config files may import their siblings with
relative imports (``from ..common.optim import AdamW as optimizer``), which are resolved by
file location (no ``__init__.py`` needed) and executed afresh on every import, so editing an
imported dict never changes another file's copy.

Security: :meth:`LazyConfig.load` of a ``.py`` file **executes that file** (and the files it
imports) with the caller's privileges, like ``python file.py`` would. Load only config files
you wrote or trust. YAML files (including those written by :meth:`LazyConfig.save`) are read
with ``yaml.safe_load`` and never run code; their ``_target_`` strings are only imported when
the config is instantiated.
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import os
import types
from collections import abc
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from ..utils.file_io import PathManager, atomic_open
from .config import ConfigError, closest_key_hint
from .instantiate import TARGET_KEY, locate, target_to_string

__all__ = ["LazyCall", "LazyConfig"]

_CONFIG_FLAGS = {"allow_objects": True}


class LazyCall:
    """``LazyCall(target)(**kwargs)`` returns the config ``{"_target_": target, **kwargs}``
    instead of calling ``target``; :func:`~seg_research.config.instantiate` calls it later::

        from seg_research.config import LazyCall as L, instantiate
        conv = L(torch.nn.Conv2d)(in_channels=3, out_channels=8, kernel_size=3)
        conv.out_channels = 16          # edit before building
        layer = instantiate(conv)       # torch.nn.Conv2d(3, 16, kernel_size=3)

    Args:
        target: a class, function or dataclass, or its dotted import path. A dataclass is stored
            as its path (omegaconf cannot hold a dataclass type).

    Only keyword arguments are accepted (they become config keys).
    """

    def __init__(self, target: Any) -> None:
        if not (callable(target) or isinstance(target, str)):
            raise TypeError(f"LazyCall target must be a callable or its dotted import path, got {target!r}.")
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> DictConfig:
        if args:
            raise TypeError(f"LazyCall({self._target!r}) takes keyword arguments only (they become config keys); "
                            f"got {len(args)} positional.")
        target = self._target
        if dataclasses.is_dataclass(target):
            target = target_to_string(target)
        return DictConfig({**kwargs, TARGET_KEY: target}, flags=_CONFIG_FLAGS)


def _as_config(obj: Any) -> Any:
    """A plain dict becomes a DictConfig (what a config file's names are turned into)."""
    return DictConfig(obj, flags=_CONFIG_FLAGS) if isinstance(obj, dict) else obj


def _relative_file(importer: str, name: str, level: int) -> str:
    """The config file that ``from <level dots><name> import ...`` in ``importer`` refers to."""
    folder = os.path.dirname(importer)
    for _ in range(level - 1):
        folder = os.path.dirname(folder)
    return os.path.join(folder, *name.split(".")) if name else folder


def _config_import(name: str, globals: Optional[dict] = None, locals: Optional[dict] = None,
                   fromlist: Sequence[str] = (), level: int = 0) -> Any:
    """``__import__`` of config files: relative imports load sibling config files by path
    (``from .a.b import x`` -> ``a/b.py`` next to this file; ``from . import b`` -> ``b.py``);
    absolute imports are Python's."""
    if level == 0:
        return builtins.__import__(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__file__", "")
    statement = f"from {'.' * level}{name} import {', '.join(fromlist or ['...'])}"
    if not fromlist:
        raise ImportError(f"Config file '{importer}': relative import '{statement}' must name what it imports "
                          "(use 'from .file import name').")
    target = _relative_file(importer, name, level)
    if os.path.isfile(target + ".py"):
        module = _exec_config_file(target + ".py")
        for item in fromlist:
            if item not in vars(module):
                raise ImportError(f"Config file '{importer}': '{statement}': '{target}.py' defines no '{item}'.")
            setattr(module, item, _as_config(getattr(module, item)))
        return module
    if os.path.isdir(target):  # from .folder import file_a, file_b
        package = types.ModuleType(os.path.basename(target))
        for item in fromlist:
            path = os.path.join(target, item + ".py")
            if not os.path.isfile(path):
                raise ImportError(f"Config file '{importer}': '{statement}': no config file '{path}'.")
            setattr(package, item, _exec_config_file(path))
        return package
    raise ImportError(f"Config file '{importer}': '{statement}' needs the config file '{target}.py', "
                      "which does not exist.")


def _exec_config_file(filename: str) -> types.ModuleType:
    """Run a ``.py`` config file as a fresh module whose relative imports are config imports.

    The import hook is installed through the module's own ``__builtins__``, not globally, so
    other code (and other threads) import as usual.
    """
    with open(filename, encoding="utf-8") as f:
        source = f.read()
    code = compile(source, filename, "exec")  # a SyntaxError names the file and line
    module = types.ModuleType(f"seg_research_lazy_config.{os.path.splitext(os.path.basename(filename))[0]}")
    module.__file__ = filename
    module.__dict__["__builtins__"] = {**vars(builtins), "__import__": _config_import}
    exec(code, module.__dict__)
    return module


def _select(namespace: Dict[str, Any], keys: Union[None, str, Tuple[str, ...]], filename: str) -> Any:
    if keys is None:
        return namespace
    names = (keys,) if isinstance(keys, str) else tuple(keys)
    missing = [k for k in names if k not in namespace]
    if missing:
        raise ConfigError(f"Config file '{filename}' has no top-level {missing}; it has {sorted(namespace)}.")
    values = tuple(_as_config(namespace[k]) for k in names)
    return values[0] if isinstance(keys, str) else values


def _parse_override_value(text: str) -> Any:
    """A command-line value: a Python literal (``1e-3``, ``(1, 2)``, ``'a'``, ``None``), else a YAML
    scalar or list (``true``, ``null``, ``[a, b]``), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _all_keys(cfg: Any, prefix: str = "") -> List[str]:
    keys = []
    if isinstance(cfg, DictConfig):
        for key in cfg.keys():
            full = f"{prefix}{key}"
            keys.append(full)
            node = cfg._get_node(key)
            if isinstance(node, DictConfig):
                keys.extend(_all_keys(node, full + "."))
    return keys


def _accepts_argument(node: DictConfig, name: str) -> bool:
    """Whether ``node`` is a ``_target_`` dict whose target takes a keyword argument ``name``
    (an argument left at its default is no key of the config, but may be overridden)."""
    target = node.get(TARGET_KEY) if TARGET_KEY in node else None
    if target is None:
        return False
    try:
        params = inspect.signature(locate(target) if isinstance(target, str) else target).parameters
    except (ConfigError, TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _to_saveable(cfg: Any, path: str, bad: List[str]) -> Any:
    """A plain-container copy of ``cfg`` with callables (``_target_`` values and others) as dotted
    paths; keys of values that YAML cannot hold go to ``bad``. Interpolations stay unresolved."""
    if isinstance(cfg, DictConfig):
        return {key: _to_saveable(cfg._get_node(key), f"{path}.{key}" if path else str(key), bad)
                for key in cfg.keys()}
    if isinstance(cfg, ListConfig):
        return [_to_saveable(cfg._get_node(i), f"{path}[{i}]", bad) for i in range(len(cfg))]
    if hasattr(cfg, "_value") and hasattr(cfg, "_is_interpolation"):  # an omegaconf value node
        cfg = cfg._value()
    if isinstance(cfg, abc.Mapping):
        return {key: _to_saveable(value, f"{path}.{key}", bad) for key, value in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [_to_saveable(value, f"{path}[{i}]", bad) for i, value in enumerate(cfg)]
    if cfg is None or isinstance(cfg, (bool, int, float, str)):
        return cfg
    if callable(cfg):
        try:
            return target_to_string(cfg)
        except ConfigError as e:
            bad.append(f"{path}: {e}")
            return None
    bad.append(f"{path}: a {type(cfg).__name__} object (use LazyCall(...) to describe it instead)")
    return None


class LazyConfig:
    """Load, edit and save LazyConfigs (omegaconf ``DictConfig`` trees of ``_target_`` dicts)."""

    @staticmethod
    def load(filename: str, keys: Union[None, str, Tuple[str, ...]] = None) -> Any:
        """Load a ``.py`` or ``.yaml`` config.

        A ``.py`` file is **executed** (see the module doc: load only trusted files); the config
        is its top-level names not starting with ``_`` whose values are dicts, ``DictConfig`` or
        ``ListConfig``. A YAML file is read with ``yaml.safe_load``.

        Args:
            filename: path of the config file (relative to the working directory).
            keys: None returns the whole config (a ``DictConfig``); a name returns that entry;
                a tuple of names returns a tuple of entries.
        """
        filename = os.path.normpath(filename)
        extension = os.path.splitext(filename)[1]
        if extension not in (".py", ".yaml", ".yml"):
            raise ConfigError(f"Config file '{filename}' must be a Python (.py) or YAML (.yaml/.yml) file.")
        if extension == ".py":
            if not os.path.isfile(filename):
                raise FileNotFoundError(f"Config file '{filename}' does not exist.")
            namespace = {name: value for name, value in vars(_exec_config_file(filename)).items()
                         if not name.startswith("_") and isinstance(value, (dict, DictConfig, ListConfig))}
            if keys is not None:
                return _select(namespace, keys, filename)
            return DictConfig({k: _as_config(v) for k, v in namespace.items()}, flags=_CONFIG_FLAGS)
        if not PathManager.exists(filename):
            raise FileNotFoundError(f"Config file '{filename}' does not exist.")
        with PathManager.open(filename, "r") as f:
            content = yaml.safe_load(f)
        if content is not None and not isinstance(content, dict):
            raise ConfigError(f"Config file '{filename}' holds a YAML {type(content).__name__}; expected a mapping.")
        cfg = OmegaConf.create(content or {}, flags=_CONFIG_FLAGS)
        return cfg if keys is None else _select(cfg, keys, filename)

    @staticmethod
    def load_rel(filename: str, keys: Union[None, str, Tuple[str, ...]] = None) -> Any:
        """:meth:`load` with ``filename`` relative to the folder of the calling file (for use
        inside config files, e.g. ``LazyConfig.load_rel("../common/train.py", "train")``)."""
        caller = inspect.stack()[1].filename
        if caller.startswith("<"):
            raise ConfigError("LazyConfig.load_rel must be called from a file (it loads relative to that file).")
        return LazyConfig.load(os.path.join(os.path.dirname(caller), filename), keys)

    @staticmethod
    def save(cfg: DictConfig, filename: str) -> None:
        """Write ``cfg`` as YAML (atomically) that :meth:`load` reads back: callables (``_target_``
        classes/functions) are written as their dotted import paths, ``${...}`` interpolations
        unresolved.

        Raises:
            ConfigError: a value YAML cannot hold (an object, a lambda); the message lists the keys.
        """
        bad: List[str] = []
        plain = _to_saveable(cfg, "", bad)
        if bad:
            raise ConfigError(f"Cannot save the config to '{filename}': these values cannot be written as YAML:\n  "
                              + "\n  ".join(bad))
        text = yaml.safe_dump(plain, sort_keys=False, default_flow_style=None, allow_unicode=True)
        with atomic_open(filename, "w", encoding="utf-8") as f:
            f.write(text)

    @staticmethod
    def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
        """Apply command-line overrides ``key.sub=value`` in place and return ``cfg``.

        Values are Python literals (``train.max_iter=100``, ``optimizer.lr=1e-3``,
        ``model.pixel_std=(57.4, 57.1, 58.4)``), YAML scalars (``true``, ``null``) or plain text
        (``train.output_dir=out/run1``). Keys must exist, or be an argument of the ``_target_``
        they go to (``model.roi_heads.box_predictor.test_nms_thresh=0.6`` where it is left at its
        default); a typo fails with the closest key. Prefix a key with ``+`` to add any new key.
        """
        for override in overrides:
            key, sep, text = override.partition("=")
            if not sep or not key.lstrip("+"):
                raise ConfigError(f"Override '{override}' must be 'key=value' (e.g. train.max_iter=100).")
            add = key.startswith("+")
            key = key.lstrip("+")
            parent_key, _, leaf = key.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key, throw_on_missing=False) if parent_key else cfg
            if isinstance(parent, ListConfig) and leaf.isdigit() and int(leaf) < len(parent):
                parent[int(leaf)] = _parse_override_value(text)
                continue
            if not isinstance(parent, DictConfig):
                what = "does not exist" if parent is None else f"is a {type(parent).__name__}, not a config"
                raise ConfigError(f"Override '{override}': '{parent_key}' {what}."
                                  f"{closest_key_hint(parent_key, _all_keys(cfg))}")
            if leaf not in parent and not add and not _accepts_argument(parent, leaf):
                raise ConfigError(f"Override '{override}': key '{key}' does not exist."
                                  f"{closest_key_hint(key, _all_keys(cfg))} Prefix it with '+' to add it.")
            OmegaConf.update(cfg, key, _parse_override_value(text), merge=False, force_add=True)
        return cfg

    @staticmethod
    def to_py(cfg: DictConfig, prefix: str = "cfg.") -> str:
        """Python code that rebuilds ``cfg`` with LazyCall: one ``<prefix><key> = ...`` line per
        top-level key (targets by dotted path, so the code needs no other import)."""
        bad: List[str] = []
        plain = _to_saveable(cfg, "", bad)
        if bad:
            raise ConfigError("Cannot write the config as Python:\n  " + "\n  ".join(bad))
        lines = ["from seg_research.config import LazyCall as L", ""]
        lines += [f"{prefix}{key} = {_py_expr(value)}" for key, value in plain.items()]
        return "\n".join(lines) + "\n"


def _py_expr(value: Any) -> str:
    if isinstance(value, dict):
        if TARGET_KEY in value:
            args = ", ".join(f"{k}={_py_expr(v)}" for k, v in value.items() if k != TARGET_KEY)
            return f"L({value[TARGET_KEY]!r})({args})"
        return "{" + ", ".join(f"{k!r}: {_py_expr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_py_expr(v) for v in value) + "]"
    return repr(value)
