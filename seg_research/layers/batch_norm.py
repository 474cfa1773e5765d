"""BatchNorm whose training statistics are computed over all processes, on CPU or GPU."""
from __future__ import annotations

import torch
import torch.distributed.nn.functional as dist_fn
from torch import nn

from ..utils import comm
from ..utils.absent import absent_names

__all__ = ["SyncBatchNorm2d", "NaiveSyncBatchNorm"]


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that, in training with several processes, normalises with the mean and
    variance of the whole global batch (all ranks), like ``nn.SyncBatchNorm`` — which only
    runs on GPUs — but through a differentiable ``all_reduce`` that gloo supports too.

    Input (N, C, H, W); a rank may have N = 0. With one process it is plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or comm.get_world_size() == 1:
            return super().forward(x)
        channels = x.shape[1]
        dims = (0, 2, 3)
        local = torch.cat([
            x.sum(dim=dims),
            (x * x).sum(dim=dims),
            x.new_full((1,), x.numel() // channels),
        ])
        total = dist_fn.all_reduce(local)  # sums over ranks; gradients flow back to every rank
        count = total[-1]
        mean = total[:channels] / count
        var = total[channels: 2 * channels] / count - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased)
        scale = torch.rsqrt(var + self.eps)
        shift = -mean * scale
        if self.affine:
            scale = scale * self.weight
            shift = shift * self.weight + self.bias
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


#: detectron2's name for the all-process BatchNorm.
NaiveSyncBatchNorm = SyncBatchNorm2d

_absent = absent_names(__name__, {
    "CycleBatchNormList": "not provided; use get_norm('BN' | 'SyncBN' | 'GN' | 'FrozenBN', channels).",
})


def __getattr__(name: str):
    """``FrozenBatchNorm2d`` and ``get_norm`` live in ``layers.norm`` (which imports this module)."""
    if name in ("FrozenBatchNorm2d", "get_norm"):
        from . import norm

        return getattr(norm, name)
    return _absent(name)
