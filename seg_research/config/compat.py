"""detectron2's config version converters: not provided (configs are read as VERSION 2 only)."""
from ..utils.absent import absent_names
from . import _VERSION_1

__getattr__ = absent_names(__name__, {"upgrade_config": _VERSION_1, "downgrade_config": _VERSION_1})
