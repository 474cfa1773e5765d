"""Sine position encoding of feature maps (DETR's), as Mask2Former uses it."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

__all__ = ["PositionEmbeddingSine"]


class PositionEmbeddingSine(nn.Module):
    """Fixed sine/cosine encoding of each pixel's (y, x) position, ``num_pos_feats`` channels each.

    Channel ``j`` of the y half is ``sin(y / T^(2 floor(j/2) / F))`` for even ``j`` and ``cos`` of the same
    for odd ``j`` (``T`` the temperature, ``F`` = ``num_pos_feats``); the x half likewise. ``y`` and ``x`` count
    unmasked pixels from 1; with ``normalize`` they are divided by the count at the last row / column
    and multiplied by ``scale`` (2 pi by default), so the encoding does not depend on the map size.
    """

    def __init__(self, num_pos_feats: int = 64, temperature: float = 10000, normalize: bool = False,
                 scale: Optional[float] = None) -> None:
        super().__init__()
        if scale is not None and not normalize:
            raise ValueError("PositionEmbeddingSine: a scale is only used with normalize=True.")
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W); only its size and device are used.
            mask: (N, H, W) bool, True at padded pixels (not counted); None: no padding.

        Returns:
            float32 (N, 2 * num_pos_feats, H, W): the y encoding's channels, then the x encoding's.
        """
        n, _, h, w = x.shape
        if mask is None:
            mask = torch.zeros((n, h, w), dtype=torch.bool, device=x.device)
        valid = ~mask
        y = valid.cumsum(1, dtype=torch.float32)
        x_pos = valid.cumsum(2, dtype=torch.float32)
        if self.normalize:
            eps = 1e-6
            y = y / (y[:, -1:, :] + eps) * self.scale
            x_pos = x_pos / (x_pos[:, :, -1:] + eps) * self.scale
        exponent = 2 * (torch.arange(self.num_pos_feats, dtype=torch.float32, device=x.device) // 2)
        dim_t = self.temperature ** (exponent / self.num_pos_feats)
        return torch.cat([self._sin_cos(y[..., None] / dim_t), self._sin_cos(x_pos[..., None] / dim_t)],
                         dim=3).permute(0, 3, 1, 2)

    @staticmethod
    def _sin_cos(angles: torch.Tensor) -> torch.Tensor:
        """(N, H, W, F) angles -> sin of the even channels and cos of the odd ones, in place of each."""
        return torch.stack([angles[..., 0::2].sin(), angles[..., 1::2].cos()], dim=4).flatten(3)

    def extra_repr(self) -> str:
        return (f"num_pos_feats={self.num_pos_feats}, temperature={self.temperature}, normalize={self.normalize}, "
                f"scale={self.scale}")
