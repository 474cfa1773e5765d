"""RetinaNet: not provided (see ONE_STAGE's advice)."""
from ...utils.absent import ONE_STAGE, absent_names

__getattr__ = absent_names(__name__, {
    "RetinaNet": ONE_STAGE,
})
