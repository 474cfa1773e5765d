"""Optimizer and LR-schedule builders."""
from .build import (
    LR_SCHEDULER_REGISTRY,
    NORM_MODULE_TYPES,
    OPTIMIZER_REGISTRY,
    build_lr_scheduler,
    build_optimizer,
    get_default_optimizer_params,
    maybe_add_gradient_clipping,
)
from .lr_scheduler import LRMultiplier, WarmupCosineLR, WarmupMultiStepLR, WarmupParamScheduler

__all__ = [
    "LR_SCHEDULER_REGISTRY", "NORM_MODULE_TYPES", "OPTIMIZER_REGISTRY", "build_lr_scheduler", "build_optimizer",
    "get_default_optimizer_params", "maybe_add_gradient_clipping", "LRMultiplier", "WarmupParamScheduler",
    "WarmupMultiStepLR", "WarmupCosineLR",
]
