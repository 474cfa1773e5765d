"""Mask2Former's optimizer (upstream train_net's build_optimizer) and DeepLab's poly LR schedule
(seg_research.projects.deeplab), against hand-computed values and upstream's parameter groups
(fixture: make_train_fixtures.py)."""
import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

import seg_research.projects.mask2former.modeling.backbone  # noqa: F401 (registers D2SwinTransformer)
from seg_research.config import get_cfg
from seg_research.modeling import build_model
from seg_research.projects.deeplab import WarmupPolyLR, add_deeplab_config, build_lr_scheduler
from seg_research.projects.mask2former import add_maskformer2_config
from seg_research.projects.mask2former.solver import build_optimizer
from seg_research.solver import LRMultiplier

from .make_train_fixtures import FIXTURES


class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(2, 2)
        self.norm = nn.LayerNorm(2)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3, 1))


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = _Backbone()
        self.query_feat = nn.Embedding(4, 2)
        self.head = nn.Linear(2, 3)
        self.head_norm = nn.GroupNorm(1, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def _cfg(**solver):
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.SOLVER.BASE_LR = 1e-4
    cfg.SOLVER.WEIGHT_DECAY = 0.05
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.01
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    for key, value in solver.items():
        setattr(cfg.SOLVER, key, value)
    return cfg


def _settings(optimizer, model):
    names = {p: n for n, p in model.named_parameters()}
    return {names[p]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


def test_groups_follow_upstreams_rules():
    model = _Model()
    optimizer = build_optimizer(_cfg(), model)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["betas"] == (0.9, 0.999)
    lr, bb = 1e-4, 1e-4 * 0.1
    assert _settings(optimizer, model) == {
        "backbone.proj.weight": (bb, 0.05), "backbone.proj.bias": (bb, 0.05),
        "backbone.norm.weight": (bb, 0.0), "backbone.norm.bias": (bb, 0.0),
        "backbone.relative_position_bias_table": (bb, 0.0),
        "query_feat.weight": (lr, 0.01),
        "head.weight": (lr, 0.05), "head.bias": (lr, 0.05),
        "head_norm.weight": (lr, 0.0), "head_norm.bias": (lr, 0.0),
    }
    # Equal settings share a group.
    assert len(optimizer.param_groups) == 5


def test_full_model_clipping_rescales_all_gradients_together():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False))
    cfg = _cfg(OPTIMIZER="SGD", BASE_LR=1.0, MOMENTUM=0.0, WEIGHT_DECAY=0.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
    optimizer = build_optimizer(cfg, model)
    for layer, grad in zip(model, (3.0, 4.0), strict=True):
        layer.weight.data.fill_(0.0)
        layer.weight.grad = torch.full((1, 1), grad)
    optimizer.step()
    # The total norm 5 becomes 1: steps of 3/5 and 4/5 (a per-parameter clip would give 1 and 1).
    assert [layer.weight.item() for layer in model] == pytest.approx([-0.6, -0.8])


def test_other_clip_types_and_optimizer_names():
    cfg = _cfg(OPTIMIZER="SGD", MOMENTUM=0.9)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
    optimizer = build_optimizer(cfg, _Model())
    assert isinstance(optimizer, torch.optim.SGD) and type(optimizer).__name__ == "SGDWithGradientClip"
    assert optimizer.defaults["momentum"] == 0.9
    assert isinstance(build_optimizer(_cfg(OPTIMIZER="AdamW"), _Model()), torch.optim.AdamW)
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        build_optimizer(_cfg(OPTIMIZER="LAMB"), _Model())


def _lrs(scheduler, n):
    lrs = []
    for _ in range(n):
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def _optimizer(lr=1.0):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def test_poly_schedule_by_hand():
    lrs = _lrs(WarmupPolyLR(_optimizer(), 10, warmup_iters=0, power=1.0), 10)
    assert lrs == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    lrs = _lrs(WarmupPolyLR(_optimizer(), 10, warmup_iters=0, power=1.0, constant_ending=0.25), 10)
    assert lrs[-3:] == pytest.approx([0.3, 0.25, 0.25])
    # Linear warmup over 4 iterations from 0.2: factors 0.2, 0.4, 0.6, 0.8, then 1; poly power 2 over 8.
    lrs = _lrs(WarmupPolyLR(_optimizer(), 8, warmup_factor=0.2, warmup_iters=4, power=2.0), 6)
    expected = [f * (1 - i / 8) ** 2 for i, f in enumerate([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])]
    assert lrs == pytest.approx(expected)


def test_build_lr_scheduler_reads_the_poly_keys_and_defers_to_the_library():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupPolyLR", MAX_ITER=100, WARMUP_ITERS=0, POLY_LR_POWER=0.9)
    scheduler = build_lr_scheduler(cfg, _optimizer(2.0))
    assert isinstance(scheduler, WarmupPolyLR)
    assert _lrs(scheduler, 51)[50] == pytest.approx(2.0 * math.pow(0.5, 0.9))
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupCosineLR"
    assert isinstance(build_lr_scheduler(cfg, _optimizer()), LRMultiplier)


def test_poly_scheduler_state_resumes():
    scheduler = WarmupPolyLR(_optimizer(), 10, warmup_iters=0, power=1.0)
    _lrs(scheduler, 4)
    state = scheduler.state_dict()
    resumed = WarmupPolyLR(_optimizer(), 10, warmup_iters=0, power=1.0)
    resumed.load_state_dict(state)
    resumed.step()
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


def test_poly_without_deeplab_keys_says_what_to_call():
    cfg = get_cfg()
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupPolyLR"
    with pytest.raises(KeyError, match="add_deeplab_config"):
        build_lr_scheduler(cfg, _optimizer())


def test_parameter_groups_of_a_swin_model_equal_upstreams(tmp_path):
    # Upstream train_net's build_optimizer on upstream's Swin-T ADE20K model (fixture:
    # make_train_fixtures.py), against ours on our model of the same config: LR and decay per name.
    upstream = np.load(os.path.join(FIXTURES, "swin_optimizer.npz"))
    config = tmp_path / "config.yaml"
    config.write_text(str(upstream["config"]))
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(str(config))
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    assert isinstance(optimizer, getattr(torch.optim, str(upstream["optimizer"])))
    expected = {name: (lr, decay) for name, lr, decay in json.loads(str(upstream["groups"]))}
    assert _settings(optimizer, model) == expected
