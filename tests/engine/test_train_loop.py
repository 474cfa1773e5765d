import copy
import itertools
import json
import math

import pytest
import torch
from torch import nn

from seg_research.checkpoint import Checkpointer
from seg_research.config import get_cfg
from seg_research.engine import hooks
from seg_research.engine.train_loop import AMPTrainer, SimpleTrainer
from seg_research.solver import build_lr_scheduler, build_optimizer
from seg_research.utils.events import JSONWriter, get_event_storage


class _Regressor(nn.Module):
    """Linear regression; training mode returns {"loss_mse": mean squared error}."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, batch):
        x, y = batch
        return {"loss_mse": (self.fc(x) - y).square().mean()}


def _batches(n=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    i = 0
    while n is None or i < n:
        x = torch.randn(4, 3, generator=g)
        yield x, x.sum(dim=1, keepdim=True)
        i += 1


def _cfg():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.MAX_ITER = 10
    cfg.SOLVER.WARMUP_ITERS = 4
    cfg.SOLVER.WARMUP_FACTOR = 0.1
    cfg.SOLVER.STEPS = (6,)
    cfg.SOLVER.MOMENTUM = 0.9
    cfg.SOLVER.WEIGHT_DECAY = 0.0
    return cfg


def _trainer(model, data, cfg):
    trainer = SimpleTrainer(model, data, build_optimizer(cfg, model))
    trainer.scheduler = build_lr_scheduler(cfg, trainer.optimizer)
    return trainer


def test_ten_iterations_write_metrics_json_with_lr_and_eval_results(tmp_path):
    torch.manual_seed(0)
    model = _Regressor()
    initial = copy.deepcopy(model)
    trainer = _trainer(model, _batches(), _cfg())
    ap = iter([10.0, 20.0, 30.0])
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(),
        hooks.EvalHook(4, lambda: {"segm": {"AP": next(ap)}}),
        hooks.PeriodicWriter([JSONWriter(str(tmp_path / "metrics.json"))], period=1),
    ])
    trainer.train(0, 10)
    assert trainer.iter == 10

    lines = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == list(range(10))
    expected_lr = [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01]
    assert [line["lr"] for line in lines] == pytest.approx(expected_lr)
    assert {i: line["segm/AP"] for i, line in enumerate(lines) if "segm/AP" in line} == {3: 10.0, 7: 20.0, 9: 30.0}
    for line in lines:
        assert {"total_loss", "loss_mse", "data_time", "time", "lr"} <= set(line)
    first_x, first_y = next(_batches())
    assert lines[0]["total_loss"] == pytest.approx((initial.fc(first_x) - first_y).square().mean().item())
    assert lines[0]["loss_mse"] == lines[0]["total_loss"]
    assert lines[-1]["total_loss"] < lines[0]["total_loss"]


def test_single_tensor_output_is_total_loss():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(2.0))

        def forward(self, batch):
            return self.w * batch

    model = Model()
    trainer = SimpleTrainer(model, [torch.tensor(3.0)] * 2, torch.optim.SGD(model.parameters(), lr=0.5))
    trainer.train(0, 2)
    history = trainer.storage.history("total_loss").values()
    # loss = 3w, d loss / dw = 3: w 2 -> 2 - 0.5 * 3 = 0.5 -> 0.5 - 1.5 = -1; losses 6, 1.5
    assert history == [(6.0, 0), (1.5, 1)]
    assert model.w.item() == -1.0
    assert "loss_mse" not in trainer.storage.histories()


def test_nan_loss_raises_with_iteration_before_optimizer_step():
    class Model(_Regressor):
        def forward(self, batch):
            losses = super().forward(batch)
            if get_event_storage().iter == 2:
                losses["loss_bad"] = torch.tensor(math.nan)
            return losses

    model = Model()
    trainer = SimpleTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    weights = {}
    record = hooks.CallbackHook(after_step=lambda t: weights.update({t.iter: t.model.fc.weight.clone()}))
    trainer.register_hooks([record])
    with pytest.raises(FloatingPointError, match=r"iteration 2!.*'loss_mse': [0-9.]+, 'loss_bad': nan"):
        trainer.train(0, 5)
    assert trainer.iter == 2
    assert torch.equal(model.fc.weight, weights[1])  # the optimizer did not step at iteration 2


def test_resume_gives_same_lr_and_weights_as_uninterrupted(tmp_path):
    def run(out_dir, max_iter, resume):
        torch.manual_seed(0)
        model = _Regressor()
        trainer = _trainer(model, _batches(), _cfg())
        checkpointer = Checkpointer(model, str(out_dir), trainer=trainer)
        lrs = []
        trainer.register_hooks([
            hooks.LRScheduler(),
            hooks.PeriodicCheckpointer(checkpointer, period=5),
            hooks.CallbackHook(after_step=lambda t: lrs.append(t.storage.history("lr").latest())),
        ])
        start = checkpointer.resume_or_load("", resume=resume).get("iteration", -1) + 1
        trainer.data_loader = itertools.islice(_batches(), start, None)  # a sampler resumed at `start`
        trainer.train(start, max_iter)
        return model, lrs, start

    # Uninterrupted 10 iterations; then the same run killed after iteration 4 and resumed.
    full_model, full_lrs, _ = run(tmp_path / "full", 10, resume=False)
    run(tmp_path / "part", 5, resume=False)
    (tmp_path / "part" / "model_final.pth").unlink()
    (tmp_path / "part" / "last_checkpoint").write_text("model_0000004.pth")
    resumed_model, resumed_lrs, start = run(tmp_path / "part", 10, resume=True)
    assert start == 5
    assert resumed_lrs == full_lrs[5:] == pytest.approx([0.1, 0.01, 0.01, 0.01, 0.01])
    assert torch.equal(resumed_model.fc.weight, full_model.fc.weight)
    assert torch.equal(resumed_model.fc.bias, full_model.fc.bias)


def test_trainer_state_dict_round_trip():
    model = _Regressor()
    trainer = _trainer(model, _batches(), _cfg())
    trainer.register_hooks([hooks.LRScheduler()])
    trainer.train(0, 3)
    state = trainer.state_dict()
    assert state["iteration"] == 3
    assert state["hooks"] == {"LRScheduler": {"base_lrs": [0.1], "last_epoch": 3}}  # one group: no decay anywhere
    assert len(state["optimizer"]["state"]) == 2

    other = _trainer(_Regressor(), _batches(), _cfg())
    other.register_hooks([hooks.LRScheduler()])
    other.load_state_dict(state)
    assert other.iter == 3 and other.scheduler.last_epoch == 3
    assert other.optimizer.param_groups[0]["lr"] == pytest.approx(0.0775)
    assert other.state_dict()["optimizer"]["state"].keys() == state["optimizer"]["state"].keys()


def test_eval_mode_model_is_reported():
    model = _Regressor()
    trainer = SimpleTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.register_hooks([hooks.CallbackHook(before_step=lambda t: t.model.eval())])
    with pytest.raises(RuntimeError, match="eval mode at iteration 0"):
        trainer.train(0, 1)


def test_bad_model_output_is_reported():
    class Model(_Regressor):
        def forward(self, batch):
            return [super().forward(batch)["loss_mse"]]

    model = Model()
    trainer = SimpleTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="dict of scalar loss tensors.*got list"):
        trainer.train(0, 1)


def test_zero_grad_before_forward_trains_the_same():
    def final_weight(zero_grad_before_forward):
        torch.manual_seed(0)
        model = _Regressor()
        trainer = SimpleTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1),
                                zero_grad_before_forward=zero_grad_before_forward)
        trainer.train(0, 3)
        return model.fc.weight.detach()

    assert torch.equal(final_weight(True), final_weight(False))


@pytest.mark.parametrize("precision", [torch.bfloat16, torch.float16])
def test_amp_trainer_trains_on_the_cpu_with_float32_losses_and_parameters(precision):
    torch.manual_seed(0)
    model = _Regressor()
    trainer = AMPTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.05), precision=precision)
    assert trainer.device_type == "cpu"
    trainer.train(0, 20)
    losses = [v for v, _ in trainer.storage.history("total_loss").values()]
    assert len(losses) == 20 and sum(losses[-5:]) < 0.3 * sum(losses[:5])
    assert model.fc.weight.dtype == torch.float32
    # a GradScaler only for float16 (bfloat16 has float32's exponent range)
    assert ("grad_scaler" in trainer.state_dict()) == (precision == torch.float16)


def test_amp_trainer_rejects_float32():
    model = _Regressor()
    with pytest.raises(ValueError, match="SimpleTrainer"):
        AMPTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1), precision=torch.float32)
