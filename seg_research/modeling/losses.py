"""Per-pixel classification losses for semantic segmentation, and the LOSS registry.

Every loss is a pure function ``fn(logits, targets, ignore_label=255, **options) -> Tensor``:

- ``logits``: float (N, C, H, W) unnormalized class scores;
- ``targets``: int64 (N, H, W) class ids in 0..C-1, or ``ignore_label`` for pixels that
  count for nothing (no loss, no gradient);
- returns a float scalar (0-dim) tensor; it is 0 (still attached to the graph) when every
  pixel is ignored.

Losses registered by name (the values of ``MODEL.SEM_SEG_HEAD.LOSS_TYPES``):
``"cross_entropy"``, ``"dice"``, ``"bce_dice"``, ``"focal"``, ``"lovasz_softmax"``. A project
adds one with ``@LOSS_REGISTRY.register(name="my_loss")`` on a function of that signature.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from ..utils.errors import DataError
from ..utils.registry import Registry

__all__ = [
    "LOSS_REGISTRY",
    "check_sem_seg_targets",
    "cross_entropy_loss",
    "dice_loss",
    "bce_dice_loss",
    "focal_loss",
    "lovasz_softmax_loss",
]

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = """
Semantic segmentation losses: name -> ``fn(logits (N, C, H, W), targets (N, H, W) int64,
ignore_label=255, **options) -> scalar Tensor``.
"""


def check_sem_seg_targets(targets: torch.Tensor, num_classes: int, ignore_label: int) -> None:
    """Raise :class:`DataError` unless every value of ``targets`` is in 0..num_classes-1 or
    ``ignore_label`` (a NUM_CLASSES / label-map mismatch would otherwise fail deep in a loss)."""
    labels = torch.unique(targets)
    bad = labels[(labels != ignore_label) & ((labels < 0) | (labels >= num_classes))]
    if bad.numel():
        raise DataError(
            f"Semantic segmentation targets contain labels {bad.tolist()}, but the head predicts "
            f"{num_classes} classes (0..{num_classes - 1}) and ignores {ignore_label}. Set "
            "MODEL.SEM_SEG_HEAD.NUM_CLASSES to the number of classes of the dataset (len(stuff_classes) of "
            "its metadata), or mark those pixels with MODEL.SEM_SEG_HEAD.IGNORE_VALUE in the label PNGs."
        )


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.dim() != 4 or targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"Expected logits (N, C, H, W) and targets (N, H, W) of the same N, H, W; got logits "
            f"{tuple(logits.shape)} and targets {tuple(targets.shape)}."
        )


def _zero(logits: torch.Tensor) -> torch.Tensor:
    """A 0 loss that keeps ``logits`` in the graph (so backward works when all pixels are ignored)."""
    return logits.sum() * 0.0


def _valid_pixels(
    logits: torch.Tensor, targets: torch.Tensor, ignore_label: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Non-ignored pixels as ``(logits (P, C), targets (P,))``, P = number of valid pixels."""
    _check_shapes(logits, targets)
    valid = targets != ignore_label
    return logits.permute(0, 2, 3, 1)[valid], targets[valid]


@LOSS_REGISTRY.register(name="cross_entropy")
def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_label: int = 255) -> torch.Tensor:
    """Softmax cross-entropy averaged over the non-ignored pixels (``F.cross_entropy``)."""
    _check_shapes(logits, targets)
    if not (targets != ignore_label).any():
        return _zero(logits)
    return F.cross_entropy(logits, targets, ignore_index=ignore_label)


@LOSS_REGISTRY.register(name="focal")
def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, ignore_label: int = 255, gamma: float = 2.0
) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017) ``-(1 - p_t)^gamma * log(p_t)`` averaged over the
    non-ignored pixels, ``p_t`` the softmax probability of the target class. ``gamma=0`` is
    the cross-entropy."""
    logits, targets = _valid_pixels(logits, targets, ignore_label)
    if targets.numel() == 0:
        return _zero(logits)
    ce = F.cross_entropy(logits, targets, reduction="none")
    p_t = torch.exp(-ce)
    return ((1.0 - p_t) ** gamma * ce).mean()


def _soft_dice(probs: torch.Tensor, onehot: torch.Tensor, smooth: float) -> torch.Tensor:
    """Per-class soft Dice ``(2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)`` of (P, K)
    probabilities and 0/1 targets -> (K,)."""
    intersection = (probs * onehot).sum(dim=0)
    return (2.0 * intersection + smooth) / (probs.sum(dim=0) + onehot.sum(dim=0) + smooth)


@LOSS_REGISTRY.register(name="dice")
def dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, ignore_label: int = 255, smooth: float = 1.0
) -> torch.Tensor:
    """Soft multi-class Dice loss: ``1 - mean_c dice_c`` over the classes present in the
    non-ignored ``targets``, with ``dice_c`` computed on the softmax probabilities of the
    whole batch (all images pooled) and ``smooth`` added to numerator and denominator."""
    logits, targets = _valid_pixels(logits, targets, ignore_label)
    if targets.numel() == 0:
        return _zero(logits)
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    present = onehot.sum(dim=0) > 0
    dice = _soft_dice(logits.softmax(dim=1), onehot, smooth)
    return 1.0 - dice[present].mean()


@LOSS_REGISTRY.register(name="bce_dice")
def bce_dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, ignore_label: int = 255, smooth: float = 1.0
) -> torch.Tensor:
    """Binary loss ``BCE + (1 - Dice)`` of the foreground (class 1), for 2-class problems.

    The foreground logit is ``logits[:, 1] - logits[:, 0]`` for C=2 (its sigmoid equals the
    softmax probability of class 1) or ``logits[:, 0]`` for a single-channel head (C=1).
    BCE is averaged over the non-ignored pixels; Dice is the soft Dice of the foreground
    probability over the batch, with ``smooth`` added to numerator and denominator.
    Targets must be 0 (background), 1 (foreground) or ``ignore_label``.
    """
    if logits.dim() != 4 or logits.shape[1] not in (1, 2):
        raise ValueError(
            f"bce_dice is a binary loss: it needs logits (N, 1, H, W) or (N, 2, H, W), got {tuple(logits.shape)}. "
            "Use 'dice' or 'cross_entropy' for more than 2 classes."
        )
    fg_logits = logits[:, 1:2] - logits[:, 0:1] if logits.shape[1] == 2 else logits
    fg_logits, targets = _valid_pixels(fg_logits, targets, ignore_label)
    if targets.numel() == 0:
        return _zero(logits)
    fg_logits, fg = fg_logits[:, 0], targets.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(fg_logits, fg)
    dice = _soft_dice(torch.sigmoid(fg_logits)[:, None], fg[:, None], smooth)[0]
    return bce + (1.0 - dice)


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss for 0/1 ground truth ``gt_sorted`` (P,)
    ordered by decreasing error: ``J_k - J_{k-1}``, with ``J_k`` the Jaccard loss of predicting
    the first k pixels wrong (Berman et al. 2018, eq. 8)."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


@LOSS_REGISTRY.register(name="lovasz_softmax")
def lovasz_softmax_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_label: int = 255) -> torch.Tensor:
    """Lovász-softmax loss (Berman et al. 2018): for each class present in the non-ignored
    targets, the Lovász extension of its Jaccard loss evaluated at the errors
    ``|1[target == c] - p_c|`` of the softmax probabilities (all pixels of the batch pooled),
    averaged over those classes. 0 for a perfect one-hot prediction."""
    logits, targets = _valid_pixels(logits, targets, ignore_label)
    if targets.numel() == 0:
        return _zero(logits)
    probs = logits.softmax(dim=1)
    losses = []
    for c in torch.unique(targets).tolist():
        fg = (targets == c).to(probs.dtype)
        errors, order = (fg - probs[:, c]).abs().sort(descending=True)
        losses.append(torch.dot(errors, _lovasz_grad(fg[order])))
    return torch.stack(losses).mean()
