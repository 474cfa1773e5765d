"""``retry_if_cuda_oom``: run a function again after CUDA ran out of memory, last on the CPU."""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, TypeVar

import torch

__all__ = ["retry_if_cuda_oom"]

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _is_cuda_oom(e: RuntimeError) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or ("CUDA" in str(e) and "out of memory" in str(e))


def _to_cpu(x: Any) -> Any:
    to = getattr(x, "to", None)
    return to(device="cpu") if callable(to) and hasattr(x, "device") else x


def retry_if_cuda_oom(func: F) -> F:
    """Wrap ``func``: on a CUDA out-of-memory error, empty the CUDA cache and call it again; if it
    fails again, call it with every argument that has ``.device`` and ``.to`` (tensors, Boxes,
    Instances, ...) moved to the CPU. The result is then on the CPU: the caller moves it back if needed.
    Other errors propagate unchanged."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RuntimeError as e:
            if not _is_cuda_oom(e):
                raise
        torch.cuda.empty_cache()
        try:
            return func(*args, **kwargs)
        except RuntimeError as e:
            if not _is_cuda_oom(e):
                raise
        logger.info(f"CUDA out of memory in {getattr(func, '__qualname__', func)}; running it on the CPU.")
        return func(*[_to_cpu(a) for a in args], **{k: _to_cpu(v) for k, v in kwargs.items()})

    return wrapped  # type: ignore[return-value]
