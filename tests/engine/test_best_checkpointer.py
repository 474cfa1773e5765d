"""hooks.BestCheckpointer: model_best.pth on a controlled metric sequence, patience, mode, errors."""
import os

import pytest
import torch
from torch import nn

from seg_research.checkpoint import Checkpointer
from seg_research.engine import hooks
from seg_research.engine.train_loop import SimpleTrainer


def _stream():
    g = torch.Generator().manual_seed(0)
    while True:
        x = torch.randn(4, 3, generator=g)
        yield x, x.sum(1, keepdim=True)


class _Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, batch):
        x, y = batch
        return {"loss": (self.fc(x) - y).square().mean()}


def _run(tmp_path, sequence, mode="max", patience=0, eval_period=1, max_iter=None, metric="val/AP"):
    """Train with an evaluation returning sequence[iteration]; returns (trainer, weights after each iteration)."""
    torch.manual_seed(0)
    model = _Reg()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = SimpleTrainer(model, _stream(), optimizer)
    checkpointer = Checkpointer(model, str(tmp_path), optimizer=optimizer)
    best = hooks.BestCheckpointer(eval_period, checkpointer, metric, mode=mode, patience=patience)
    checkpointer.add_checkpointable("best_checkpointer", best)
    weights = {}
    trainer.register_hooks([
        hooks.CallbackHook(after_step=lambda t: weights.__setitem__(t.iter, model.fc.weight.detach().clone())),
        hooks.EvalHook(eval_period, lambda: {"val": {"AP": sequence[trainer.iter]}}),
        best,
        hooks.PeriodicCheckpointer(checkpointer, 100),
    ])
    trainer.train(0, max_iter or len(sequence))
    return trainer, weights


def _load(tmp_path, name):
    return torch.load(os.path.join(tmp_path, name), weights_only=True)


def test_model_best_holds_the_weights_of_the_best_evaluation(tmp_path):
    trainer, weights = _run(tmp_path, [1.0, 3.0, 2.0, 5.0, 4.0, 5.0, 0.5, 2.0])
    best = _load(tmp_path, "model_best.pth")
    assert best["iteration"] == 3 and torch.equal(best["model"]["fc.weight"], weights[3])
    assert best["best_checkpointer"] == {"best_metric": 5.0, "best_iter": 3, "num_bad_evals": 0}
    assert not torch.equal(weights[3], weights[7])
    # model_best is not tagged: --resume continues from the final checkpoint
    assert open(tmp_path / "last_checkpoint").read() == "model_final.pth"
    assert trainer.iter == 8 and not trainer.stopped_early


def test_mode_min_keeps_the_lowest_value_and_ties_do_not_count(tmp_path):
    _, weights = _run(tmp_path, [4.0, 2.0, 2.0, 3.0, 1.5, 1.5], mode="min")
    best = _load(tmp_path, "model_best.pth")
    assert best["iteration"] == 4 and torch.equal(best["model"]["fc.weight"], weights[4])


def test_patience_stops_after_that_many_evaluations_without_improvement(tmp_path):
    # evaluations every 2 iterations (at 1, 3, 5, ...): best 3.0 at iteration 3, then 3 without improvement
    sequence = [None, 1.0, None, 3.0, None, 2.0, None, 3.0, None, 2.5, None, 9.0, None, 9.0]
    trainer, weights = _run(tmp_path, sequence, patience=3, eval_period=2)
    assert trainer.stopped_early and trainer.iter == 10  # iterations 0..9 ran, 10..13 did not
    assert sorted(weights) == list(range(10))
    final = _load(tmp_path, "model_final.pth")
    assert final["iteration"] == 9 and torch.equal(final["model"]["fc.weight"], weights[9])
    assert final["best_checkpointer"] == {"best_metric": 3.0, "best_iter": 3, "num_bad_evals": 3}
    assert _load(tmp_path, "model_best.pth")["iteration"] == 3
    assert open(tmp_path / "last_checkpoint").read() == "model_final.pth"


def test_an_unknown_metric_is_an_error_naming_the_recorded_ones(tmp_path):
    with pytest.raises(KeyError, match=r"'segm/AP' was not computed .* it recorded \['val/AP'\]"):
        _run(tmp_path, [1.0, 2.0], metric="segm/AP")


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="'max' or 'min'"):
        hooks.BestCheckpointer(1, None, "segm/AP", mode="best")
    with pytest.raises(ValueError, match="needs a val_metric"):
        hooks.BestCheckpointer(1, None, "")
