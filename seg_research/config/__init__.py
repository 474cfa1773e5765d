from .config import CfgNode, ConfigError
from .configurable import configurable
from .defaults import get_cfg

__all__ = ["CfgNode", "ConfigError", "get_cfg", "configurable"]
