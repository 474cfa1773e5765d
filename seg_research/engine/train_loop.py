"""The training loop: a trainer runs ``run_step`` for each iteration, hooks do the rest.

Order of calls: ``before_train``; per iteration ``before_step``, ``run_step`` (which calls
``after_backward``), ``after_step``; finally ``after_train`` (also after an exception). A hook may
end training early with ``trainer.stop_training(reason)`` (early stopping): the current iteration
finishes (all its ``after_step`` hooks run), then ``after_train``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
import weakref
from typing import Any, Dict, Iterable, List, Mapping, NoReturn, Optional, Tuple

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..utils import comm
from ..utils.events import EventStorage, get_event_storage

__all__ = ["HookBase", "TrainerBase", "SimpleTrainer", "AMPTrainer"]

logger = logging.getLogger(__name__)


class HookBase:
    """Code run at fixed points of training. Override any of the methods below.

    ``self.trainer`` is set by ``TrainerBase.register_hooks`` to a weak proxy of the
    trainer (no reference cycle). ``state_dict()`` returning a non-empty dict makes the
    hook's state part of the trainer's checkpoint.
    """

    trainer: "TrainerBase"

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_backward(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} returns a state_dict() but does not implement load_state_dict()."
        )


class TrainerBase:
    """Runs iterations ``start_iter .. max_iter - 1`` of ``run_step`` with hooks around them.

    Attributes:
        iter: the current iteration; after a successful ``train`` it equals ``max_iter``
            (after an exception it stays at the failing iteration).
        start_iter, max_iter: the range given to ``train``.
        storage: the ``EventStorage`` open during ``train``.
    """

    def __init__(self) -> None:
        self._hooks: List[HookBase] = []
        self.iter: int = 0
        self.start_iter: int = 0
        self.max_iter: int = 0
        self.storage: EventStorage
        self.stop_reason: Optional[str] = None

    def stop_training(self, reason: str) -> None:
        """End training after the current iteration's ``after_step`` hooks (from ``before_train``:
        before the first iteration). ``iter`` then stays one past the last iteration run, below
        ``max_iter``; ``stopped_early`` is True in ``after_train``. Every process must call it at
        the same iteration (hooks that decide on one process broadcast their decision)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def stopped_early(self) -> bool:
        """Whether a hook ended this ``train`` call before ``max_iter`` (:meth:`stop_training`)."""
        return self.stop_reason is not None

    def register_hooks(self, hooks: Iterable[Optional[HookBase]]) -> None:
        """Append hooks (``None`` entries are skipped); they run in registration order."""
        for hook in hooks:
            if hook is None:
                continue
            if not isinstance(hook, HookBase):
                raise TypeError(f"Hooks must subclass HookBase, got {type(hook).__name__}.")
            hook.trainer = weakref.proxy(self)
            self._hooks.append(hook)

    def train(self, start_iter: int, max_iter: int) -> None:
        """Run iterations ``start_iter .. max_iter - 1`` inside a new ``EventStorage``;
        ``after_train`` hooks run even when an iteration raises (the error propagates)."""
        logger.info(f"Starting training from iteration {start_iter}")
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        self.stop_reason = None
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                if self.stop_reason is None:
                    for self.iter in range(start_iter, max_iter):
                        self.before_step()
                        self.run_step()
                        self.after_step()
                        if self.stop_reason is not None:
                            self.iter += 1
                            break
                    else:
                        self.iter = max_iter
                if self.stop_reason is not None:
                    logger.info(f"Training stopped early before iteration {self.iter} (of {max_iter}): "
                                f"{self.stop_reason}")
            except Exception:
                logger.exception(f"Exception during training at iteration {self.iter}:")
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_backward(self) -> None:
        for h in self._hooks:
            h.after_backward()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """``{"iteration": iter, "hooks": {hook class qualname: hook state}}`` (stateful hooks only)."""
        hooks_state = {}
        for h in self._hooks:
            state = h.state_dict()
            if state:
                name = type(h).__qualname__
                if name in hooks_state:
                    logger.warning(f"Two hooks of type {name} have state; only the first one is checkpointed.")
                    continue
                hooks_state[name] = state
        return {"iteration": self.iter, "hooks": hooks_state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.iter = state_dict["iteration"]
        for name, state in state_dict.get("hooks", {}).items():
            matching = [h for h in self._hooks if type(h).__qualname__ == name]
            if not matching:
                logger.warning(f"The checkpoint has state for hook '{name}', which is not registered; ignored.")
                continue
            matching[0].load_state_dict(state)


class SimpleTrainer(TrainerBase):
    """One iteration = next batch, ``loss_dict = model(batch)``, sum, backward, optimizer step.

    Args:
        model: in training mode; ``model(batch)`` returns a dict of scalar loss tensors,
            or one scalar tensor (logged as ``total_loss``).
        data_loader: an iterable yielding batches forever (the training loader).
        optimizer: steps all parameters.
        zero_grad_before_forward: clear gradients before the forward pass instead of
            between the forward and the backward pass.
        skip_nonfinite_steps: on a non-finite loss (on any process), skip the optimizer
            step instead of raising (``SOLVER.SKIP_NONFINITE_STEPS``).
        gradient_accumulation_steps: N >= 1 (``SOLVER.GRADIENT_ACCUMULATION_STEPS``): one
            iteration takes N batches (micro-batches) from ``data_loader``, backpropagates
            each one's loss divided by N into the same gradients, and steps the optimizer
            once. With N micro-batches of k images and a loss that is a mean over images,
            the update equals that of one batch of N*k images (norms that use batch
            statistics aside). Iterations, LR schedule, checkpoints and metrics count
            optimizer steps.

    Writes ``total_loss``, every loss and ``data_time`` (seconds waiting for the batch,
    summed over micro-batches, max over processes) to the ``EventStorage``; losses are
    averaged over micro-batches and processes.
    A batch with a ``skipped_samples`` attribute (:class:`seg_research.data.common.Batch`)
    adds it, summed over processes, to ``data/skipped_samples`` (total since the start).
    A non-finite total loss raises ``FloatingPointError`` naming the iteration and the
    loss dict before the optimizer step; with ``skip_nonfinite_steps`` the step is skipped
    (gradients zeroed, no loss written) and ``nonfinite_steps_skipped`` (total since the
    start) is written instead.
    """

    def __init__(self, model: torch.nn.Module, data_loader: Iterable, optimizer: torch.optim.Optimizer,
                 zero_grad_before_forward: bool = False, skip_nonfinite_steps: bool = False,
                 gradient_accumulation_steps: int = 1) -> None:
        super().__init__()
        if int(gradient_accumulation_steps) != gradient_accumulation_steps or gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps (SOLVER.GRADIENT_ACCUMULATION_STEPS) must be an integer "
                             f">= 1, got {gradient_accumulation_steps!r}.")
        self.gradient_accumulation_steps = int(gradient_accumulation_steps)
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj: Optional[Any] = None
        self.optimizer = optimizer
        self.zero_grad_before_forward = zero_grad_before_forward
        self.skip_nonfinite_steps = skip_nonfinite_steps
        self._skipped_samples = 0
        self._nonfinite_steps_skipped = 0

    @property
    def _data_loader_iter(self) -> Any:
        if self._data_loader_iter_obj is None:
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def _next_batch(self) -> tuple:
        """(batch, seconds spent waiting for it)."""
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        return data, time.perf_counter() - start

    @staticmethod
    def _as_loss_dict(output: Any) -> Dict[str, torch.Tensor]:
        if isinstance(output, torch.Tensor):
            return {"total_loss": output}
        if not isinstance(output, Mapping) or not output:
            raise TypeError(
                f"In training mode the model must return a non-empty dict of scalar loss tensors or one scalar "
                f"tensor; got {type(output).__name__}."
            )
        return dict(output)

    def _check_training_mode(self) -> None:
        if not self.model.training:
            raise RuntimeError(
                f"The model is in eval mode at iteration {self.iter}; a hook that evaluates must call "
                "model.train() when it is done."
            )

    def run_step(self) -> None:
        self._check_training_mode()
        loss_dict, data_time, skipped_samples = self._forward_backward()
        self.after_backward()
        if self._write_metrics(loss_dict, data_time, skipped_samples):
            self._optimizer_step()

    def _forward_backward(self) -> Tuple[Dict[str, torch.Tensor], float, int]:
        """Forward and backward ``gradient_accumulation_steps`` micro-batches into the gradients.

        Each micro-batch's summed loss is divided by their number before its backward pass, so
        the gradients are those of the mean loss; under DDP only the last backward all-reduces
        (``no_sync``). Returns the losses averaged over micro-batches (detached when there are
        several), the seconds spent waiting for data (summed) and the skipped samples (summed)."""
        num = self.gradient_accumulation_steps
        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        averaged: Dict[str, torch.Tensor] = {}
        data_time, skipped = 0.0, 0
        for index in range(num):
            data, seconds = self._next_batch()
            data_time += seconds
            skipped += getattr(data, "skipped_samples", 0)
            last = index == num - 1
            sync = contextlib.nullcontext() if last or not isinstance(self.model, DistributedDataParallel) \
                else self.model.no_sync()
            with sync:
                loss_dict = self._loss_dict(data)
                losses = sum(loss_dict.values())
                if index == 0 and not self.zero_grad_before_forward:
                    self.optimizer.zero_grad()
                self._backward(losses / num if num > 1 else losses)
            if num == 1:
                return loss_dict, data_time, skipped
            for key, value in loss_dict.items():
                averaged[key] = averaged.get(key, 0.0) + value.detach() / num
        return averaged, data_time, skipped

    def _loss_dict(self, data: Any) -> Dict[str, torch.Tensor]:
        return self._as_loss_dict(self.model(data))

    def _backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def _optimizer_step(self) -> None:
        self.optimizer.step()

    def _write_metrics(self, loss_dict: Mapping[str, torch.Tensor], data_time: float, skipped_samples: int = 0) -> bool:
        """Gather metrics on rank 0 and store them (losses averaged over ranks).

        Returns:
            whether the optimizer should step: False when some rank's total loss is not
            finite and ``skip_nonfinite_steps`` is set (every rank then agrees).

        Raises:
            FloatingPointError: on a non-finite total loss without ``skip_nonfinite_steps``
                (every rank checks its own losses, rank 0 also the average over ranks).
        """
        losses = {k: v.detach().cpu().item() for k, v in loss_dict.items()}
        finite = math.isfinite(sum(losses.values()))
        if self.skip_nonfinite_steps:
            finite = all(comm.all_gather(finite))
        all_metrics = comm.gather({"losses": losses, "data_time": data_time, "skipped_samples": skipped_samples})
        if not finite and not self.skip_nonfinite_steps:
            _raise_not_finite(losses, self.iter)
        if comm.is_main_process():
            storage = get_event_storage()
            storage.put_scalar("data_time", max(m["data_time"] for m in all_metrics))
            skipped = sum(m["skipped_samples"] for m in all_metrics)
            if skipped:
                self._skipped_samples += skipped
                storage.put_scalar("data/skipped_samples", self._skipped_samples, smoothing_hint=False)
            if finite:
                self._put_losses(storage, [m["losses"] for m in all_metrics])
        if not finite:
            self._skip_step(losses)
        return finite

    def _put_losses(self, storage: EventStorage, all_losses: List[Dict[str, float]]) -> None:
        averaged = {k: float(np.mean([losses[k] for losses in all_losses])) for k in all_losses[0]}
        if not math.isfinite(sum(averaged.values())):
            _raise_not_finite(averaged, self.iter)
        if set(averaged) != {"total_loss"}:
            storage.put_scalar("total_loss", sum(averaged.values()))
        storage.put_scalars(**averaged)

    def _skip_step(self, losses: Mapping[str, float]) -> None:
        """Drop this iteration's gradients and count the skipped step (SOLVER.SKIP_NONFINITE_STEPS)."""
        self.optimizer.zero_grad()
        self._nonfinite_steps_skipped += 1
        logger.warning(f"Non-finite loss at iteration {self.iter} on some process (this one: {losses}); the "
                       f"optimizer step is skipped (SOLVER.SKIP_NONFINITE_STEPS), "
                       f"{self._nonfinite_steps_skipped} skipped so far.")
        if comm.is_main_process():
            get_event_storage().put_scalar("nonfinite_steps_skipped", self._nonfinite_steps_skipped,
                                           smoothing_hint=False)

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.optimizer.load_state_dict(state_dict["optimizer"])


def _raise_not_finite(losses: Mapping[str, float], iteration: int) -> NoReturn:
    raise FloatingPointError(
        f"Loss became infinite or NaN at iteration {iteration}! loss_dict = {dict(losses)}. "
        "Try a lower SOLVER.BASE_LR, a longer warmup, or SOLVER.CLIP_GRADIENTS.ENABLED True, "
        "and check the input data of this iteration; or set SOLVER.SKIP_NONFINITE_STEPS True to skip such steps."
    )


class AMPTrainer(SimpleTrainer):
    """``SimpleTrainer`` with automatic mixed precision on any device: the forward pass runs
    under ``torch.autocast(device type, dtype=precision)``; the losses are summed and
    backpropagated in float32. For float16 a ``torch.amp.GradScaler`` scales the loss (the
    optimizer, and gradient clipping inside ``optimizer.step``, see unscaled gradients) and its
    state is part of ``state_dict()``; bfloat16 has float32's range and needs no scaling.
    Parameters, optimizer state and BN statistics stay float32 (autocast casts per operation).

    Args:
        precision: ``torch.bfloat16`` or ``torch.float16`` (see
            :func:`seg_research.engine.amp.autocast_dtype` for choosing one from the config).
        grad_scaler: float16 only; default ``torch.amp.GradScaler(device type)``.
        device_type: "cpu" or "cuda"; default the device of the model's first parameter.
    """

    def __init__(self, model: torch.nn.Module, data_loader: Iterable, optimizer: torch.optim.Optimizer,
                 grad_scaler: Optional[torch.amp.GradScaler] = None, precision: torch.dtype = torch.float16,
                 zero_grad_before_forward: bool = False, skip_nonfinite_steps: bool = False,
                 device_type: Optional[str] = None, gradient_accumulation_steps: int = 1) -> None:
        if precision not in (torch.bfloat16, torch.float16):
            raise ValueError(f"AMPTrainer autocasts to torch.bfloat16 or torch.float16, not {precision}; "
                             "train float32 with SimpleTrainer.")
        super().__init__(model, data_loader, optimizer, zero_grad_before_forward=zero_grad_before_forward,
                         skip_nonfinite_steps=skip_nonfinite_steps,
                         gradient_accumulation_steps=gradient_accumulation_steps)
        self.device_type = device_type or next(model.parameters()).device.type
        self.precision = precision
        self.grad_scaler = None
        if precision == torch.float16:
            self.grad_scaler = grad_scaler if grad_scaler is not None else torch.amp.GradScaler(self.device_type)

    def _loss_dict(self, data: Any) -> Dict[str, torch.Tensor]:
        with torch.autocast(self.device_type, dtype=self.precision):
            loss_dict = self._as_loss_dict(self.model(data))
        return {k: v.float() for k, v in loss_dict.items()}

    def _backward(self, loss: torch.Tensor) -> None:
        (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()

    def _optimizer_step(self) -> None:
        if self.grad_scaler is None:
            self.optimizer.step()
        else:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
