import logging
import os
import time

import pytest
import torch
from torch import nn

from seg_research.checkpoint import Checkpointer
from seg_research.engine import hooks
from seg_research.engine.train_loop import HookBase, SimpleTrainer
from seg_research.utils.events import EventWriter, get_event_storage


class _Model(nn.Module):
    def __init__(self, sleep=0.0):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.b = nn.Parameter(torch.zeros(1))
        self.sleep = sleep

    def forward(self, batch):
        time.sleep(self.sleep)
        return {"loss": (self.w * batch).sum().square() + self.b.square().sum()}


def _trainer(hook_list, sleep=0.0, model=None, optimizer=None):
    model = model or _Model(sleep)
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = SimpleTrainer(model, iter(lambda: torch.ones(3), None), optimizer)
    trainer.register_hooks(hook_list)
    return trainer


def test_hook_call_order_and_weak_trainer_reference():
    calls = []

    def record(point):
        return lambda trainer: calls.append((point, trainer.iter))

    hook = hooks.CallbackHook(**{p: record(p) for p in
                                 ("before_train", "before_step", "after_backward", "after_step", "after_train")})
    trainer = _trainer([hook, None])
    trainer.train(0, 2)
    assert calls == [
        ("before_train", 0),
        ("before_step", 0), ("after_backward", 0), ("after_step", 0),
        ("before_step", 1), ("after_backward", 1), ("after_step", 1),
        ("after_train", 2),
    ]
    assert type(hook.trainer).__name__ == "ProxyType"
    with pytest.raises(TypeError, match="HookBase"):
        trainer.register_hooks([object()])


class _Clock:
    """A perf_counter that moves only when told: timings are exact, whatever the machine's load."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_iteration_timer(caplog, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(hooks.time, "perf_counter", clock)
    timer = hooks.IterationTimer()
    model = _Model()
    forward = model.forward

    def slow_forward(batch):  # each step takes 2.5 s of the fake clock; the hooks between steps 0.5 s
        clock.now += 2.5
        return forward(batch)

    model.forward = slow_forward
    pause = hooks.CallbackHook(after_step=lambda t: setattr(clock, "now", clock.now + 0.5))
    trainer = _trainer([timer, pause], model=model)
    with caplog.at_level(logging.INFO, logger="seg_research.engine.hooks"):
        trainer.train(0, 3)
    times = trainer.storage.history("time").values()
    assert times == [(2.5, 0), (2.5, 1), (2.5, 2)]
    assert "Overall training speed: 3 iterations in 0:00:07 (2.5000 s / it)" in caplog.text
    # 9 s in all: 7.5 in steps, 1.5 in the hook that runs after the timer's after_step
    assert "Total training time: 0:00:09 (0:00:01 on hooks)" in caplog.text


class _RecordingWriter(EventWriter):
    def __init__(self):
        self.writes = []
        self.closed = False

    def write(self):
        self.writes.append(get_event_storage().iter)

    def close(self):
        self.closed = True


def test_periodic_writer_period_last_iteration_and_after_train():
    writer = _RecordingWriter()
    _trainer([hooks.PeriodicWriter([writer], period=4)]).train(0, 10)
    assert writer.writes == [3, 7, 9, 10] and writer.closed
    with pytest.raises(TypeError, match="EventWriter"):
        hooks.PeriodicWriter([object()])


def test_periodic_checkpointer_hook_saves_periodically_and_final(tmp_path):
    trainer = _trainer([])
    checkpointer = Checkpointer(trainer.model, str(tmp_path), trainer=trainer)
    trainer.register_hooks([hooks.PeriodicCheckpointer(checkpointer, period=4)])
    trainer.train(0, 10)
    assert sorted(os.listdir(tmp_path)) == [
        "last_checkpoint", "model_0000003.pth", "model_0000007.pth", "model_final.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    for name, iteration in [("model_0000003.pth", 3), ("model_0000007.pth", 7), ("model_final.pth", 9)]:
        data = torch.load(tmp_path / name, weights_only=True)
        assert data["iteration"] == iteration and data["trainer"]["iteration"] == iteration
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert torch.equal(final["model"]["w"], trainer.model.w.detach())
    assert not torch.equal(final["model"]["w"], torch.ones(3))  # it trained


def test_lr_scheduler_hook_records_largest_group_and_checkpoints_scheduler():
    model = _Model()
    unused = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [model.b], "lr": 1.0}, {"params": [model.w, unused], "lr": 0.5}], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    hook = hooks.LRScheduler(optimizer, scheduler)
    trainer = _trainer([hook], model=model, optimizer=optimizer)
    trainer.train(0, 5)
    lrs = trainer.storage.history("lr").values()
    assert [(round(v, 6), it) for v, it in lrs] == [(0.5, 0), (0.5, 1), (0.05, 2), (0.05, 3), (0.005, 4)]
    assert trainer.storage.smoothing_hints()["lr"] is False
    assert hook.state_dict()["last_epoch"] == 5
    assert trainer.state_dict()["hooks"]["LRScheduler"]["last_epoch"] == 5


def _eval_iterations(eval_period, eval_after_train, start_iter=0, max_iter=10):
    evaluated = []

    def evaluate():
        evaluated.append(get_event_storage().iter)
        return {"segm": {"AP": 10.0 * len(evaluated), "AP-a": torch.tensor(1.5)}, "bbox": {}}

    trainer = _trainer([hooks.EvalHook(eval_period, evaluate, eval_after_train)])
    trainer.train(start_iter, max_iter)
    return evaluated, trainer.storage


def test_eval_hook_periods_and_final_evaluation():
    evaluated, storage = _eval_iterations(3, eval_after_train=True)
    assert evaluated == [2, 5, 8, 9]
    assert storage.history("segm/AP").values() == [(10.0, 2), (20.0, 5), (30.0, 8), (40.0, 9)]
    assert storage.latest()["segm/AP-a"] == (1.5, 9)
    assert storage.smoothing_hints()["segm/AP"] is False

    assert _eval_iterations(3, eval_after_train=False)[0] == [2, 5, 8]
    assert _eval_iterations(5, eval_after_train=True)[0] == [4, 9]  # final once, not twice
    assert _eval_iterations(0, eval_after_train=True)[0] == [9]
    # A run resumed at max_iter trains nothing but still evaluates, at iteration max_iter.
    assert _eval_iterations(3, eval_after_train=True, start_iter=10)[0] == [10]


def test_eval_hook_rejects_non_numeric_results():
    trainer = _trainer([hooks.EvalHook(1, lambda: {"segm": {"AP": "n/a"}})])
    with pytest.raises(ValueError, match="'segm/AP' is 'n/a'"):
        trainer.train(0, 1)


def test_stateful_hook_without_loader_is_reported():
    class Counting(HookBase):
        def state_dict(self):
            return {"count": 1}

    trainer = _trainer([Counting()])
    state = trainer.state_dict()
    assert state["hooks"] == {"test_stateful_hook_without_loader_is_reported.<locals>.Counting": {"count": 1}}
    with pytest.raises(NotImplementedError, match="Counting returns a state_dict"):
        trainer.load_state_dict(state)
