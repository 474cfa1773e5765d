"""Model EMA: an exponential moving average of a model's weights (d2go's ``MODEL_EMA``).

After every optimizer step each floating-point entry of the model's ``state_dict`` (parameters and
buffers such as BN running statistics) is averaged into the EMA::

    ema <- decay * ema + (1 - decay) * weight

and integer entries (``num_batches_tracked``) are copied. Starting from the weights ``w_0`` at the
start of training, after ``k`` steps ``ema_k = decay**k * w_0 + sum_{i=1..k} (1 - decay) *
decay**(k - i) * w_i``. Evaluating the EMA instead of the raw weights usually gives a smoother,
better model; training itself continues on the raw weights.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Dict, Iterator, Mapping

import torch
from torch import nn

from ..utils.comm import unwrap_model

# unwrap_model is re-exported: EMA keys carry no ``module.`` (the module inside DDP is averaged).
__all__ = ["ModelEMA", "unwrap_model"]

logger = logging.getLogger(__name__)


class ModelEMA:
    """The EMA of a model's ``state_dict`` (a checkpointable: ``state_dict``/``load_state_dict``).

    Args:
        decay: weight of the old average per update, in [0, 1) (MODEL_EMA.DECAY; d2go's 0.999).
        device: where the averages live: "" the model's device, else e.g. "cpu" (MODEL_EMA.DEVICE).

    Empty until :meth:`reset` (or :meth:`load_state_dict`); ``hooks.EMAHook`` resets it from the
    model at the start of training unless a resumed checkpoint filled it.
    """

    def __init__(self, decay: float = 0.999, device: str = "") -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"MODEL_EMA.DECAY must be in [0, 1), got {decay}.")
        self.decay = float(decay)
        self.device = device
        self.state: Dict[str, torch.Tensor] = {}

    @property
    def initialized(self) -> bool:
        return bool(self.state)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device) if self.device else tensor

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Start the average at the model's current weights."""
        self.state = {k: self._to_device(v.detach()).clone() for k, v in unwrap_model(model).state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards the model's current weights (after an optimizer step)."""
        if not self.initialized:
            self.reset(model)
            return
        current = unwrap_model(model).state_dict()
        if current.keys() != self.state.keys():
            raise KeyError("The model's state_dict keys changed since the EMA was started: "
                           f"{sorted(set(current) ^ set(self.state))[:10]}")
        floats = [k for k, v in self.state.items() if v.is_floating_point()]
        if floats:
            ema = [self.state[k] for k in floats]
            torch._foreach_lerp_(ema, [self._to_device(current[k].detach()) for k in floats], 1.0 - self.decay)
        for k, v in self.state.items():
            if not v.is_floating_point():
                v.copy_(current[k])

    @contextlib.contextmanager
    def apply_to(self, model: nn.Module) -> Iterator[nn.Module]:
        """Within the block the model holds the EMA weights (copied in place, so optimizer and DDP
        references stay valid); its own weights are restored afterwards, also on an exception."""
        if not self.initialized:
            raise RuntimeError("The model EMA is empty: nothing has been averaged yet.")
        module = unwrap_model(model)
        backup = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.state)
        try:
            yield model
        finally:
            module.load_state_dict(backup)

    def state_dict(self) -> Dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.state = {k: self._to_device(torch.as_tensor(v)).clone() for k, v in state_dict.items()}
