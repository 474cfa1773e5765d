from .config import CfgNode, ConfigError
from .configurable import configurable
from .defaults import get_cfg
from .instantiate import instantiate
from .lazy import LazyCall, LazyConfig

__all__ = ["CfgNode", "ConfigError", "get_cfg", "configurable", "LazyCall", "LazyConfig", "instantiate"]
