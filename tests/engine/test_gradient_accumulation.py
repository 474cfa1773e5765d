"""SOLVER.GRADIENT_ACCUMULATION_STEPS: N micro-batches of k images make the update of one batch of N*k."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from seg_research.config import get_cfg
from seg_research.data.build import micro_batch_size
from seg_research.engine import hooks
from seg_research.engine.train_loop import SimpleTrainer
from seg_research.solver import build_lr_scheduler, build_optimizer


class _MLP(nn.Module):
    """No batch-dependent norm; the loss is a mean over images (and over their 2 outputs)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, batch):
        x, y = batch
        return {"loss_a": (self.net(x) - y).square().mean(), "loss_b": 0.1 * (self.net(x) - y).abs().mean()}


def _data(num_images, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_images, 4, generator=g)
    return x, torch.stack([x.sum(1), x[:, 0] * x[:, 1]], dim=1)


def _split(batch, parts):
    x, y = batch
    return list(zip(x.chunk(parts), y.chunk(parts), strict=True))


def _train(model, batches, accumulation, iterations, lr=0.1, momentum=0.0, weight_decay=0.0):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    trainer = SimpleTrainer(model, iter(batches), optimizer, gradient_accumulation_steps=accumulation)
    trainer.train(0, iterations)
    return trainer


@pytest.mark.parametrize("accumulation", [2, 3, 6])
def test_n_micro_batches_give_the_update_of_one_big_batch(accumulation):
    torch.manual_seed(0)
    model = _MLP()
    initial = copy.deepcopy(model)
    big = _data(12)
    # by hand: the gradient of the mean loss over all 12 images, then p - lr * (g + wd * p)
    lr, wd = 0.1, 0.01
    reference = copy.deepcopy(initial)
    losses = reference(big)
    grads = torch.autograd.grad(sum(losses.values()), list(reference.parameters()))
    expected = [p.detach() - lr * (g + wd * p.detach()) for p, g in zip(reference.parameters(), grads, strict=True)]

    micro = copy.deepcopy(initial)
    _train(micro, _split(big, accumulation), accumulation, 1, lr=lr, weight_decay=wd)
    one_batch = copy.deepcopy(initial)
    _train(one_batch, [big], 1, 1, lr=lr, weight_decay=wd)
    for p_micro, p_big, p_hand in zip(micro.parameters(), one_batch.parameters(), expected, strict=True):
        np.testing.assert_allclose(p_micro.detach().numpy(), p_big.detach().numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(p_micro.detach().numpy(), p_hand.numpy(), rtol=0, atol=1e-6)


def test_several_steps_with_momentum_match_the_big_batches():
    torch.manual_seed(1)
    model = _MLP()
    bigs = [_data(8, seed=s) for s in range(4)]
    micro = copy.deepcopy(model)
    _train(micro, [m for b in bigs for m in _split(b, 4)], 4, 4, momentum=0.9)
    _train(model, bigs, 1, 4, momentum=0.9)
    for p_micro, p_big in zip(micro.parameters(), model.parameters(), strict=True):
        np.testing.assert_allclose(p_micro.detach().numpy(), p_big.detach().numpy(), rtol=0, atol=1e-6)


def test_iterations_lr_schedule_and_losses_count_optimizer_steps():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR = 0.1, 5, 2, 0.5
    cfg.SOLVER.STEPS, cfg.SOLVER.GAMMA = (3,), 0.1
    torch.manual_seed(0)
    model = _MLP()
    drawn = []
    micro_batches = [_data(2, seed=s) for s in range(15)]

    def loader():
        for b in micro_batches:
            drawn.append(b)
            yield b

    steps = []
    optimizer = build_optimizer(cfg, model)
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    trainer = SimpleTrainer(model, loader(), optimizer, gradient_accumulation_steps=3)
    trainer.scheduler = build_lr_scheduler(cfg, optimizer)
    first_losses = [copy.deepcopy(model)(b) for b in micro_batches[:3]]
    trainer.register_hooks([hooks.LRScheduler()])
    trainer.train(0, 5)
    assert (trainer.iter, len(steps), len(drawn)) == (5, 5, 15)  # 5 optimizer steps of 3 micro-batches
    storage = trainer.storage
    lrs = [v for v, _ in storage.history("lr").values()]
    # by hand: linear warm-up over 2 iterations from 0.5x, then x0.1 from iteration 3
    np.testing.assert_allclose(lrs, [0.05, 0.075, 0.1, 0.01, 0.01], rtol=1e-6)
    assert [it for _, it in storage.history("total_loss").values()] == [0, 1, 2, 3, 4]
    # the losses written at iteration 0 are the means over its 3 micro-batches
    loss_a = storage.history("loss_a").values()[0][0]
    assert loss_a == pytest.approx(float(np.mean([float(d["loss_a"].detach()) for d in first_losses])), rel=1e-6)


def test_ims_per_batch_must_divide_by_accumulation_and_processes():
    assert micro_batch_size(16, 4, 2) == 4  # 4 images per micro-batch over 2 processes: 2 each
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH \(10\) must be divisible by "
                                         r"SOLVER.GRADIENT_ACCUMULATION_STEPS \(3\) x the number of processes \(1\)"):
        micro_batch_size(10, 3, 1)
    with pytest.raises(ValueError, match="multiple of 8"):
        micro_batch_size(12, 4, 2)
    with pytest.raises(ValueError, match="integer >= 1"):
        SimpleTrainer(_MLP(), [], torch.optim.SGD(_MLP().parameters(), lr=0.1), gradient_accumulation_steps=0)
