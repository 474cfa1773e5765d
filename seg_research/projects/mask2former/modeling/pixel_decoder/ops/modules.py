"""``MSDeformAttn``: the multi-scale deformable attention layer, with upstream's parameter names."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .functions import ms_deform_attn

__all__ = ["MSDeformAttn"]


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Deformable DETR): each query attends to ``n_points`` sampled
    positions per head and level around its reference point, at offsets and with weights it predicts.

    Parameters (upstream's names): ``sampling_offsets`` (d_model -> n_heads * n_levels * n_points * 2),
    ``attention_weights`` (d_model -> n_heads * n_levels * n_points), ``value_proj`` and ``output_proj``
    (d_model -> d_model).
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4) -> None:
        """
        Args:
            d_model: channels of queries, values and output; a multiple of ``n_heads``.
            n_levels: feature levels attended over.
            n_heads: attention heads.
            n_points: sampled positions per head and level.
        """
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"MSDeformAttn: d_model ({d_model}) must be a multiple of n_heads ({n_heads}).")
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points

        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Deformable DETR's initialisation: offsets start on rays in n_heads directions, the k-th point
        k pixels (of the larger coordinate) away; uniform attention; Xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack([angles.cos(), angles.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True).values  # on the unit square's border
        steps = torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        grid = directions.view(self.n_heads, 1, 1, 2) * steps  # (heads, 1, points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.expand(-1, self.n_levels, -1, -1).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, input_flatten: torch.Tensor,
                input_spatial_shapes: torch.Tensor, input_level_start_index: Optional[torch.Tensor] = None,
                input_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            query: (N, Lq, d_model).
            reference_points: (N, Lq, n_levels, 2) points (x, y) in [0, 1] of each level (0: the
                top-left corner of the first pixel, 1: the bottom-right of the last, padding included;
                offsets are in pixels of each level), or (N, Lq, n_levels, 4) boxes (cx, cy, w, h), whose
                offsets are in units of half the box size divided by n_points.
            input_flatten: (N, S, d_model), the levels flattened row-major and concatenated.
            input_spatial_shapes: (n_levels, 2) int64 (H_l, W_l).
            input_level_start_index: (n_levels,) offset of each level in S (upstream's argument, implied by
                the shapes; unused).
            input_padding_mask: (N, S) bool, True at padded positions (their values count as 0).

        Returns:
            (N, Lq, d_model).
        """
        n, lq, _ = query.shape
        _, s, _ = input_flatten.shape
        if int((input_spatial_shapes[:, 0] * input_spatial_shapes[:, 1]).sum()) != s:
            raise ValueError(f"MSDeformAttn: input_spatial_shapes {input_spatial_shapes.tolist()} cover "
                             f"{int(input_spatial_shapes.prod(1).sum())} positions, input_flatten has {s}.")
        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            value = value.masked_fill(input_padding_mask[..., None], 0.0)
        value = value.view(n, s, self.n_heads, self.d_model // self.n_heads)
        offsets = self.sampling_offsets(query).view(n, lq, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).view(n, lq, self.n_heads, self.n_levels * self.n_points)
        weights = weights.softmax(-1).view(n, lq, self.n_heads, self.n_levels, self.n_points)
        if reference_points.shape[-1] == 2:
            # offsets are in pixels of each level: normalise by (W_l, H_l)
            normalizer = input_spatial_shapes.flip(-1).to(offsets.dtype)
            locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / self.n_points * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f"MSDeformAttn: reference_points must end in 2 (points) or 4 (boxes) values, got "
                             f"shape {tuple(reference_points.shape)}.")
        return self.output_proj(ms_deform_attn(value, input_spatial_shapes, locations, weights))
