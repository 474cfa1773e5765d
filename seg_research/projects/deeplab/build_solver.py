"""``build_lr_scheduler``: the library's schedules plus DeepLab's ``WarmupPolyLR``."""
from __future__ import annotations

import torch

from seg_research.config import CfgNode
from seg_research.solver import build_lr_scheduler as build_library_lr_scheduler

from .lr_scheduler import WarmupPolyLR

__all__ = ["build_lr_scheduler"]


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """``WarmupPolyLR`` when ``SOLVER.LR_SCHEDULER_NAME`` is "WarmupPolyLR" (SOLVER.MAX_ITER,
    WARMUP_FACTOR, WARMUP_ITERS, WARMUP_METHOD, POLY_LR_POWER, POLY_LR_CONSTANT_ENDING; the last two
    from :func:`add_deeplab_config`), else :func:`seg_research.solver.build_lr_scheduler`."""
    if cfg.SOLVER.LR_SCHEDULER_NAME != "WarmupPolyLR":
        return build_library_lr_scheduler(cfg, optimizer)
    if "POLY_LR_POWER" not in cfg.SOLVER:
        raise KeyError(
            "SOLVER.LR_SCHEDULER_NAME is 'WarmupPolyLR' but the config has no SOLVER.POLY_LR_POWER: call "
            "seg_research.projects.deeplab.add_deeplab_config(cfg) before merging the config file."
        )
    return WarmupPolyLR(
        optimizer,
        cfg.SOLVER.MAX_ITER,
        warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
        warmup_iters=cfg.SOLVER.WARMUP_ITERS,
        warmup_method=cfg.SOLVER.WARMUP_METHOD,
        power=cfg.SOLVER.POLY_LR_POWER,
        constant_ending=cfg.SOLVER.POLY_LR_CONSTANT_ENDING,
    )
