import logging
import math

import pytest
import torch
from fvcore.common.param_scheduler import ConstantParamScheduler, MultiStepParamScheduler
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from seg_research.config import get_cfg
from seg_research.solver import (
    LRMultiplier,
    WarmupParamScheduler,
    build_lr_scheduler,
    build_optimizer,
    get_default_optimizer_params,
)


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.MAX_ITER = 10
    cfg.SOLVER.WARMUP_ITERS = 4
    cfg.SOLVER.WARMUP_FACTOR = 0.1
    cfg.SOLVER.STEPS = (6,)
    for k, v in solver.items():
        cfg.SOLVER[k] = v
    return cfg


def _lrs(cfg, n):
    optimizer = build_optimizer(cfg, nn.Linear(2, 2))
    scheduler = build_lr_scheduler(cfg, optimizer)
    lrs = []
    for _ in range(n):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_multistep_values():
    # warmup: 0.1 * (0.1 + 0.9 * i / 4) for i < 4; then 0.1; x0.1 from iteration 6
    expected = [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01]
    assert _lrs(_cfg(), 11) == pytest.approx(expected)


def test_steps_beyond_max_iter_are_ignored_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="seg_research.solver.build"):
        lrs = _lrs(_cfg(STEPS=(6, 10, 50), WARMUP_ITERS=0), 10)
    assert lrs == pytest.approx([0.1] * 6 + [0.01] * 4)
    assert "(6, 10, 50)" in caplog.text and "ignored" in caplog.text


def test_warmup_cosine_values():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", WARMUP_ITERS=2, BASE_LR_END=0.02, MAX_ITER=10)
    lrs = _lrs(cfg, 10)
    cosine = [0.02 + 0.5 * (0.1 - 0.02) * (1 + math.cos(math.pi * i / 10)) for i in range(10)]
    # linear warmup from 0.1 * cosine(0) = 0.01 to cosine(0.2)
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[1] == pytest.approx(0.01 + 0.5 * (cosine[2] - 0.01))
    assert lrs[2:] == pytest.approx(cosine[2:])
    assert lrs[5] == pytest.approx(0.06)  # cosine midpoint: (0.1 + 0.02) / 2


def test_warmup_constant_and_constant_warmup_method():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupConstantLR", WARMUP_METHOD="constant", WARMUP_ITERS=3)
    assert _lrs(cfg, 12) == pytest.approx([0.01] * 3 + [0.1] * 9)  # past max_iter: last lr


def test_unknown_names_list_valid_ones():
    with pytest.raises(KeyError, match="WarmupCosineLR"):
        build_lr_scheduler(_cfg(LR_SCHEDULER_NAME="Cos"), torch.optim.SGD(nn.Linear(1, 1).parameters(), 0.1))
    with pytest.raises(KeyError, match="AdamW"):
        build_optimizer(_cfg(OPTIMIZER="Adam"), nn.Linear(1, 1))
    with pytest.raises(ValueError, match="'linear' or 'constant'"):
        WarmupParamScheduler(ConstantParamScheduler(1.0), 0.1, 0.5, "exp")


def test_lr_multiplier_state_dict_round_trip():
    def make():
        opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
        multiplier = MultiStepParamScheduler([1.0, 0.1, 0.01], milestones=[3, 6], num_updates=10)
        return opt, LRMultiplier(opt, multiplier, max_iter=10)

    opt, sched = make()
    for _ in range(4):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert state == {"base_lrs": [1.0], "last_epoch": 4}
    opt2, sched2 = make()
    assert opt2.param_groups[0]["lr"] == 1.0
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.1)
    assert sched2.get_last_lr() == pytest.approx([0.1])
    for _ in range(3):
        opt.step(), sched.step(), opt2.step(), sched2.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(0.01)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.gn = nn.GroupNorm(1, 2)
        self.frozen = FrozenBatchNorm2d(2)
        self.fc = nn.Linear(2, 2, bias=False)
        self.fc_shared = self.fc  # the same parameter twice
        self.frozen_fc = nn.Linear(2, 2)
        self.frozen_fc.requires_grad_(False)


def test_default_optimizer_params_decay_and_bias_factor():
    net = _Net()
    groups = get_default_optimizer_params(net, base_lr=1.0, weight_decay=1e-4, weight_decay_norm=0.0,
                                          bias_lr_factor=2.0, weight_decay_bias=1e-5)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert by_param == {
        id(net.conv.weight): (1.0, 1e-4),
        id(net.conv.bias): (2.0, 1e-5),
        id(net.bn.weight): (1.0, 0.0),
        id(net.bn.bias): (2.0, 0.0),
        id(net.gn.weight): (1.0, 0.0),
        id(net.gn.bias): (2.0, 0.0),
        id(net.fc.weight): (1.0, 1e-4),
    }
    assert sum(len(g["params"]) for g in groups) == 7  # shared fc once, frozen ones out
    assert len(groups) == 4  # (1, 1e-4), (2, 1e-5), (1, 0), (2, 0)


def test_build_optimizer_sgd_and_adamw():
    sgd = build_optimizer(_cfg(MOMENTUM=0.8, NESTEROV=True, WEIGHT_DECAY_BIAS=None, WEIGHT_DECAY=0.5), nn.Linear(2, 1))
    assert type(sgd) is torch.optim.SGD
    assert all(g["momentum"] == 0.8 and g["nesterov"] and g["weight_decay"] == 0.5 for g in sgd.param_groups)
    adamw = build_optimizer(_cfg(OPTIMIZER="AdamW", BETAS=(0.8, 0.9)), nn.Linear(2, 1))
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["betas"] == (0.8, 0.9)


def _grad_after_clipped_step(clip_type, clip_value):
    cfg = _cfg(WEIGHT_DECAY=0.0, MOMENTUM=0.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = clip_type
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = clip_value
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0]]))
    optimizer = build_optimizer(cfg, model)
    assert type(optimizer).__name__ == "SGDWithGradientClip" and isinstance(optimizer, torch.optim.SGD)
    model.weight.grad = torch.tensor([[3.0, -4.0]])  # L2 norm 5
    optimizer.step()
    return model.weight.grad, model.weight.detach()


def test_gradient_clipping_norm_caps_the_norm():
    grad, weight = _grad_after_clipped_step("norm", 1.0)
    assert torch.linalg.vector_norm(grad).item() == pytest.approx(1.0, rel=1e-5)
    assert grad.tolist()[0] == pytest.approx([0.6, -0.8], rel=1e-5)
    assert weight.tolist()[0] == pytest.approx([-0.06, 0.08], rel=1e-5)  # lr 0.1 x clipped grad


def test_gradient_clipping_value_clamps_elements():
    grad, _ = _grad_after_clipped_step("value", 2.0)
    assert grad.tolist() == [[2.0, -2.0]]
