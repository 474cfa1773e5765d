"""One-stage detector base class: not provided (see ONE_STAGE's advice)."""
from ...utils.absent import ONE_STAGE, absent_names

__getattr__ = absent_names(__name__, {
    "DenseDetector": ONE_STAGE,
    "permute_to_N_HWA_K": ONE_STAGE,
})
