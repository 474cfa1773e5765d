"""Hungarian matching of Mask2Former's queries to ground-truth masks (DETR's bipartite matching, with
mask costs computed on sampled points)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

from ..utils.point_features import point_sample

__all__ = ["HungarianMatcher", "batch_sigmoid_ce_cost", "batch_dice_cost"]


def batch_sigmoid_ce_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of every prediction against every target.

    Args:
        logits: (Q, P) mask logits at P points.
        targets: (T, P) binary (0/1) target values at the same points.

    Returns:
        (Q, T): ``cost[q, t] = mean_p BCE(logits[q, p], targets[t, p])``.
    """
    num_points = logits.shape[1]
    # BCE(x, 1) = softplus(-x) and BCE(x, 0) = softplus(x); both costs are then two matrix products.
    cost_pos = F.softplus(-logits)
    cost_neg = F.softplus(logits)
    return (cost_pos @ targets.T + cost_neg @ (1 - targets).T) / num_points


def batch_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss (with +1 smoothing) of every prediction against every target.

    Args:
        logits: (Q, P) mask logits.
        targets: (T, P) binary target values.

    Returns:
        (Q, T): ``1 - (2 |s * t| + 1) / (|s| + |t| + 1)`` with ``s = sigmoid(logits)``.
    """
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher(nn.Module):
    """One-to-one assignment of predictions (queries) to targets that minimizes

    ``cost_class * (-p[target class]) + cost_mask * BCE + cost_dice * dice``

    per image (``scipy.optimize.linear_sum_assignment``). Unmatched queries are "no object". The mask
    costs are computed on ``num_points`` uniformly random points shared by all masks of an image, in
    float32 even under autocast.

    Random state: one ``torch.rand((1, num_points, 2))`` per image, in batch order, on the device of
    ``pred_masks`` (the same calls as upstream's matcher).
    """

    def __init__(self, cost_class: float = 1.0, cost_mask: float = 1.0, cost_dice: float = 1.0,
                 num_points: int = 0) -> None:
        """
        Args:
            cost_class: weight of the classification cost.
            cost_mask: weight of the sigmoid cross-entropy mask cost.
            cost_dice: weight of the dice mask cost.
            num_points: points sampled per image for the mask costs (> 0 when a mask cost is used).
        """
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("HungarianMatcher: cost_class, cost_mask and cost_dice are all 0; nothing to match on.")
        if num_points <= 0 and (cost_mask != 0 or cost_dice != 0):
            raise ValueError(
                f"HungarianMatcher: num_points={num_points}, but the mask costs need sampled points "
                "(MODEL.MASK_FORMER.TRAIN_NUM_POINTS > 0)."
            )
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def forward(self, outputs: Dict[str, torch.Tensor],
                targets: Sequence[Dict[str, torch.Tensor]]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """
        Args:
            outputs: ``pred_logits`` (B, Q, K + 1) class logits (last: no object) and ``pred_masks``
                (B, Q, Hm, Wm) mask logits.
            targets: per image, ``labels`` (T,) int64 class ids in [0, K) and ``masks`` (T, Ht, Wt)
                binary masks (any numeric or bool dtype), padded like the image batch.

        Returns:
            per image ``(query_indices, target_indices)``, two int64 CPU tensors of length
            ``min(Q, T)``, query indices increasing.
        """
        logits_all, masks_all = outputs["pred_logits"], outputs["pred_masks"]
        indices = []
        for b, target in enumerate(targets):
            with torch.autocast(device_type=masks_all.device.type, enabled=False):
                probs = logits_all[b].float().softmax(-1)  # (Q, K + 1)
                # The NLL of the target class is approximated by -p: the constant 1 of 1 - p
                # changes no assignment.
                cost_class = -probs[:, target["labels"]]

                pred_masks = masks_all[b].float()[:, None]  # (Q, 1, Hm, Wm)
                tgt_masks = target["masks"].to(pred_masks.device, torch.float32)[:, None]  # (T, 1, Ht, Wt)
                # One set of points for all masks of the image: normalized coordinates place them
                # alike on the predictions and on the (larger) targets.
                coords = torch.rand(1, self.num_points, 2, device=pred_masks.device)
                pred_points = point_sample(pred_masks, coords.expand(len(pred_masks), -1, -1),
                                           align_corners=False)[:, 0]
                tgt_points = point_sample(tgt_masks, coords.expand(len(tgt_masks), -1, -1), align_corners=False)[:, 0]

                cost = (
                    self.cost_mask * batch_sigmoid_ce_cost(pred_points, tgt_points)
                    + self.cost_class * cost_class
                    + self.cost_dice * batch_dice_cost(pred_points, tgt_points)
                )
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices

    def extra_repr(self) -> str:
        return (f"cost_class={self.cost_class}, cost_mask={self.cost_mask}, cost_dice={self.cost_dice}, "
                f"num_points={self.num_points}")
