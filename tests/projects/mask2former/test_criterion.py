"""SetCriterion and the point sampling against upstream Mask2Former (fixtures: make_train_fixtures.py)
and against hand-computed values."""
import os

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from seg_research.projects.mask2former.modeling.criterion import SetCriterion, dice_loss, sigmoid_ce_loss
from seg_research.projects.mask2former.modeling.matcher import HungarianMatcher
from seg_research.projects.mask2former.utils import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)

from .make_train_fixtures import (
    COSTS,
    CRITERION_SEED,
    EOS_COEF,
    FIXTURES,
    IMPORTANCE_SAMPLE_RATIO,
    NUM_CLASSES,
    NUM_LAYERS,
    NUM_POINTS,
    OVERSAMPLE_RATIO,
    criterion_case,
    point_case,
    torch_outputs,
)


@pytest.fixture(scope="module")
def upstream():
    return np.load(os.path.join(FIXTURES, "criterion_parity.npz"))


def _criterion():
    matcher = HungarianMatcher(*COSTS, num_points=NUM_POINTS)
    return SetCriterion(NUM_CLASSES, matcher, {}, EOS_COEF, ["labels", "masks"], NUM_POINTS, OVERSAMPLE_RATIO,
                        IMPORTANCE_SAMPLE_RATIO)


def test_losses_assignments_and_gradients_equal_upstreams(upstream):
    # Same random points as upstream: the same seed right before the call, and the same torch.rand
    # calls in the same order (per layer: the matcher's per image, then the point selection's two).
    t = torch_outputs(criterion_case())
    criterion = _criterion()
    assignments = []
    criterion.matcher.register_forward_hook(lambda module, args, result: assignments.append(result))
    torch.manual_seed(CRITERION_SEED)
    losses = criterion(t["outputs"], t["targets"])
    sum(losses.values()).backward()

    assert sorted(losses) == list(upstream["loss_names"])
    assert len(losses) == 3 * NUM_LAYERS
    np.testing.assert_allclose([losses[k].item() for k in upstream["loss_names"]], upstream["loss_values"],
                               rtol=0, atol=1e-4)
    for layer, per_image in enumerate(assignments):
        for b, (rows, cols) in enumerate(per_image):
            np.testing.assert_array_equal(np.stack([rows.numpy(), cols.numpy()]).reshape(2, -1),
                                          upstream[f"indices_{layer}_{b}"].reshape(2, -1))
    np.testing.assert_allclose(t["leaves"][0].grad.numpy(), upstream["grad_logits"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(t["leaves"][1].grad.numpy(), upstream["grad_masks"], rtol=0, atol=1e-5)


def test_importance_sampling_draws_pointrends_points(upstream):
    torch.manual_seed(CRITERION_SEED)
    coords = get_uncertain_point_coords_with_randomness(torch.tensor(point_case()), calculate_uncertainty, 40, 3.0,
                                                        0.75)
    np.testing.assert_array_equal(coords.numpy(), upstream["point_coords"])


def test_importance_sampling_keeps_the_most_uncertain_candidates():
    # 10 points from 40 candidates: the 5 with the sampled logit nearest 0, then 5 fresh uniform ones.
    logits = torch.tensor([[[[-4.0, 4.0], [-1.0, 2.0]]]])
    torch.manual_seed(0)
    candidates = torch.rand(1, 40, 2)
    fresh = torch.rand(1, 5, 2)
    torch.manual_seed(0)
    coords = get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 10, 4.0, 0.5)
    assert coords.shape == (1, 10, 2)
    sampled = point_sample(logits, candidates, align_corners=False)[0, 0]
    nearest = candidates[0, sampled.abs().argsort()[:5]]
    assert sorted(map(tuple, coords[0, :5].tolist())) == sorted(map(tuple, nearest.tolist()))
    assert coords[0, 5:].tolist() == fresh[0].tolist()


def test_point_sample_reads_pixel_centres():
    image = torch.arange(12.0).reshape(1, 1, 3, 4)
    # The centre of pixel (row 1, col 2) is (x, y) = (2.5 / 4, 1.5 / 3); a point halfway between
    # pixels (0, 0) and (0, 1) averages them.
    points = torch.tensor([[[2.5 / 4, 1.5 / 3], [1.0 / 4, 0.5 / 3]]])
    np.testing.assert_allclose(point_sample(image, points, align_corners=False).numpy(), [[[6.0, 0.5]]], atol=1e-6)
    grid = points.reshape(1, 1, 2, 2)
    assert point_sample(image, grid, align_corners=False).shape == (1, 1, 1, 2)


def test_mask_losses_by_hand():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    targets = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # BCE: row 0: (log 2 + log(1 + e^-2)) / 2; row 1: (log(1 + e^-1) + log(1 + e^-1)) / 2; over 2 masks.
    bce = ((np.log(2) + np.log1p(np.exp(-2))) / 2 + np.log1p(np.exp(-1))) / 2
    assert sigmoid_ce_loss(logits, targets, 2.0).item() == pytest.approx(bce, abs=1e-6)
    s = torch.sigmoid(logits).numpy()
    dice0 = 1 - (2 * (s[0, 0] + s[0, 1]) + 1) / (s[0].sum() + 2 + 1)
    dice1 = 1 - (2 * s[1, 1] + 1) / (s[1].sum() + 1 + 1)
    assert dice_loss(logits, targets, 2.0).item() == pytest.approx((dice0 + dice1) / 2, abs=1e-6)


def test_class_loss_weights_no_object():
    # 1 image, 2 queries, 2 classes (+ no object); query 1 is matched to the target of class 0,
    # query 0 is "no object" (class 2, weight 0.1): weighted mean of the two cross-entropies.
    criterion = SetCriterion(2, HungarianMatcher(1, 1, 1, num_points=4), {}, 0.1, ["labels"], 4, 3.0, 0.75)
    logits = torch.tensor([[[1.0, 0.0, 0.5], [0.2, 0.3, -1.0]]])
    indices = [(torch.tensor([1]), torch.tensor([0]))]
    loss = criterion.loss_labels({"pred_logits": logits}, [{"labels": torch.tensor([0])}], indices, 1.0)["loss_ce"]
    ce = F.cross_entropy(logits[0], torch.tensor([2, 0]), reduction="none").numpy()
    assert loss.item() == pytest.approx((0.1 * ce[0] + 1.0 * ce[1]) / 1.1, abs=1e-6)


def test_no_targets_anywhere_gives_finite_losses_and_zero_mask_losses():
    criterion = _criterion()
    outputs = {"pred_logits": torch.randn(2, 5, NUM_CLASSES + 1), "pred_masks": torch.randn(2, 5, 8, 8)}
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 32, 32)} for _ in range(2)]
    losses = criterion(outputs, targets)
    assert losses["loss_mask"].item() == 0 and losses["loss_dice"].item() == 0
    assert np.isfinite(losses["loss_ce"].item())


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="unknown losses"):
        SetCriterion(2, HungarianMatcher(num_points=4), {}, 0.1, ["boxes"], 4, 3.0, 0.75)
