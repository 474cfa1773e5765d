"""Model EMA (MODEL_EMA, hooks.EMAHook, engine.model_ema.ModelEMA): the closed form, resume, AMP."""
import numpy as np
import torch
from torch import nn

from seg_research.checkpoint import Checkpointer
from seg_research.engine import hooks
from seg_research.engine.model_ema import ModelEMA
from seg_research.engine.train_loop import AMPTrainer, SimpleTrainer


class _Net(nn.Module):
    """A linear layer and a BN (its float buffers are averaged too, num_batches_tracked copied)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, batch):
        x, y = batch
        return {"loss": (self.bn(self.fc(x)) - y).square().mean()}


def _stream(seed=0):
    g = torch.Generator().manual_seed(seed)
    while True:
        x = torch.randn(5, 3, generator=g)
        yield x, torch.stack([x.sum(1), x[:, 0] - x[:, 2]], dim=1)


def _snapshot(model):
    return {k: v.detach().double().clone() for k, v in model.state_dict().items()}


def test_ema_after_k_steps_equals_the_closed_form_of_the_recorded_weights():
    torch.manual_seed(0)
    model, decay, k = _Net(), 0.8, 7
    ema = ModelEMA(decay)
    recorded = []
    trainer = SimpleTrainer(model, _stream(), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    trainer.register_hooks([
        hooks.CallbackHook(before_train=lambda t: recorded.append(_snapshot(model))),  # w_0
        hooks.EMAHook(model, ema),
        hooks.CallbackHook(after_step=lambda t: recorded.append(_snapshot(model))),  # w_1 .. w_k
    ])
    trainer.train(0, k)
    assert len(recorded) == k + 1
    for name, value in ema.state_dict().items():
        if not value.is_floating_point():
            assert value.item() == k  # num_batches_tracked: copied, not averaged
            continue
        # ema_k = d^k w_0 + sum_{i=1..k} (1 - d) d^(k - i) w_i, in float64
        expected = decay ** k * recorded[0][name].numpy()
        for i in range(1, k + 1):
            expected = expected + (1 - decay) * decay ** (k - i) * recorded[i][name].numpy()
        np.testing.assert_allclose(value.double().numpy(), expected, rtol=0, atol=1e-6, err_msg=name)
    # the average is not the raw weights (fc.bias gets no gradient in front of the BN: it stays put)
    assert not np.allclose(ema.state["fc.weight"].double().numpy(), recorded[k]["fc.weight"].numpy(), atol=1e-4)


def _run(model, optimizer, ema, start, stop, data):
    trainer = SimpleTrainer(model, data, optimizer)
    trainer.register_hooks([hooks.EMAHook(model, ema)])
    trainer.train(start, stop)


def test_resume_from_a_checkpoint_continues_the_ema_exactly(tmp_path):
    def fresh():
        torch.manual_seed(0)
        model = _Net()
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), ModelEMA(0.9)

    model, opt, ema = fresh()
    _run(model, opt, ema, 0, 6, _stream())

    model1, opt1, ema1 = fresh()
    data = _stream()
    _run(model1, opt1, ema1, 0, 3, data)
    Checkpointer(model1, str(tmp_path), optimizer=opt1, ema_state=ema1).save("model_0000002", iteration=2)
    model2, opt2, ema2 = fresh()
    Checkpointer(model2, str(tmp_path), optimizer=opt2, ema_state=ema2).resume_or_load("", resume=True)
    _run(model2, opt2, ema2, 3, 6, data)  # the same data stream continues
    for name, value in ema.state_dict().items():
        assert torch.equal(value, ema2.state_dict()[name]), name
    for name, value in model.state_dict().items():
        assert torch.equal(value, model2.state_dict()[name]), name


def test_apply_to_swaps_the_ema_weights_in_and_restores_the_raw_ones():
    torch.manual_seed(0)
    model = _Net()
    ema = ModelEMA(0.5)
    ema.reset(model)
    raw = _snapshot(model)
    with torch.no_grad():
        model.fc.weight.add_(1.0)
    ema.update(model)  # average: raw + 0.5
    with ema.apply_to(model):
        np.testing.assert_allclose(model.fc.weight.detach().double().numpy(), raw["fc.weight"].numpy() + 0.5, atol=1e-6)
    np.testing.assert_allclose(model.fc.weight.detach().double().numpy(), raw["fc.weight"].numpy() + 1.0, atol=1e-6)


def test_ema_under_amp_bf16_and_on_another_device_stays_float32():
    torch.manual_seed(0)
    model = _Net()
    ema = ModelEMA(0.9, device="cpu")
    trainer = AMPTrainer(model, _stream(), torch.optim.SGD(model.parameters(), lr=0.1), precision=torch.bfloat16,
                         device_type="cpu")
    trainer.register_hooks([hooks.EMAHook(model, ema)])
    trainer.train(0, 3)
    assert ema.state["fc.weight"].dtype == torch.float32 and torch.isfinite(ema.state["fc.weight"]).all()
    assert not torch.equal(ema.state["fc.weight"], model.fc.weight.detach())


def test_decay_out_of_range_is_refused():
    import pytest

    with pytest.raises(ValueError, match=r"MODEL_EMA.DECAY must be in \[0, 1\)"):
        ModelEMA(1.0)
