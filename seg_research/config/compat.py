"""detectron2's config version converters: not provided (configs are read as VERSION 2 only)."""
from ..utils.absent import absent_names
from . import VERSION_1_ADVICE

__getattr__ = absent_names(__name__, {"upgrade_config": VERSION_1_ADVICE, "downgrade_config": VERSION_1_ADVICE})
