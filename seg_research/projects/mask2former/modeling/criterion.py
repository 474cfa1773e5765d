"""Mask2Former's training losses: Hungarian matching, then a classification loss over all queries and
point-sampled mask losses (sigmoid cross-entropy and dice) over the matched ones, for the final
prediction and, with deep supervision, for every intermediate decoder layer."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from seg_research.utils import comm

from ..utils.point_features import calculate_uncertainty, get_uncertain_point_coords_with_randomness, point_sample
from .matcher import HungarianMatcher

__all__ = ["SetCriterion", "sigmoid_ce_loss", "dice_loss"]

Indices = List[Tuple[torch.Tensor, torch.Tensor]]


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Dice loss with +1 smoothing, summed over masks and divided by ``num_masks``.

    Args:
        logits: (M, P) mask logits at P points.
        targets: (M, P) binary target values.
        num_masks: the normalizer (number of target masks in the batch, averaged over processes).
    """
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def sigmoid_ce_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Binary cross-entropy averaged over points, summed over masks and divided by ``num_masks``.

    Args:
        logits: (M, P) mask logits; targets: (M, P) binary values; num_masks: the normalizer.
    """
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum() / num_masks


def _pad_masks(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack (T_i, H_i, W_i) masks of a batch into (B, T_max, H_max, W_max), zero-padded at the
    bottom and right (the padded area is background)."""
    sizes = torch.tensor([m.shape for m in masks]).amax(0).tolist()
    out = masks[0].new_zeros([len(masks)] + sizes)
    for padded, m in zip(out, masks, strict=True):
        padded[: m.shape[0], : m.shape[1], : m.shape[2]] = m
    return out


class SetCriterion(nn.Module):
    """Losses of a set prediction ``{"pred_logits": (B, Q, K + 1), "pred_masks": (B, Q, Hm, Wm),
    "aux_outputs": [{...}, ...]}`` against per-image targets ``{"labels": (T,), "masks": (T, H, W)}``.

    - ``loss_ce``: cross-entropy of every query's class logits, the target being the matched class or
      K ("no object"), class K weighted by ``eos_coef``;
    - ``loss_mask`` / ``loss_dice``: sigmoid cross-entropy and dice of each matched query's mask at
      ``num_points`` points chosen by PointRend's importance sampling on the predicted mask
      (:func:`get_uncertain_point_coords_with_randomness`), divided by the number of target masks in
      the batch (averaged over processes, at least 1);
    - the same for ``aux_outputs[i]``, keys suffixed ``_i`` (``loss_ce_0`` ... ``loss_dice_8`` for a
      9-layer decoder), each with its own matching.

    The losses are returned unweighted; the meta-architecture multiplies them by ``weight_dict``.

    Random state: the torch.rand calls are, in order, for the final outputs then each auxiliary
    output: the matcher's (one per image), then the point selection's two (see
    :func:`get_uncertain_point_coords_with_randomness`), the same sequence as upstream's criterion.
    """

    def __init__(self, num_classes: int, matcher: HungarianMatcher, weight_dict: Dict[str, float],
                 eos_coef: float, losses: Sequence[str], num_points: int, oversample_ratio: float,
                 importance_sample_ratio: float) -> None:
        """
        Args:
            num_classes: K, the number of classes without "no object".
            matcher: assigns queries to targets.
            weight_dict: loss name -> weight (kept for the meta-architecture).
            eos_coef: cross-entropy weight of the "no object" class.
            losses: which losses, among ``"labels"`` (loss_ce) and ``"masks"`` (loss_mask, loss_dice),
                computed in this order.
            num_points: points per mask for the mask losses.
            oversample_ratio: candidate points per kept point (>= 1).
            importance_sample_ratio: fraction of the points picked by uncertainty (the rest uniform).
        """
        super().__init__()
        unknown = [name for name in losses if name not in self._LOSSES]
        if unknown:
            raise ValueError(f"SetCriterion: unknown losses {unknown}; use any of {sorted(self._LOSSES)}.")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        self.eos_coef = eos_coef
        self.losses = list(losses)
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = eos_coef
        # Upstream's buffer name, so that checkpoints holding it load.
        self.register_buffer("empty_weight", class_weight)
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    def loss_labels(self, outputs: Dict[str, torch.Tensor], targets: Sequence[Dict[str, torch.Tensor]],
                    indices: Indices, num_masks: float) -> Dict[str, torch.Tensor]:
        """``loss_ce``: weighted cross-entropy over all B * Q queries (float32)."""
        logits = outputs["pred_logits"].float()
        batch_idx, query_idx = self._src_permutation_idx(indices)
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        target_classes[batch_idx, query_idx] = torch.cat(
            [t["labels"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)]
        ).to(logits.device)
        return {"loss_ce": F.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight)}

    def loss_masks(self, outputs: Dict[str, torch.Tensor], targets: Sequence[Dict[str, torch.Tensor]],
                   indices: Indices, num_masks: float) -> Dict[str, torch.Tensor]:
        """``loss_mask`` and ``loss_dice`` of the matched queries, on importance-sampled points."""
        pred_masks = outputs["pred_masks"][self._src_permutation_idx(indices)][:, None]  # (M, 1, Hm, Wm)
        target_masks = _pad_masks([t["masks"] for t in targets]).to(pred_masks)
        target_masks = target_masks[self._tgt_permutation_idx(indices)][:, None]  # (M, 1, H, W)
        # Normalized coordinates: the points fall alike on the low-resolution predictions and the
        # full-resolution targets, so neither needs resizing.
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                pred_masks, calculate_uncertainty, self.num_points, self.oversample_ratio,
                self.importance_sample_ratio,
            )
            point_labels = point_sample(target_masks, coords, align_corners=False)[:, 0]
        point_logits = point_sample(pred_masks, coords, align_corners=False)[:, 0]
        return {
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, num_masks),
        }

    _LOSSES = {"labels": loss_labels, "masks": loss_masks}

    @staticmethod
    def _src_permutation_idx(indices: Indices) -> Tuple[torch.Tensor, torch.Tensor]:
        """(batch index, query index) of every matched query."""
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        return batch_idx, torch.cat([src for src, _ in indices])

    @staticmethod
    def _tgt_permutation_idx(indices: Indices) -> Tuple[torch.Tensor, torch.Tensor]:
        """(batch index, target index) of every matched target, in the order of the queries."""
        batch_idx = torch.cat([torch.full_like(tgt, i) for i, (_, tgt) in enumerate(indices)])
        return batch_idx, torch.cat([tgt for _, tgt in indices])

    def get_loss(self, loss: str, outputs: Dict[str, torch.Tensor], targets: Sequence[Dict[str, torch.Tensor]],
                 indices: Indices, num_masks: float) -> Dict[str, torch.Tensor]:
        """The losses of group ``loss`` ("labels" or "masks")."""
        return self._LOSSES[loss](self, outputs, targets, indices, num_masks)

    def _num_masks(self, targets: Sequence[Dict[str, torch.Tensor]], device: torch.device) -> float:
        """Target masks per process, averaged over processes (so every process divides by the same
        number), at least 1."""
        num_masks = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        if comm.get_world_size() > 1:
            dist.all_reduce(num_masks)
        return torch.clamp(num_masks / comm.get_world_size(), min=1).item()

    def forward(self, outputs: Dict[str, torch.Tensor],
                targets: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """
        Args:
            outputs: ``pred_logits`` (B, Q, K + 1), ``pred_masks`` (B, Q, Hm, Wm), optionally
                ``aux_outputs``: a list of dicts with the same two keys, one per intermediate layer.
            targets: per image ``labels`` (T,) int64 in [0, K) and ``masks`` (T, H, W) binary.

        Returns:
            loss name -> scalar tensor (unweighted).
        """
        final = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        num_masks = self._num_masks(targets, outputs["pred_logits"].device)
        losses: Dict[str, torch.Tensor] = {}
        layers = [(final, "")] + [(aux, f"_{i}") for i, aux in enumerate(outputs.get("aux_outputs", []))]
        for layer_outputs, suffix in layers:
            indices = self.matcher(layer_outputs, targets)
            for loss in self.losses:
                for name, value in self.get_loss(loss, layer_outputs, targets, indices, num_masks).items():
                    losses[name + suffix] = value
        return losses

    def extra_repr(self) -> str:
        return (f"losses={self.losses}, weight_dict={self.weight_dict}, num_classes={self.num_classes}, "
                f"eos_coef={self.eos_coef}, num_points={self.num_points}, "
                f"oversample_ratio={self.oversample_ratio}, importance_sample_ratio={self.importance_sample_ratio}")
