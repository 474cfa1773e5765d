"""CfgNode with ``_BASE_`` inheritance, safe YAML and errors that say what to do."""
from __future__ import annotations

import difflib
import re
from typing import Any, Dict, Iterable, List

import yaml
from fvcore.common.config import CfgNode as _FvCfgNode

from ..utils.errors import ConfigError
from ..utils.file_io import PathManager

__all__ = ["CfgNode", "ConfigError", "TUPLE_OF_NAMES_KEYS", "global_cfg", "set_global_cfg"]

# Keys whose value is a tuple of dataset names: a bare string here is the classic
# detectron2 mistake (``("coco_val")`` is a string, not a tuple).
TUPLE_OF_NAMES_KEYS = ("DATASETS.TRAIN", "DATASETS.TEST")


def _all_keys(node: "_FvCfgNode", prefix: str = "") -> List[str]:
    keys = []
    for k, v in node.items():
        full = prefix + k
        keys.append(full)
        if isinstance(v, _FvCfgNode):
            keys.extend(_all_keys(v, full + "."))
    return keys


def closest_key_hint(key: str, valid: Iterable[str]) -> str:
    valid = list(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:  # compare the last component only, e.g. MODEL.RESNET.DEPTH
        last = key.split(".")[-1]
        by_last = {k.split(".")[-1]: k for k in valid}
        close = [by_last[c] for c in difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.6)]
    return f" Did you mean '{close[0]}'?" if close else ""


class CfgNode(_FvCfgNode):
    """fvcore's CfgNode (``_BASE_`` with paths relative to the including file, YAML
    read with ``yaml.safe_load``) whose merges fail with the offending key, its closest
    valid key, and type advice."""

    @classmethod
    def _open_cfg(cls, filename: str):
        return PathManager.open(filename, "r")

    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False) -> Dict[str, Any]:
        """fvcore's loader (``_BASE_`` files relative to the including one), whose refusal of a
        Python-tagged file names the file, the tag and the opt-in instead of yaml's bare error."""
        try:
            return super().load_yaml_with_base(filename, allow_unsafe=allow_unsafe)
        except yaml.constructor.ConstructorError as e:
            # The innermost _BASE_ file raises first; the outer calls see a ConfigError, not this.
            mark = e.problem_mark
            where = f"'{mark.name}' line {mark.line + 1}" if mark is not None else f"'{filename}'"
            found = re.search(r"tag '([^']+)'", e.problem or "")
            tag = found.group(1).replace("tag:yaml.org,2002:", "!!") if found else "a Python tag"
            raise ConfigError(
                f"Config file {where} uses the YAML tag {tag}, which runs Python code when loaded; "
                "configs are read with yaml.safe_load, which refuses it. If you trust the file, pass "
                "allow_unsafe=True (detectron2's argument): cfg.merge_from_file(path, allow_unsafe=True); "
                "or replace the tagged value by its literal value."
            ) from e

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge a YAML file (and its ``_BASE_`` files). ``allow_unsafe`` (False here, True in
        detectron2) lets files with Python tags (``!!python/object/apply:eval``) load through
        ``yaml.unsafe_load``: only for files you trust."""
        if not PathManager.exists(cfg_filename):
            raise FileNotFoundError(f"Config file '{cfg_filename}' does not exist.")
        loaded = self.load_yaml_with_base(cfg_filename, allow_unsafe=allow_unsafe)
        loaded = type(self)(loaded)
        self._merge_checked(loaded, source=f"config file '{cfg_filename}'")

    def merge_from_other_cfg(self, cfg_other: "_FvCfgNode") -> None:
        self._merge_checked(cfg_other, source="other config")

    def merge_from_list(self, cfg_list: List[Any]) -> "CfgNode":
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"Command-line overrides must be KEY VALUE pairs; got an odd number of items: {cfg_list}."
            )
        valid = _all_keys(self)
        for key in cfg_list[0::2]:
            if key not in valid:
                raise ConfigError(
                    f"Non-existent config key '{key}' on the command line.{closest_key_hint(key, valid)}"
                )
        pairs = list(zip(cfg_list[0::2], cfg_list[1::2], strict=True))
        for key, value in pairs:
            self._check_tuple_of_names(key, self._decode_cfg_value(value) if isinstance(value, str) else value,
                                       source="the command line")
        return super().merge_from_list(cfg_list)

    def _merge_checked(self, other: "_FvCfgNode", source: str) -> None:
        valid = _all_keys(self)
        for key in _all_keys(other):
            if key not in valid:
                raise ConfigError(
                    f"Non-existent config key '{key}' in {source}.{closest_key_hint(key, valid)}"
                )
        for key in TUPLE_OF_NAMES_KEYS:
            node, ok = other, True
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    ok = False
                    break
                node = node[part]
            if ok:
                value = self._decode_cfg_value(node) if isinstance(node, str) else node
                self._check_tuple_of_names(key, value, source=source)
        try:
            super().merge_from_other_cfg(other)
        except (KeyError, ValueError) as e:
            raise ConfigError(f"Invalid value in {source}: {e}") from e

    @staticmethod
    def _check_tuple_of_names(key: str, value: Any, source: str) -> None:
        if key in TUPLE_OF_NAMES_KEYS and isinstance(value, str):
            short = key.split(".")[-1]
            raise ConfigError(
                f"{key} in {source} is the string '{value}', but it must be a tuple of dataset "
                f"names. Use a tuple: in YAML write `{short}: (\"{value}\",)` (note the comma) or "
                f"`{short}: [\"{value}\"]`; on the command line pass {key} \"('{value}',)\"."
            )


#: A process-wide config for code that cannot take one as an argument (detectron2's global_cfg):
#: empty until :func:`set_global_cfg`. Prefer passing ``cfg``; this exists for research hacks.
global_cfg = CfgNode()


def set_global_cfg(cfg: CfgNode) -> None:
    """Make :data:`global_cfg` hold ``cfg``'s keys and values (the same object stays in place, so
    modules that imported ``global_cfg`` see the update)::

        from seg_research.config import global_cfg, set_global_cfg
        set_global_cfg(cfg)
        ... global_cfg.MODEL.WEIGHTS ...
    """
    global_cfg.clear()
    global_cfg.update(cfg)


def __getattr__(name: str) -> Any:
    # detectron2 defines get_cfg and configurable in config/config.py; here they live in
    # defaults.py and configurable.py, which import this module, so they are looked up lazily.
    if name == "get_cfg":
        from .defaults import get_cfg

        return get_cfg
    if name == "configurable":
        from .configurable import configurable

        return configurable
    raise AttributeError(f"module '{__name__}' has no attribute '{name}'")
