"""TEST.PRECISE_BN (hooks.PreciseBN) and SOLVER.REFERENCE_WORLD_SIZE (DefaultTrainer.auto_scale_workers)."""
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

from seg_research.config import get_cfg
from seg_research.engine import DefaultTrainer, hooks
from seg_research.engine.train_loop import SimpleTrainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "helpers"))
import tiny_semseg  # noqa: E402, F401  (registers TinySemSegNet, the model of the tiny configs)


class _BNModel(nn.Module):
    """conv (fixed) -> BN -> a loss; the BN sees known batches."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(2, momentum=0.1)
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, batch):
        return {"loss": (self.bn(batch) * self.w).square().mean()}


def _batches():
    rng = np.random.default_rng(0)
    return [torch.as_tensor(rng.normal(loc, scale, size=(4, 2, 3, 3)), dtype=torch.float32)
            for loc, scale in [(0.0, 1.0), (2.0, 0.5), (-1.0, 2.0), (5.0, 1.0)]]


def test_precise_bn_sets_the_true_average_of_the_batch_statistics():
    model = _BNModel().train()
    data = _batches()
    hook = hooks.PreciseBN(period=2, model=model, data_loader=data[:3] * 10, num_iter=3)
    trainer = SimpleTrainer(model, iter(lambda: data[3], None), torch.optim.SGD(model.parameters(), lr=0.0))
    trainer.register_hooks([hook])
    trainer.train(0, 2)  # iteration 1 is the last: statistics recomputed over data[0..2]
    # expected by hand: per channel, the mean and variance of all values of the three batches pooled,
    # the population the running statistics stand for (fvcore's estimator; not a momentum average)
    pooled = np.concatenate([b.permute(1, 0, 2, 3).reshape(2, -1).numpy() for b in data[:3]], axis=1)
    mean, var = pooled.mean(axis=1), pooled.var(axis=1)
    np.testing.assert_allclose(model.bn.running_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(model.bn.running_var.numpy(), var, rtol=1e-5)
    assert model.bn.momentum == 0.1 and model.training  # restored


def test_precise_bn_without_batchnorm_does_nothing():
    model = nn.Linear(2, 2)
    hook = hooks.PreciseBN(period=1, model=model, data_loader=None, num_iter=5)
    hook.update_stats()  # never touches the (absent) loader


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER = 16, 0.02, 90000
    cfg.SOLVER.STEPS, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.CHECKPOINT_PERIOD = (60000, 80000), 1000, 5000
    cfg.TEST.EVAL_PERIOD = 10000
    for k, v in solver.items():
        cfg.SOLVER[k] = v
    return cfg


def test_auto_scale_workers_follows_the_linear_scaling_rule():
    cfg = _cfg(REFERENCE_WORLD_SIZE=8)
    cfg.freeze()
    scaled = DefaultTrainer.auto_scale_workers(cfg, 16)
    s = scaled.SOLVER
    assert (s.IMS_PER_BATCH, s.BASE_LR, s.MAX_ITER, s.STEPS, s.WARMUP_ITERS, s.CHECKPOINT_PERIOD) == \
        (32, 0.04, 45000, (30000, 40000), 500, 2500)
    assert scaled.TEST.EVAL_PERIOD == 5000 and s.REFERENCE_WORLD_SIZE == 16 and scaled.is_frozen()
    assert cfg.SOLVER.IMS_PER_BATCH == 16  # the input config is untouched
    assert DefaultTrainer.auto_scale_workers(scaled, 16) is scaled  # scaling twice changes nothing
    down = DefaultTrainer.auto_scale_workers(cfg, 2).SOLVER
    assert (down.IMS_PER_BATCH, down.BASE_LR, down.MAX_ITER, down.STEPS) == (4, 0.005, 360000, (240000, 320000))


def test_auto_scale_workers_is_off_by_default_and_checks_divisibility():
    cfg = _cfg()
    assert DefaultTrainer.auto_scale_workers(cfg, 4) is cfg
    with pytest.raises(ValueError, match="IMS_PER_BATCH 16 is not divisible by SOLVER.REFERENCE_WORLD_SIZE 3"):
        DefaultTrainer.auto_scale_workers(_cfg(REFERENCE_WORLD_SIZE=3), 6)


@pytest.mark.slow
def test_default_trainer_runs_precise_bn_before_checkpointing_and_scales_to_its_world(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml"))
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path), "TEST.PRECISE_BN.ENABLED", True, "TEST.PRECISE_BN.NUM_ITER", 2,
                         "SOLVER.REFERENCE_WORLD_SIZE", 2, "SOLVER.IMS_PER_BATCH", 4, "SOLVER.MAX_ITER", 4,
                         "TEST.EVAL_PERIOD", 2, "DATASETS.TEST", "()"])
    trainer = DefaultTrainer(cfg)  # one process: half the batch, twice the iterations
    assert (trainer.cfg.SOLVER.IMS_PER_BATCH, trainer.max_iter) == (2, 8)
    names = [type(h).__name__ for h in trainer._hooks]
    assert names.index("PreciseBN") < names.index("PeriodicCheckpointer")
    bn = next(m for m in trainer.model.modules() if isinstance(m, nn.BatchNorm2d))
    calls = []
    precise = next(h for h in trainer._hooks if isinstance(h, hooks.PreciseBN))
    original = precise.update_stats
    precise.update_stats = lambda: (calls.append(trainer.iter), original())
    trainer.train()
    assert calls == [3, 7]  # every EVAL_PERIOD (2, scaled to 4) and after the last iteration
    assert torch.isfinite(bn.running_var).all()
