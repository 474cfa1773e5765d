"""The poly LR schedule of DeepLab (Chen et al. 2017), as detectron2's DeepLab project defines it."""
from __future__ import annotations

import math

import torch

from seg_research.solver.lr_scheduler import _LegacyWarmupLR

__all__ = ["WarmupPolyLR"]


class WarmupPolyLR(_LegacyWarmupLR):
    """At iteration ``i`` (stepped once per iteration) the LR is
    ``base_lr * warmup(i) * (1 - i / max_iters) ** power``, with detectron2's warmup (``warmup_factor``
    at 0, linearly to 1 at ``warmup_iters``, or constant). With ``constant_ending`` > 0, once the warmup
    factor is 1 the LR never falls below ``base_lr * constant_ending``.

    Example: max_iters 10, power 1, no warmup: LRs 1.0, 0.9, ..., 0.1 times base_lr; with
    constant_ending 0.25 the last two are 0.25 instead of 0.2 and 0.1.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_iters: int, warmup_factor: float = 0.001,
                 warmup_iters: int = 1000, warmup_method: str = "linear", last_epoch: int = -1, power: float = 0.9,
                 constant_ending: float = 0.0) -> None:
        if max_iters <= 0:
            raise ValueError(f"WarmupPolyLR: max_iters (SOLVER.MAX_ITER) must be positive, got {max_iters}.")
        self.max_iters = max_iters
        self.power = power
        self.constant_ending = constant_ending
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay(self, iteration: int) -> float:
        decay = math.pow(1.0 - iteration / self.max_iters, self.power)
        # The floor applies where the warmup factor is 1: after warmup, or throughout with factor 1.
        warm = iteration >= self.warmup_iters or self.warmup_factor == 1.0
        if self.constant_ending > 0 and warm and decay < self.constant_ending:
            return self.constant_ending
        return decay
