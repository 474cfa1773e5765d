"""Point sampling on mask logits (PointRend's, Kirillov et al. 2020), used by Mask2Former's matcher
and criterion to compute mask losses on a few thousand points instead of every pixel.

Point coordinates are normalized: ``(x, y)`` in ``[0, 1] x [0, 1]``, ``(0, 0)`` the top-left corner
of the top-left pixel and ``(1, 1)`` the bottom-right corner of the bottom-right pixel (the
``align_corners=False`` convention of ``grid_sample``).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.nn import functional as F

__all__ = ["point_sample", "get_uncertain_point_coords_with_randomness", "calculate_uncertainty"]


def point_sample(input: torch.Tensor, point_coords: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """Bilinear samples of ``input`` at normalized points.

    Args:
        input: (N, C, H, W) feature map.
        point_coords: (N, P, 2) or (N, Hgrid, Wgrid, 2) points ``(x, y)`` in ``[0, 1]``.
        kwargs: passed to ``F.grid_sample`` (Mask2Former passes ``align_corners=False``).

    Returns:
        (N, C, P) or (N, C, Hgrid, Wgrid) sampled values.
    """
    if point_coords.dim() == 3:
        # grid_sample wants a 2-D grid of points: sample a (P, 1) grid and drop the width.
        return F.grid_sample(input, 2.0 * point_coords.unsqueeze(2) - 1.0, **kwargs).squeeze(3)
    return F.grid_sample(input, 2.0 * point_coords - 1.0, **kwargs)


def calculate_uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty of class-agnostic mask logits: ``-|logit|``, highest (0) on the decision boundary.

    Args:
        logits: (R, 1, ...) mask logits.

    Returns:
        (R, 1, ...) uncertainties.
    """
    if logits.shape[1] != 1:
        raise ValueError(
            f"calculate_uncertainty takes class-agnostic logits (R, 1, ...), got shape {tuple(logits.shape)}."
        )
    return -logits.abs()


def get_uncertain_point_coords_with_randomness(
    coarse_logits: torch.Tensor,
    uncertainty_func: Callable[[torch.Tensor], torch.Tensor],
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
) -> torch.Tensor:
    """PointRend's training-time point selection: draw ``int(num_points * oversample_ratio)``
    uniform points per mask, keep the ``int(importance_sample_ratio * num_points)`` most uncertain
    of them, and fill up to ``num_points`` with fresh uniform points.

    The uncertainty is computed on the *sampled* logits, not sampled from an uncertainty map: a
    point between logits -1 and 1 interpolates to 0, the most uncertain value, while both
    neighbours have uncertainty -1.

    The random draws are exactly two ``torch.rand`` calls on ``coarse_logits.device``, in this
    order: ``(R, num_sampled, 2)``, then ``(R, num_random, 2)`` (skipped when ``num_random`` is 0).
    PointRend's own function makes the same calls, so a seeded generator gives both the same points.

    Args:
        coarse_logits: (R, C, H, W) logits, C = 1 for class-agnostic masks.
        uncertainty_func: (R, C, P) logits -> (R, 1, P) uncertainties.
        num_points: P, points per mask.
        oversample_ratio: >= 1.
        importance_sample_ratio: in [0, 1].

    Returns:
        (R, P, 2) normalized point coordinates.
    """
    if oversample_ratio < 1:
        raise ValueError(f"oversample_ratio must be >= 1, got {oversample_ratio}.")
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(f"importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}.")
    num_masks = coarse_logits.shape[0]
    device = coarse_logits.device
    num_sampled = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain

    candidates = torch.rand(num_masks, num_sampled, 2, device=device)
    uncertainties = uncertainty_func(point_sample(coarse_logits, candidates, align_corners=False))
    top = torch.topk(uncertainties[:, 0, :], k=num_uncertain, dim=1).indices
    coords = torch.gather(candidates, 1, top.unsqueeze(-1).expand(-1, -1, 2))
    if num_random > 0:
        coords = torch.cat([coords, torch.rand(num_masks, num_random, 2, device=device)], dim=1)
    return coords
