"""Mixed precision on every device: which dtype ``torch.autocast`` runs (``SOLVER.AMP`` for
training, ``MODEL.PRECISION`` for inference), and model outputs brought back to float32.

Precisions are ``"fp32"``, ``"bf16"``, ``"fp16"`` and ``"auto"`` (fp16 on CUDA, as detectron2's
``SOLVER.AMP.ENABLED``; bf16 on a CPU). bf16 on a CPU pays only where oneDNN has native
bfloat16 kernels (AVX-512 BF16 / AMX, or AVX-512 core): elsewhere (e.g. AVX2 CPUs) torch
emulates it several times slower than float32, so the run says so and stays in float32. fp16
on the CPU is mapped to bf16 (same 16 bits, float32's range: no loss scaling needed). On CUDA,
bf16 needs an Ampere or newer GPU (else fp16). Parameters, optimizer state, BN statistics,
losses and checkpoints stay float32 in every case: autocast only changes the dtype the
convolutions and matrix products compute in.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Iterator, Optional, Union

import torch
from torch import nn

from ..config import ConfigError
from ..structures import Boxes, Instances

__all__ = ["PRECISIONS", "autocast", "autocast_dtype", "cpu_supports_bf16", "outputs_to_float32",
           "AutocastInference"]

logger = logging.getLogger(__name__)

#: Config names of the precisions and the dtype autocast runs for each (float32: no autocast).
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=None)
def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions and matrix products natively (oneDNN's own
    check: AVX-512 BF16, AMX or AVX-512 core), i.e. whether bf16 autocast can beat float32."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(device: Union[str, torch.device], precision: str, key: str) -> Optional[torch.dtype]:
    """The dtype to autocast to on ``device`` for ``precision``, or None for float32.

    Args:
        device: e.g. ``cfg.MODEL.DEVICE`` ("cpu", "cuda", "cuda:1").
        precision: "fp32", "bf16", "fp16" or "auto" (see the module doc).
        key: the config key the value came from, named in messages.

    Raises:
        ConfigError: on an unknown precision name.
    """
    if precision not in ("auto", *PRECISIONS):
        raise ConfigError(f"{key} is '{precision}'; use one of 'auto', {', '.join(repr(p) for p in PRECISIONS)}.")
    device_type = torch.device(device).type
    if precision == "fp32":
        return None
    if device_type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            logger.warning(f"{key} bf16: this GPU has no bfloat16 support (needs Ampere or newer); using fp16 "
                           "with a GradScaler instead.")
            return torch.float16
        return torch.float16 if precision in ("auto", "fp16") else torch.bfloat16
    if device_type == "cpu":
        if precision == "fp16":
            logger.info(f"{key} fp16 on the CPU: using bf16 (float16 autocast is for CUDA).")
        if not cpu_supports_bf16():
            logger.warning(f"{key} {precision}: this CPU has no native bfloat16 kernels (oneDNN needs AVX-512 "
                           "BF16, AMX or AVX-512; torch would emulate bf16, slower than float32), so it runs in "
                           f"float32. Set {key} fp32 to silence this message.")
            return None
        return torch.bfloat16
    logger.warning(f"{key} {precision}: no mixed precision on device type '{device_type}'; running in float32.")
    return None


@contextlib.contextmanager
def autocast(device: Union[str, torch.device], dtype: Optional[torch.dtype]) -> Iterator[None]:
    """``torch.autocast(device type, dtype)``; a no-op context for ``dtype`` None (float32)."""
    with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
        yield


def outputs_to_float32(outputs: Any) -> Any:
    """``outputs`` with every bfloat16/float16 tensor converted to float32, through dicts, lists,
    tuples, :class:`Instances` (in place) and :class:`Boxes`; other values unchanged."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.dtype in (torch.bfloat16, torch.float16) else outputs
    if isinstance(outputs, Boxes):
        return Boxes(outputs_to_float32(outputs.tensor))
    if isinstance(outputs, Instances):
        for name, value in list(outputs.get_fields().items()):
            outputs.set(name, outputs_to_float32(value))
        return outputs
    if isinstance(outputs, dict):
        return {k: outputs_to_float32(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(outputs_to_float32(v) for v in outputs)
    return outputs


class AutocastInference(nn.Module):
    """Wraps an inference model: its forward runs under autocast to ``dtype`` on ``device`` and
    returns float32 outputs (:func:`outputs_to_float32`). ``eval()``/``train()`` reach the model.

    Used by ``DefaultTrainer.test`` and ``DefaultPredictor`` for ``MODEL.PRECISION``.
    """

    def __init__(self, model: nn.Module, device: Union[str, torch.device], dtype: Optional[torch.dtype]) -> None:
        super().__init__()
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with autocast(self.device, self.dtype):
            outputs = self.model(*args, **kwargs)
        return outputs_to_float32(outputs)
