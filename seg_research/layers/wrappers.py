"""detectron2's thin wrappers around torch layers and functions, under detectron2's names.

``Conv2d`` takes ``norm`` and ``activation`` modules; ``cat`` skips the copy for one tensor;
``cross_entropy`` gives a zero (differentiable) loss on an empty batch. ``BatchNorm2d``,
``ConvTranspose2d``, ``Linear`` and ``interpolate`` are torch's own (torch handles empty inputs).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Conv2d", "BatchNorm2d", "ConvTranspose2d", "Linear", "interpolate", "cat", "nonzero_tuple", "cross_entropy",
    "shapes_to_tensor",
]

BatchNorm2d = nn.BatchNorm2d
ConvTranspose2d = nn.ConvTranspose2d
Linear = nn.Linear
interpolate = F.interpolate


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by optional ``norm`` and ``activation``:
    ``Conv2d(in_channels, out_channels, kernel_size, ..., norm=None, activation=None)``.

    Args (keyword, besides ``nn.Conv2d``'s):
        norm: a module applied to the conv output, e.g. ``get_norm("GN", out_channels)``.
        activation: a callable applied last, e.g. ``F.relu``.

    Input (N, C_in, H, W) -> (N, C_out, H', W').
    """

    def __init__(self, *args: Any, norm: Optional[nn.Module] = None,
                 activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._conv_forward(x, self.weight, self.bias)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def cat(tensors: List[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.cat``, returning the single tensor itself (no copy) when there is only one."""
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def nonzero_tuple(x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """``x.nonzero(as_tuple=True)``: one int64 index tensor per dimension (one for a 0-dim ``x``)."""
    return torch.nonzero(x if x.dim() > 0 else x.unsqueeze(0), as_tuple=True)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean", **kwargs: Any) -> torch.Tensor:
    """``F.cross_entropy``, except that an empty ``target`` with ``reduction="mean"`` gives 0
    (connected to ``input``'s graph) instead of NaN."""
    if target.numel() == 0 and reduction == "mean":
        return input.sum() * 0.0
    return F.cross_entropy(input, target, reduction=reduction, **kwargs)


def shapes_to_tensor(x: Sequence[int], device: Optional[torch.device] = None) -> torch.Tensor:
    """A list of sizes (e.g. ``image.shape[-2:]``) as an int64 tensor on ``device``."""
    return torch.as_tensor(list(x), dtype=torch.int64, device=device)
