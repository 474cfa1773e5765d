"""DefaultTrainer with MODEL_EMA, SOLVER.GRADIENT_ACCUMULATION_STEPS and SOLVER.BEST_CHECKPOINTER:
evaluation sees the EMA weights, and a run killed and resumed ends exactly as an uninterrupted one."""
import os
import sys

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.engine import DefaultTrainer, hooks
from seg_research.engine.model_ema import unwrap_model
from seg_research.utils.events import get_event_storage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "helpers"))
import tiny_semseg  # noqa: E402, F401  (registers TinySemSegNet, the model of the tiny configs)

#: the metric the fake evaluation reports after each iteration (evaluations every 2: 1, 3, 5, 7, 9)
MIOU = {1: 1.0, 3: 3.0, 5: 2.0, 7: 2.5, 9: 9.0}


class _FakeEvalTrainer(DefaultTrainer):
    """Evaluation returns MIOU[iteration] and records the weights it was given."""

    evaluated = []

    @classmethod
    def test(cls, cfg, model, evaluators=None, **kwargs):
        state = {k: v.detach().clone() for k, v in unwrap_model(model).state_dict().items()}
        cls.evaluated.append((get_event_storage().iter, state))
        return {"sem_seg": {"mIoU": MIOU[get_event_storage().iter]}}


def _cfg(output_dir, **overrides):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml"))
    cfg.merge_from_list(["OUTPUT_DIR", str(output_dir), "SOLVER.MAX_ITER", 10, "SOLVER.CHECKPOINT_PERIOD", 2,
                         "TEST.EVAL_PERIOD", 2, "LOG_PERIOD", 100])
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    os.makedirs(output_dir, exist_ok=True)
    return cfg


def _trainer(cfg, resume=False, fail_at=None):
    torch.manual_seed(0)
    trainer = _FakeEvalTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    if fail_at is not None:
        def fail(t):
            if t.iter == fail_at:
                raise RuntimeError("killed")
        trainer.register_hooks([hooks.CallbackHook(before_step=fail)])
    return trainer


def test_evaluation_uses_the_ema_weights_and_training_continues_on_the_raw_ones(tmp_path):
    cfg = _cfg(tmp_path, **{"MODEL_EMA.ENABLED": True, "MODEL_EMA.DECAY": 0.5, "SOLVER.MAX_ITER": 4})
    _FakeEvalTrainer.evaluated = []
    trainer = _trainer(cfg)
    ema_at_eval = []
    trainer.register_hooks([hooks.CallbackHook(after_step=lambda t: ema_at_eval.append(
        {k: v.clone() for k, v in trainer.model_ema.state.items()}) if (t.iter + 1) % 2 == 0 else None)])
    trainer.train()
    assert [it for it, _ in _FakeEvalTrainer.evaluated] == [1, 3]
    for (_, evaluated), ema in zip(_FakeEvalTrainer.evaluated, ema_at_eval, strict=True):
        for k, v in evaluated.items():
            assert torch.equal(v, ema[k]), k
    raw = trainer.model.state_dict()
    name = "predictor.weight"
    assert not torch.equal(raw[name], trainer.model_ema.state[name])  # the raw weights were restored
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert torch.equal(final["model"][name], raw[name]) and torch.equal(final["ema_state"][name],
                                                                        trainer.model_ema.state[name])
    # --eval-only with USE_EMA_WEIGHTS_FOR_EVAL_ONLY loads the EMA; without it, the raw weights
    for flag, expected in ((True, trainer.model_ema.state[name]), (False, raw[name])):
        eval_cfg = _cfg(tmp_path, **{"MODEL_EMA.ENABLED": True, "MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY": flag,
                                     "MODEL.WEIGHTS": str(tmp_path / "model_final.pth")})
        model = DefaultTrainer.build_model(eval_cfg)
        DefaultTrainer.load_eval_weights(eval_cfg, model)
        assert torch.equal(model.state_dict()[name], expected)


def _final(output_dir, name="model_final.pth"):
    return torch.load(os.path.join(output_dir, name), weights_only=True)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_same(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_killed_and_resumed_run_with_ema_accumulation_and_early_stopping_equals_the_uninterrupted_one(tmp_path):
    overrides = {"MODEL_EMA.ENABLED": True, "MODEL_EMA.DECAY": 0.7, "SOLVER.IMS_PER_BATCH": 4,
                 "SOLVER.GRADIENT_ACCUMULATION_STEPS": 2, "SOLVER.BEST_CHECKPOINTER.ENABLED": True,
                 "SOLVER.BEST_CHECKPOINTER.METRIC": "sem_seg/mIoU", "SOLVER.BEST_CHECKPOINTER.PATIENCE": 2}
    full = _cfg(tmp_path / "full", **overrides)
    assert len(next(iter(DefaultTrainer.build_train_loader(full)))) == 2  # micro-batches of 4 / 2 images
    _FakeEvalTrainer.evaluated = []
    uninterrupted = _trainer(full)
    names = [type(h).__name__ for h in uninterrupted._hooks]
    assert names.index("EMAHook") < names.index("EvalHook") < names.index("BestCheckpointer") < \
        names.index("PeriodicCheckpointer")
    uninterrupted.train()
    # best 3.0 after iteration 3; 2.0 (5) and 2.5 (7) do not improve: patience 2 stops after iteration 7
    assert uninterrupted.stopped_early and uninterrupted.iter == 8
    assert [it for it, _ in _FakeEvalTrainer.evaluated] == [1, 3, 5, 7]
    assert _final(tmp_path / "full", "model_best.pth")["iteration"] == 3

    part = _cfg(tmp_path / "part", **overrides)
    with pytest.raises(RuntimeError, match="killed"):
        _trainer(part, fail_at=6).train()  # dies after model_0000005.pth (and the evaluation at 5)
    assert not os.path.exists(tmp_path / "part" / "model_final.pth")
    resumed = _trainer(part, resume=True)
    assert resumed.start_iter == 6
    resumed.train()
    assert resumed.stopped_early and resumed.iter == 8
    for name in ("model_final.pth", "model_best.pth", "model_0000005.pth"):
        a, b = _final(tmp_path / "full", name), _final(tmp_path / "part", name)
        a.pop("optimizer"), b.pop("optimizer")
        _assert_same(a, b)
    final = _final(tmp_path / "part")
    assert final["iteration"] == 7
    assert final["best_checkpointer"] == {"best_metric": 3.0, "best_iter": 3, "num_bad_evals": 2}
    # resuming a run that stopped early trains no further
    again = _trainer(part, resume=True)
    again.train()
    assert again.stopped_early and again.iter == 8


def test_ims_per_batch_not_divisible_by_the_accumulation_is_refused(tmp_path):
    cfg = _cfg(tmp_path, **{"SOLVER.IMS_PER_BATCH": 4, "SOLVER.GRADIENT_ACCUMULATION_STEPS": 3})
    with pytest.raises(ValueError, match=r"IMS_PER_BATCH \(4\) must be divisible by SOLVER.GRADIENT_ACCUMULATION"):
        DefaultTrainer(cfg)
