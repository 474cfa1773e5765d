"""HungarianMatcher: upstream Mask2Former's assignment on a seeded case (fixture:
make_train_fixtures.py), hand-computed costs, and fp32 under autocast."""
import os

import numpy as np
import pytest
import torch

from seg_research.projects.mask2former.modeling.matcher import (
    HungarianMatcher,
    batch_dice_cost,
    batch_sigmoid_ce_cost,
)

from .make_train_fixtures import COSTS, CRITERION_SEED, FIXTURES, matcher_case


def _inputs(case):
    outputs = {"pred_logits": torch.tensor(case["pred_logits"]), "pred_masks": torch.tensor(case["pred_masks"])}
    targets = [{"labels": torch.as_tensor(lab), "masks": torch.as_tensor(m)}
               for lab, m in zip(case["labels"], case["masks"], strict=True)]
    return outputs, targets


def test_assignment_equals_upstreams():
    upstream = np.load(os.path.join(FIXTURES, "criterion_parity.npz"))
    case = matcher_case()
    torch.manual_seed(CRITERION_SEED)
    result = HungarianMatcher(*COSTS, num_points=case["num_points"])(*_inputs(case))
    for b, (rows, cols) in enumerate(result):
        assert rows.dtype == cols.dtype == torch.int64
        np.testing.assert_array_equal(np.stack([rows.numpy(), cols.numpy()]), upstream[f"matcher_{b}"])


def test_costs_by_hand():
    logits = torch.tensor([[0.0, 0.0], [10.0, -10.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    # Logit 0 costs log 2 against either value; logits (10, -10) cost ~0 against (1, 0), ~5 = (0 + 10) / 2
    # against (1, 1) and ~5 against (0, 0).
    ce = batch_sigmoid_ce_cost(logits, targets)
    np.testing.assert_allclose(ce[0].numpy(), [np.log(2)] * 3, atol=1e-6)
    np.testing.assert_allclose(ce[1].numpy(), [0.0, 5.0, 5.0], atol=1e-3)
    dice = batch_dice_cost(logits, targets)
    # probabilities (0.5, 0.5): against (1, 0): 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3.
    assert dice[0, 0].item() == pytest.approx(1 / 3, abs=1e-6)
    assert dice[0, 2].item() == pytest.approx(1 - 1 / 2, abs=1e-6)


def test_obvious_assignment_and_more_targets_than_queries():
    masks = torch.zeros(3, 8, 8)
    masks[0, :4], masks[1, 4:], masks[2, :, :4] = 1, 1, 1
    # Query 0 predicts target 1, query 1 predicts target 0 (class and mask).
    pred_masks = torch.stack([20 * masks[1] - 10, 20 * masks[0] - 10])[None]
    logits = torch.tensor([[[-5.0, 5.0, 0.0], [5.0, -5.0, 0.0]]])
    matcher = HungarianMatcher(1, 1, 1, num_points=200)
    rows, cols = matcher({"pred_logits": logits, "pred_masks": pred_masks},
                         [{"labels": torch.tensor([0, 1]), "masks": masks[:2]}])[0]
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    # 3 targets, 2 queries: each query gets one target.
    rows, cols = matcher({"pred_logits": logits, "pred_masks": pred_masks},
                         [{"labels": torch.tensor([0, 1, 0]), "masks": masks}])[0]
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_costs_stay_float32_under_autocast():
    case = matcher_case()
    outputs, targets = _inputs(case)
    torch.manual_seed(CRITERION_SEED)
    reference = HungarianMatcher(*COSTS, num_points=case["num_points"])(outputs, targets)
    half = {k: v.bfloat16() for k, v in outputs.items()}
    torch.manual_seed(CRITERION_SEED)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = HungarianMatcher(*COSTS, num_points=case["num_points"])(half, targets)
    for (r0, c0), (r1, c1) in zip(reference, result, strict=True):
        assert r0.tolist() == r1.tolist() and c0.tolist() == c1.tolist()


def test_settings_without_mask_points_are_refused():
    with pytest.raises(ValueError, match="all 0"):
        HungarianMatcher(0, 0, 0, num_points=10)
    with pytest.raises(ValueError, match="TRAIN_NUM_POINTS"):
        HungarianMatcher(1, 1, 1, num_points=0)
