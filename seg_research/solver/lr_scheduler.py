"""Per-iteration LR schedules: an fvcore ``ParamScheduler`` multiplies each group's base LR."""
from __future__ import annotations

import bisect
import math
from typing import Any, Dict, List, Sequence

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)

__all__ = ["WarmupParamScheduler", "LRMultiplier", "WarmupMultiStepLR", "WarmupCosineLR"]


class WarmupParamScheduler(CompositeParamScheduler):
    """``scheduler`` preceded by a warmup over the first ``warmup_length`` of training.

    Args:
        scheduler: the schedule after warmup (a multiplier of the base LR).
        warmup_factor: the multiplier at iteration 0 is ``warmup_factor * scheduler(0)``.
        warmup_length: warmup fraction of training, in [0, 1] (``WARMUP_ITERS / MAX_ITER``).
        warmup_method: "linear" ramps from the start value to ``scheduler(warmup_length)``;
            "constant" holds the start value until the warmup ends.

    Example: factor 0.1, length 0.4 over 10 iterations, constant scheduler 1.0 gives
    multipliers 0.1, 0.325, 0.55, 0.775 at iterations 0-3 and 1.0 from iteration 4.
    """

    def __init__(self, scheduler: ParamScheduler, warmup_factor: float, warmup_length: float,
                 warmup_method: str = "linear") -> None:
        if not 0.0 <= warmup_length <= 1.0:
            raise ValueError(f"warmup_length is a fraction of training in [0, 1], got {warmup_length}.")
        start = warmup_factor * scheduler(0.0)
        if warmup_method == "linear":
            warmup: ParamScheduler = LinearParamScheduler(start, scheduler(warmup_length))
        elif warmup_method == "constant":
            warmup = ConstantParamScheduler(start)
        else:
            raise ValueError(f"Unknown warmup method '{warmup_method}'; use 'linear' or 'constant'.")
        super().__init__([warmup, scheduler], lengths=[warmup_length, 1.0 - warmup_length],
                         interval_scaling=["rescaled", "fixed"])


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """Sets each param group's LR to ``base_lr * multiplier(iteration / max_iter)``.

    ``step()`` is called once after every iteration, so iteration ``i`` trains with
    ``multiplier(i / max_iter)``. Iterations at or past ``max_iter`` keep the LR of the
    last one (``max_iter - 1``).

    ``state_dict()`` holds only ``base_lrs`` and ``last_epoch`` (plain numbers, loadable
    with ``torch.load(weights_only=True)``); ``load_state_dict`` also writes the resumed
    iteration's LR into the optimizer, so a resumed run continues on the same schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier: ParamScheduler, max_iter: int,
                 last_iter: int = -1) -> None:
        if not isinstance(multiplier, ParamScheduler):
            raise TypeError(f"multiplier must be an fvcore ParamScheduler, got {type(multiplier).__name__}.")
        if max_iter <= 0:
            raise ValueError(f"max_iter must be positive, got {max_iter}.")
        self._multiplier = multiplier
        self._max_iter = int(max_iter)
        super().__init__(optimizer, last_epoch=last_iter)

    def _lrs_at(self, iteration: int) -> List[float]:
        where = min(iteration, self._max_iter - 1) / self._max_iter
        factor = self._multiplier(where)
        return [base_lr * factor for base_lr in self.base_lrs]

    def get_lr(self) -> List[float]:
        return self._lrs_at(self.last_epoch)

    def state_dict(self) -> Dict[str, Any]:
        return {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.base_lrs = list(state_dict["base_lrs"])
        self.last_epoch = int(state_dict["last_epoch"])
        for group, lr in zip(self.optimizer.param_groups, self._lrs_at(self.last_epoch), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def _legacy_warmup_factor(method: str, iteration: int, warmup_iters: int, warmup_factor: float) -> float:
    """LR multiplier of detectron2's legacy schedulers at ``iteration``: 1 after ``warmup_iters``;
    before, ``warmup_factor`` ("constant") or a linear ramp from ``warmup_factor`` to 1 ("linear")."""
    if iteration >= warmup_iters:
        return 1.0
    if method == "constant":
        return warmup_factor
    if method == "linear":
        alpha = iteration / warmup_iters
        return warmup_factor * (1 - alpha) + alpha
    raise ValueError(f"Unknown warmup method '{method}'; use 'linear' or 'constant'.")


class _LegacyWarmupLR(torch.optim.lr_scheduler.LRScheduler):
    """A schedule ``base_lr * warmup(iteration) * decay(iteration)``, stepped once per iteration."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_factor: float, warmup_iters: int,
                 warmup_method: str, last_epoch: int) -> None:
        _legacy_warmup_factor(warmup_method, 0, 1, warmup_factor)  # reject an unknown method now
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def _decay(self, iteration: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> List[float]:
        factor = _legacy_warmup_factor(self.warmup_method, self.last_epoch, self.warmup_iters, self.warmup_factor)
        return [base_lr * factor * self._decay(self.last_epoch) for base_lr in self.base_lrs]


class WarmupMultiStepLR(_LegacyWarmupLR):
    """detectron2's (deprecated there) step schedule as a torch LR scheduler: at iteration ``i`` the
    LR is ``base_lr * warmup(i) * gamma ** (number of milestones <= i)``. The config path
    (``SOLVER.LR_SCHEDULER_NAME: WarmupMultiStepLR``) builds the equivalent :class:`LRMultiplier`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 warmup_factor: float = 0.001, warmup_iters: int = 1000, warmup_method: str = "linear",
                 last_epoch: int = -1) -> None:
        if list(milestones) != sorted(milestones):
            raise ValueError(f"WarmupMultiStepLR milestones must be increasing, got {list(milestones)}.")
        self.milestones = list(milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay(self, iteration: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, iteration)


class WarmupCosineLR(_LegacyWarmupLR):
    """detectron2's (deprecated there) cosine schedule as a torch LR scheduler: at iteration ``i``
    the LR is ``base_lr * warmup(i) * 0.5 * (1 + cos(pi * i / max_iters))``."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_iters: int, warmup_factor: float = 0.001,
                 warmup_iters: int = 1000, warmup_method: str = "linear", last_epoch: int = -1) -> None:
        self.max_iters = max_iters
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay(self, iteration: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * iteration / self.max_iters))
