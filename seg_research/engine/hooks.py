"""Standard training hooks: timing, LR scheduling, checkpointing, evaluation, metric writing.

Recommended registration order (the order they run in): ``IterationTimer``,
``LRScheduler``, ``EMAHook``, ``PreciseBN``, ``PeriodicCheckpointer``, ``EvalHook``,
``PeriodicWriter`` (last, so each write includes the lr and evaluation results of its
iteration). ``PreciseBN`` comes before the checkpointer and the evaluation so that both see the
recomputed statistics. With ``BestCheckpointer``, register ``EvalHook`` and ``BestCheckpointer``
before ``PeriodicCheckpointer``, so that a checkpoint written at an evaluation iteration holds
the best-metric state after that evaluation (``--resume`` is then exact).
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
from .model_ema import ModelEMA
from .train_loop import HookBase, TrainerBase

__all__ = ["CallbackHook", "IterationTimer", "PeriodicWriter", "PeriodicCheckpointer", "LRScheduler", "EvalHook",
           "PreciseBN", "EMAHook", "BestCheckpointer"]

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
    When a hook stops training early (``trainer.stop_training``), ``model_final.pth`` is
    written at the last iteration run.

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

    def after_train(self) -> None:
        trainer = self.trainer
        if trainer.stopped_early and trainer.iter > trainer.start_iter:
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=trainer.iter - 1)


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


class EMAHook(HookBase):
    """Keeps ``ema`` (:class:`~seg_research.engine.model_ema.ModelEMA`) the exponential moving
    average of ``model``'s weights: started from the model in ``before_train`` (unless a resumed
    checkpoint filled it), updated after every iteration (= optimizer step; with gradient
    accumulation, once per N micro-batches). Under DDP it averages the module inside DDP. Register it
    right after ``LRScheduler``, before checkpointing and evaluation. Put ``ema`` into the
    trainer's ``Checkpointer`` (key ``ema_state``) so that it is saved and resumed."""

    def __init__(self, model: torch.nn.Module, ema: ModelEMA) -> None:
        self._model = model
        self.ema = ema

    def before_train(self) -> None:
        if not self.ema.initialized:
            self.ema.reset(self._model)
            logger.info(f"Model EMA started from the current weights (decay {self.ema.decay}).")

    def after_step(self) -> None:
        self.ema.update(self._model)


class BestCheckpointer(HookBase):
    """Saves ``<file_prefix>.pth`` (``model_best.pth``) through ``checkpointer`` whenever the
    latest evaluation's ``val_metric`` beats the best so far (detectron2's hook, same arguments),
    and optionally stops training after ``patience`` evaluations in a row without improvement.

    The metric is read from the event storage, where ``EvalHook`` puts each evaluation's flattened
    results (``segm/AP``, ``sem_seg/mIoU``, ``panoptic_seg/PQ``; ``<dataset>/segm/AP`` with several
    test datasets), at the iterations ``EvalHook(eval_period)`` evaluates: every ``eval_period``
    iterations and after the last one. Register it right after ``EvalHook``. The first evaluation
    always counts as an improvement; ties do not. The saved file is a full checkpoint (model,
    checkpointables, ``iteration``) written atomically; ``last_checkpoint`` is not re-tagged, so
    ``--resume`` still continues from the newest periodic checkpoint.

    Its state (best value and iteration, evaluations without improvement) is a ``state_dict``: put
    the hook into the trainer's ``Checkpointer`` (``DefaultTrainer`` does, key ``best_checkpointer``)
    so that ``--resume`` continues the count exactly. Must run on every process: the main process
    decides (it alone holds the results) and the decision is broadcast, so that all stop together.

    Args:
        eval_period: TEST.EVAL_PERIOD (0: only the evaluation after the last iteration).
        checkpointer: the trainer's ``Checkpointer``.
        val_metric: the flattened metric name, e.g. ``"segm/AP"``.
        mode: ``"max"`` (higher is better) or ``"min"``.
        file_prefix: the file name without ``.pth``.
        patience: stop after this many evaluations in a row without improvement (0: never stop).
    """

    def __init__(self, eval_period: int, checkpointer: Checkpointer, val_metric: str, mode: str = "max",
                 file_prefix: str = "model_best", patience: int = 0) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"BestCheckpointer mode must be 'max' or 'min', got {mode!r}.")
        if not val_metric:
            raise ValueError("BestCheckpointer needs a val_metric, e.g. 'segm/AP', 'sem_seg/mIoU' or 'panoptic_seg/PQ' "
                             "(SOLVER.BEST_CHECKPOINTER.METRIC).")
        if patience < 0:
            raise ValueError(f"BestCheckpointer patience must be >= 0 (0: never stop), got {patience}.")
        self._period = eval_period
        self._checkpointer = checkpointer
        self._val_metric = val_metric
        self._mode = mode
        self._file_prefix = file_prefix
        self._patience = patience
        self.best_metric: Optional[float] = None
        self.best_iter: Optional[int] = None
        self.num_bad_evals = 0
        self._checked_final = False

    def _better(self, value: float) -> bool:
        if self.best_metric is None:
            return True
        return value > self.best_metric if self._mode == "max" else value < self.best_metric

    def _decide(self) -> Dict[str, Any]:
        """On the main process: compare this iteration's metric with the best one."""
        storage = self.trainer.storage
        latest = storage.latest()
        found = latest.get(self._val_metric)
        if found is None or found[1] != storage.iter:
            recorded = sorted(k for k, (_, it) in latest.items() if it == storage.iter and "/" in k)
            return {"error": f"BestCheckpointer: metric '{self._val_metric}' was not computed by the evaluation at "
                             f"iteration {storage.iter}; it recorded {recorded or 'no metric'}. Set "
                             "SOLVER.BEST_CHECKPOINTER.METRIC (val_metric) to one of those."}
        value, iteration = float(found[0]), int(found[1])
        return {"value": value, "iteration": iteration, "improved": self._better(value)}

    def _best_checking(self) -> None:
        decision = self._decide() if comm.is_main_process() else None
        if comm.get_world_size() > 1:
            decision = comm.all_gather(decision)[0]
        assert decision is not None
        if "error" in decision:
            raise KeyError(decision["error"])
        value, iteration = decision["value"], decision["iteration"]
        if decision["improved"]:
            previous = self.best_metric
            self.best_metric, self.best_iter, self.num_bad_evals = value, iteration, 0
            if comm.is_main_process():
                # "iteration" as in model_NNNNNNN.pth: the last iteration run (after_train: max_iter - 1)
                self._checkpointer.save(self._file_prefix, tag_last=False,
                                        iteration=min(iteration, self.trainer.max_iter - 1))
            logger.info(f"{self._val_metric} = {value:.4f} at iteration {iteration} improves on "
                        f"{'nothing' if previous is None else f'{previous:.4f}'}: saved {self._file_prefix}.pth.")
            return
        self.num_bad_evals += 1
        logger.info(f"{self._val_metric} = {value:.4f} at iteration {iteration} does not improve on the best "
                    f"{self.best_metric:.4f} (iteration {self.best_iter}); {self.num_bad_evals} evaluation(s) "
                    "without improvement" + (f" of patience {self._patience}." if self._patience else "."))
        self._maybe_stop()

    def _maybe_stop(self) -> None:
        if self._patience and self.num_bad_evals >= self._patience:
            self.trainer.stop_training(
                f"early stopping: {self._val_metric} has not improved for {self.num_bad_evals} evaluations "
                f"(patience {self._patience}); best {self.best_metric:.4f} at iteration {self.best_iter}, in "
                f"{self._file_prefix}.pth.")

    def before_train(self) -> None:
        self._checked_final = False
        self._maybe_stop()  # a run resumed after it stopped early does not train on

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        is_final = next_iter == self.trainer.max_iter
        if (self._period > 0 and next_iter % self._period == 0) or is_final:
            self._best_checking()
            self._checked_final = is_final

    def after_train(self) -> None:
        # the evaluation EvalHook runs in after_train when training resumed at max_iter
        if self.trainer.iter >= self.trainer.max_iter and not self._checked_final and not self.trainer.stopped_early:
            self._best_checking()

    def state_dict(self) -> Dict[str, Any]:
        return {"best_metric": self.best_metric, "best_iter": self.best_iter, "num_bad_evals": self.num_bad_evals}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.best_metric = state_dict["best_metric"]
        self.best_iter = state_dict["best_iter"]
        self.num_bad_evals = int(state_dict["num_bad_evals"])


_PROFILER = ("not provided as a hook; wrap the steps you want with torch.profiler.profile(...) in a CallbackHook "
             "(before_step / after_step), or time them with tools/benchmark.py.")
__getattr__ = absent_names(__name__, {
    "AutogradProfiler": _PROFILER,
    "TorchProfiler": _PROFILER,
    "TorchMemoryStats": "not provided; log torch.cuda.max_memory_allocated() from a CallbackHook (the metrics "
                        "printer already reports max_mem on CUDA).",
})
