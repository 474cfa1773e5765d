"""Segmentation losses: hand-computed values, ignore handling and the LOSS registry."""
import math

import pytest
import torch
import torch.nn.functional as F

from seg_research.data.errors import DataError
from seg_research.modeling.losses import (
    LOSS_REGISTRY,
    bce_dice_loss,
    check_sem_seg_targets,
    cross_entropy_loss,
    dice_loss,
    focal_loss,
    lovasz_softmax_loss,
)

ALL_LOSSES = [cross_entropy_loss, dice_loss, bce_dice_loss, focal_loss, lovasz_softmax_loss]


def _logits_from_fg_probs(p1):
    """(1, 2, H, W) logits whose softmax gives class 1 probability ``p1`` (H, W) (logits = log p)."""
    p1 = torch.tensor(p1, dtype=torch.float64)
    return torch.stack([torch.log(1 - p1), torch.log(p1)])[None]


def _perfect_logits(targets, num_classes):
    """Logits (N, C, H, W) with a margin of 30 for the target class: softmax is one-hot up to 1e-13."""
    return 30.0 * F.one_hot(targets, num_classes).permute(0, 3, 1, 2).double()


def test_registry_names():
    assert {name for name, _ in LOSS_REGISTRY} >= {"cross_entropy", "dice", "bce_dice", "focal", "lovasz_softmax"}
    assert LOSS_REGISTRY.get("dice") is dice_loss


def test_cross_entropy_equals_torch_with_ignore():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    targets = torch.randint(0, 4, (2, 3, 5))
    targets[0, 0, :2] = 255
    assert cross_entropy_loss(logits, targets).item() == pytest.approx(
        F.cross_entropy(logits, targets, ignore_index=255).item(), rel=1e-6)
    # by hand on one pixel: logits (0, ln 3) -> p(class 1) = 3/4
    one = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)
    assert cross_entropy_loss(one, torch.ones(1, 1, 1, dtype=torch.int64)).item() == pytest.approx(-math.log(0.75))


def test_dice_hand_value_2x2():
    # targets [[0, 1], [1, 1]], p(class 1) [[.2, .6], [.9, .5]]
    # class 0: (2 * .8 + 1) / (1.8 + 1 + 1) = 2.6 / 3.8; class 1: (2 * 2.0 + 1) / (2.2 + 3 + 1) = 5 / 6.2
    logits = _logits_from_fg_probs([[0.2, 0.6], [0.9, 0.5]])
    targets = torch.tensor([[[0, 1], [1, 1]]])
    expected = 1 - (2.6 / 3.8 + 5 / 6.2) / 2
    assert dice_loss(logits, targets).item() == pytest.approx(expected, abs=1e-9)


def test_dice_averages_present_classes_only_and_skips_ignore():
    # same pixels with a 3rd, absent class of probability ~0, and an extra ignored pixel
    two = _logits_from_fg_probs([[0.2, 0.6, 0.3], [0.9, 0.5, 0.3]])
    three = torch.cat([two, torch.full((1, 1, 2, 3), -60.0, dtype=torch.float64)], dim=1)
    targets = torch.tensor([[[0, 1, 255], [1, 1, 255]]])
    expected = 1 - (2.6 / 3.8 + 5 / 6.2) / 2
    assert dice_loss(three, targets).item() == pytest.approx(expected, abs=1e-9)


def test_dice_and_lovasz_of_a_perfect_prediction_are_zero():
    targets = torch.tensor([[[0, 1, 2], [2, 2, 255]]])
    logits = _perfect_logits(targets.clamp(max=2), 3)
    assert dice_loss(logits, targets).item() == pytest.approx(0.0, abs=1e-9)
    assert lovasz_softmax_loss(logits, targets).item() == pytest.approx(0.0, abs=1e-9)


def test_focal_gamma0_equals_ce_and_hand_value():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    targets = torch.randint(0, 3, (2, 4, 4))
    targets[1, 2] = 255
    assert focal_loss(logits, targets, gamma=0.0).item() == pytest.approx(
        cross_entropy_loss(logits, targets).item(), rel=1e-12)
    # one pixel with p_t = 0.7: (1 - 0.7)^2 * -ln 0.7
    one = _logits_from_fg_probs([[0.7]])
    assert focal_loss(one, torch.ones(1, 1, 1, dtype=torch.int64), gamma=2.0).item() == pytest.approx(
        0.09 * -math.log(0.7), rel=1e-9)


def test_lovasz_softmax_hand_value():
    # 3 pixels, targets [0, 1, 1], p(class 1) = [.2, .7, .4]; both classes have errors [.2, .3, .6].
    # class 0: sorted gt [0, 0, 1] -> Jaccard losses [1/2, 2/3, 1] -> grad [1/2, 1/6, 1/3]
    #          loss = .6/2 + .3/6 + .2/3 = 5/12
    # class 1: sorted gt [1, 1, 0] -> Jaccard losses [1/2, 1, 1] -> grad [1/2, 1/2, 0]
    #          loss = .6/2 + .3/2 = 9/20
    logits = _logits_from_fg_probs([[0.2, 0.7, 0.4]])
    targets = torch.tensor([[[0, 1, 1]]])
    assert lovasz_softmax_loss(logits, targets).item() == pytest.approx((5 / 12 + 9 / 20) / 2, abs=1e-9)


def test_bce_dice_hand_value_two_channel_and_single_channel():
    # foreground logits [0, ln 3] -> sigmoid [.5, .75], targets [0, 1]
    # BCE = (ln 2 - ln .75) / 2; Dice = (2 * .75 + 1) / (1.25 + 1 + 1) = 2.5 / 3.25
    expected = (math.log(2) - math.log(0.75)) / 2 + 1 - 2.5 / 3.25
    targets = torch.tensor([[[0, 1]]])
    two = torch.tensor([[[[1.0, -2.0]], [[1.0, -2.0 + math.log(3.0)]]]], dtype=torch.float64)  # difference [0, ln 3]
    single = torch.tensor([[[[0.0, math.log(3.0)]]]], dtype=torch.float64)
    assert bce_dice_loss(two, targets).item() == pytest.approx(expected, abs=1e-9)
    assert bce_dice_loss(single, targets).item() == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="binary loss"):
        bce_dice_loss(torch.zeros(1, 3, 1, 2), targets)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_ignored_pixels_get_no_gradient_and_do_not_change_the_loss(loss):
    torch.manual_seed(2)
    logits = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 2, (2, 3, 4))
    targets[0, 0, 0] = targets[0, 0, 1] = 1  # keep both classes present
    targets[1, :, 2] = 0
    ignored = torch.zeros_like(targets, dtype=torch.bool)
    ignored[0, 1, :] = True
    ignored[1, 2, 3] = True
    value = loss(logits, torch.where(ignored, 255, targets))
    value.backward()
    grad = logits.grad.permute(0, 2, 3, 1)
    assert torch.all(grad[ignored] == 0)
    assert torch.any(grad[~ignored] != 0)
    # changing the logits of ignored pixels does not change the loss
    moved = logits.detach().clone()
    moved.permute(0, 2, 3, 1)[ignored] += 5.0
    assert loss(moved, torch.where(ignored, 255, targets)).item() == pytest.approx(value.item(), abs=1e-12)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_all_ignored_gives_zero_with_a_graph(loss):
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    value = loss(logits, torch.full((1, 2, 2), 255))
    value.backward()
    assert value.item() == 0.0 and torch.all(logits.grad == 0)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"logits \(N, C, H, W\) and targets \(N, H, W\)"):
        dice_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.int64))


def test_check_sem_seg_targets_names_the_bad_labels():
    check_sem_seg_targets(torch.tensor([[0, 6, 255]]), num_classes=7, ignore_label=255)
    with pytest.raises(DataError, match=r"labels \[7, 9\].*NUM_CLASSES"):
        check_sem_seg_targets(torch.tensor([[0, 7, 9, 255]]), num_classes=7, ignore_label=255)
