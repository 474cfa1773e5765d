"""Balanced sampling of foreground/background training examples (torchvision's sampler)."""
from __future__ import annotations

from typing import Tuple

import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

__all__ = ["subsample_labels"]


def subsample_labels(
    labels: torch.Tensor, num_samples: int, positive_fraction: float, bg_label: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pick at most ``num_samples`` elements, at most ``positive_fraction`` of them foreground,
    filling up with background; uniformly at random (torch's global RNG) within each group.

    Args:
        labels: int (N,) with -1 = ignore, ``bg_label`` = background, anything else = foreground.
        num_samples: total number to pick.
        positive_fraction: largest share of foreground among them.
        bg_label: the background label.

    Returns:
        pos_idx, neg_idx: int64 indices into ``labels`` of the picked foreground / background.
    """
    coded = torch.where(labels == bg_label, 0, 1)
    coded = torch.where(labels == -1, -1, coded)
    pos_mask, neg_mask = BalancedPositiveNegativeSampler(num_samples, positive_fraction)([coded])
    return pos_mask[0].nonzero().squeeze(1), neg_mask[0].nonzero().squeeze(1)
