"""Standard training hooks: timing, LR scheduling, checkpointing, evaluation, metric writing.

Recommended registration order (the order they run in): ``IterationTimer``,
``LRScheduler``, ``PreciseBN``, ``PeriodicCheckpointer``, ``EvalHook``, ``PeriodicWriter``
(last, so each write includes the lr and evaluation results of its iteration). ``PreciseBN``
comes before the checkpointer and the evaluation so that both see the recomputed statistics.
"""
from __future__ import annotations

import datetime
import itertools
import logging
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Sequence

import torch
from fvcore.nn.precise_bn import get_bn_modules, update_bn_stats

from ..checkpoint import Checkpointer
from ..checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from ..utils import comm
from ..utils.absent import absent_names
from ..utils.events import EventStorage, EventWriter, flatten_results_dict
from .train_loop import HookBase, TrainerBase

__all__ = ["CallbackHook", "IterationTimer", "PeriodicWriter", "PeriodicCheckpointer", "LRScheduler", "EvalHook",
           "PreciseBN"]

logger = logging.getLogger(__name__)

TrainerCallback = Callable[[TrainerBase], Any]


class CallbackHook(HookBase):
    """A hook built from functions ``fn(trainer)`` for any of the hook points."""

    def __init__(self, *, before_train: Optional[TrainerCallback] = None, after_train: Optional[TrainerCallback] = None,
                 before_step: Optional[TrainerCallback] = None, after_backward: Optional[TrainerCallback] = None,
                 after_step: Optional[TrainerCallback] = None) -> None:
        self._callbacks = {"before_train": before_train, "after_train": after_train, "before_step": before_step,
                           "after_backward": after_backward, "after_step": after_step}

    def _call(self, point: str) -> None:
        callback = self._callbacks[point]
        if callback is not None:
            callback(self.trainer)

    def before_train(self) -> None:
        self._call("before_train")

    def after_train(self) -> None:
        self._call("after_train")

    def before_step(self) -> None:
        self._call("before_step")

    def after_backward(self) -> None:
        self._call("after_backward")

    def after_step(self) -> None:
        self._call("after_step")


def _format_seconds(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


class IterationTimer(HookBase):
    """Puts ``time`` (seconds of each iteration: this hook's ``before_step`` to its
    ``after_step``) into the storage, and logs the overall speed (s / it) and total time
    (and how much of it the hooks took) when training ends. Register it first."""

    def __init__(self) -> None:
        self._train_start = 0.0
        self._step_start = 0.0
        self._step_seconds = 0.0
        self._num_steps = 0

    def before_train(self) -> None:
        self._train_start = time.perf_counter()
        self._step_seconds = 0.0
        self._num_steps = 0

    def before_step(self) -> None:
        self._step_start = time.perf_counter()

    def after_step(self) -> None:
        seconds = time.perf_counter() - self._step_start
        self.trainer.storage.put_scalar("time", seconds)
        self._step_seconds += seconds
        self._num_steps += 1

    def after_train(self) -> None:
        total = time.perf_counter() - self._train_start
        if self._num_steps:
            logger.info(
                f"Overall training speed: {self._num_steps} iterations in {_format_seconds(self._step_seconds)} "
                f"({self._step_seconds / self._num_steps:.4f} s / it)"
            )
        logger.info(f"Total training time: {_format_seconds(total)} "
                    f"({_format_seconds(total - self._step_seconds)} on hooks)")


class PeriodicWriter(HookBase):
    """Calls every writer's ``write()`` each ``period`` iterations and at the last one,
    then ``write()`` and ``close()`` when training ends."""

    def __init__(self, writers: Sequence[EventWriter], period: int = 20) -> None:
        for w in writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"PeriodicWriter takes EventWriter objects, got {type(w).__name__}.")
        self._writers = list(writers)
        self._period = period

    def after_step(self) -> None:
        it = self.trainer.iter
        if (it + 1) % self._period == 0 or it == self.trainer.max_iter - 1:
            for writer in self._writers:
                writer.write()

    def after_train(self) -> None:
        for writer in self._writers:
            writer.write()
            writer.close()


class PeriodicCheckpointer(_PeriodicCheckpointer, HookBase):
    """Saves ``model_{iter:07d}.pth`` after every ``period`` iterations (``(iter + 1) %
    period == 0``) and ``model_final.pth`` after the last one, each with ``iteration``.

    Args:
        checkpointer: the trainer's ``Checkpointer``.
        period: SOLVER.CHECKPOINT_PERIOD.
        max_to_keep: keep only this many periodic checkpoints (``None``: all).
    """

    def __init__(self, checkpointer: Checkpointer, period: int, max_to_keep: Optional[int] = None,
                 file_prefix: str = "model") -> None:
        super().__init__(checkpointer, period, max_iter=None, max_to_keep=max_to_keep, file_prefix=file_prefix)

    def before_train(self) -> None:
        self.max_iter = self.trainer.max_iter

    def after_step(self) -> None:
        self.step(self.trainer.iter)


class LRScheduler(HookBase):
    """Puts ``lr`` (of the param group with the most parameters, ``smoothing_hint=False``)
    into the storage after each iteration, then steps the scheduler.

    ``optimizer``/``scheduler`` default to ``trainer.optimizer``/``trainer.scheduler``.
    Its ``state_dict`` is the scheduler's, so the trainer's checkpoint carries it.
    """

    def __init__(self, optimizer: Optional[torch.optim.Optimizer] = None,
                 scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None) -> None:
        self._optimizer = optimizer
        self._scheduler = scheduler
        self._group_index = 0

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer if self._optimizer is not None else self.trainer.optimizer

    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        return self._scheduler if self._scheduler is not None else self.trainer.scheduler

    def before_train(self) -> None:
        groups = self.optimizer.param_groups
        self._group_index = max(range(len(groups)), key=lambda i: len(groups[i]["params"]))

    def after_step(self) -> None:
        lr = self.optimizer.param_groups[self._group_index]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self.scheduler.step()

    def state_dict(self) -> Dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(state_dict)


class EvalHook(HookBase):
    """Runs ``eval_function()`` after every ``eval_period`` iterations (0: never
    periodically) and after the last iteration (``eval_after_train``).

    ``eval_function`` returns nested results such as ``{"segm": {"AP": 50.1}}`` (or an
    empty dict, e.g. on ranks other than 0); they are flattened to ``segm/AP`` and put
    into the storage at the current iteration with ``smoothing_hint=False``, so that
    iteration's ``metrics.json`` line carries them. Must run on every process.
    """

    def __init__(self, eval_period: int, eval_function: Callable[[], Mapping[str, Any]],
                 eval_after_train: bool = True) -> None:
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train
        self._evaluated_final = False

    def _do_eval(self) -> None:
        results = self._func()
        if results:
            if not isinstance(results, Mapping):
                raise TypeError(
                    f"[EvalHook] eval_function must return a dict of results, got {type(results).__name__}."
                )
            scalars = {}
            for key, value in flatten_results_dict(results).items():
                try:
                    scalars[key] = float(value)
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        f"[EvalHook] eval_function must return a nested dict of numbers; '{key}' is {value!r}."
                    ) from e
            self.trainer.storage.put_scalars(**scalars, smoothing_hint=False)
        comm.synchronize()

    def before_train(self) -> None:
        self._evaluated_final = False

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        is_final = next_iter == self.trainer.max_iter
        if (self._period > 0 and next_iter % self._period == 0) or (is_final and self._eval_after_train):
            self._do_eval()
            self._evaluated_final = is_final

    def after_train(self) -> None:
        # Training that ran no iteration (resumed at max_iter) still gets its final evaluation.
        if self._eval_after_train and self.trainer.iter >= self.trainer.max_iter and not self._evaluated_final:
            self._do_eval()


class PreciseBN(HookBase):
    """Recomputes the statistics of the model's BatchNorm layers (those in training mode) as
    their true average over ``num_iter`` training batches, every ``period`` iterations (0: never
    periodically) and after the last iteration (TEST.PRECISE_BN, Wu & Johnson 2021).

    A running mean with momentum follows the last few batches only, and those of a network
    still changing; averaging over many batches of the final weights gives the statistics
    evaluation should use. The model runs forward in training mode (no gradient, no optimizer
    step); only BN buffers change. Must run on every process (each averages its own batches).
    """

    def __init__(self, period: int, model: torch.nn.Module, data_loader: Iterable, num_iter: int) -> None:
        """
        Args:
            period: iterations between recomputations; 0 only after the last one.
            model: the model being trained (its BN modules are found once, here).
            data_loader: batches as the training loader gives them; iterated lazily, on first use.
            num_iter: batches averaged per recomputation.
        """
        self._period = period
        self._model = model
        self._data_loader = data_loader
        self._num_iter = num_iter
        self._data_iter: Optional[Iterator] = None
        self._bn_modules = get_bn_modules(model)
        if not self._bn_modules:
            logger.info("PreciseBN: the model has no BatchNorm layer in training mode; nothing to do.")

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        is_final = next_iter == self.trainer.max_iter
        if is_final or (self._period > 0 and next_iter % self._period == 0):
            self.update_stats()

    def update_stats(self) -> None:
        """Recompute the BN statistics over the next ``num_iter`` batches of ``data_loader``."""
        if not self._bn_modules:
            return
        if self._data_iter is None:
            self._data_iter = iter(self._data_loader)
        logger.info(f"PreciseBN: recomputing the statistics of {len(self._bn_modules)} BatchNorm layers over "
                    f"{self._num_iter} batches ...")
        # The model logs into an event storage during training forwards; keep those out of the run's.
        with EventStorage(), torch.no_grad():
            update_bn_stats(self._model, itertools.islice(self._data_iter, self._num_iter), self._num_iter)


_PROFILER = ("not provided as a hook; wrap the steps you want with torch.profiler.profile(...) in a CallbackHook "
             "(before_step / after_step), or time them with tools/benchmark.py.")
__getattr__ = absent_names(__name__, {
    "AutogradProfiler": _PROFILER,
    "TorchProfiler": _PROFILER,
    "TorchMemoryStats": "not provided; log torch.cuda.max_memory_allocated() from a CallbackHook (the metrics "
                        "printer already reports max_mem on CUDA).",
    "BestCheckpointer": "not provided; EvalHook writes each evaluation's metrics to metrics.json and "
                        "PeriodicCheckpointer keeps model_NNNNNNN.pth, so pick the best iteration from metrics.json.",
})
