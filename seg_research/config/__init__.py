from ..utils.absent import absent_names
from .config import CfgNode, ConfigError, global_cfg, set_global_cfg
from .configurable import configurable
from .defaults import get_cfg
from .instantiate import instantiate
from .lazy import LazyCall, LazyConfig

__all__ = ["CfgNode", "ConfigError", "get_cfg", "global_cfg", "set_global_cfg", "configurable", "LazyCall",
           "LazyConfig", "instantiate"]

VERSION_1_ADVICE = ("detectron2's pre-2020 config format (VERSION 1) is not read; every detectron2 v0.6 config "
              "is VERSION 2. Rename an old file's keys by hand (e.g. MODEL.RPN_HEAD.NAME -> MODEL.RPN.HEAD_NAME).")
__getattr__ = absent_names(__name__, {"upgrade_config": VERSION_1_ADVICE, "downgrade_config": VERSION_1_ADVICE})
