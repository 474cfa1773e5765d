"""Per-iteration LR schedules: an fvcore ``ParamScheduler`` multiplies each group's base LR."""
from __future__ import annotations

from typing import Any, Dict, List

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)

__all__ = ["WarmupParamScheduler", "LRMultiplier"]


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
