"""Mixed precision from the config: SOLVER.AMP / MODEL.PRECISION resolution, bf16 training on the
CPU with an exact resume, the GradScaler's checkpointed state, and bf16 inference returning float32.

bf16 is forced (``cpu_supports_bf16`` patched) where the test machine lacks native bf16 kernels:
torch then emulates it, slowly but with the same numerics.
"""
import logging
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
from seg_research.checkpoint import Checkpointer
from seg_research.config import ConfigError, get_cfg
from seg_research.engine import DefaultPredictor, DefaultTrainer, amp
from seg_research.engine.train_loop import AMPTrainer, SimpleTrainer
from seg_research.structures import Boxes, Instances
from seg_research.utils.env import seed_all_rng

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml")
sys.path.insert(0, os.path.join(REPO, "tests", "helpers"))
import tiny_semseg  # noqa: E402, F401  (registers TinySemSegNet, the model of the tiny configs)


@pytest.fixture
def native_bf16(monkeypatch):
    """Let the resolution treat this CPU as one with native bf16 kernels."""
    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: True)


def test_cpu_bf16_detection_agrees_with_the_cpu_flags():
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    if not any(flag.startswith(("avx512", "amx")) for flag in flags):
        assert not amp.cpu_supports_bf16()  # AVX2-only CPUs emulate bf16
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert amp.cpu_supports_bf16()


@pytest.mark.parametrize("device, precision, native, expected", [
    ("cpu", "auto", True, torch.bfloat16), ("cpu", "bf16", True, torch.bfloat16),
    ("cpu", "fp16", True, torch.bfloat16), ("cpu", "fp32", True, None),
    ("cpu", "auto", False, None), ("cpu", "bf16", False, None),
    ("cuda", "auto", True, torch.float16), ("cuda:1", "fp16", True, torch.float16), ("cuda", "fp32", True, None),
])
def test_autocast_dtype_per_device_and_precision(monkeypatch, caplog, device, precision, native, expected):
    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: native)
    with caplog.at_level(logging.WARNING, logger="seg_research.engine.amp"):
        assert amp.autocast_dtype(device, precision, "SOLVER.AMP.PRECISION") == expected
    fell_back = device == "cpu" and precision != "fp32" and not native
    assert ("no native bfloat16" in caplog.text and "SOLVER.AMP.PRECISION" in caplog.text) == fell_back


def test_cuda_bf16_on_a_gpu_without_it_uses_fp16(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert amp.autocast_dtype("cuda", "bf16", "MODEL.PRECISION") == torch.float16
    assert "Ampere" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert amp.autocast_dtype("cuda", "bf16", "MODEL.PRECISION") == torch.bfloat16


def test_unknown_precision_names_the_key():
    with pytest.raises(ConfigError, match="MODEL.PRECISION is 'half'"):
        amp.autocast_dtype("cpu", "half", "MODEL.PRECISION")


def test_outputs_to_float32_converts_reduced_precision_tensors_only():
    instances = Instances((4, 5), pred_boxes=Boxes(torch.tensor([[0.5, 1.0, 3.0, 4.0]], dtype=torch.bfloat16)),
                          scores=torch.tensor([0.75], dtype=torch.bfloat16), pred_classes=torch.tensor([2]),
                          pred_masks=torch.ones(1, 4, 5, dtype=torch.bool))
    outputs = [{"instances": instances, "sem_seg": torch.zeros(3, 4, 5, dtype=torch.float16),
                "panoptic_seg": (torch.ones(4, 5, dtype=torch.int32), [{"id": 1, "score": 0.5}])}]
    converted = amp.outputs_to_float32(outputs)[0]
    assert converted["instances"].pred_boxes.tensor.dtype == torch.float32
    assert converted["instances"].pred_boxes.tensor.tolist() == [[0.5, 1.0, 3.0, 4.0]]
    assert converted["instances"].scores.dtype == torch.float32 and float(converted["instances"].scores) == 0.75
    assert converted["instances"].pred_classes.dtype == torch.int64
    assert converted["instances"].pred_masks.dtype == torch.bool
    assert converted["sem_seg"].dtype == torch.float32
    assert converted["panoptic_seg"][0].dtype == torch.int32 and converted["panoptic_seg"][1] == [{"id": 1, "score": 0.5}]


def _cfg(output_dir, *opts):
    os.makedirs(output_dir, exist_ok=True)
    cfg = get_cfg()
    cfg.merge_from_file(TINY)
    cfg.merge_from_list(["OUTPUT_DIR", str(output_dir), "DATASETS.TEST", "()", "SOLVER.AMP.ENABLED", "True", *opts])
    return cfg


def test_amp_on_a_cpu_without_native_bf16_trains_in_float32(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: False)
    logger = logging.getLogger("seg_research")  # set up by DefaultTrainer, which may stop propagation
    logger.addHandler(caplog.handler)
    try:
        trainer = DefaultTrainer(_cfg(tmp_path))
    finally:
        logger.removeHandler(caplog.handler)
    assert type(trainer._trainer) is SimpleTrainer and "runs in float32" in caplog.text


def _train(cfg, stop_after=None):
    seed_all_rng(cfg.SEED)  # as default_setup does
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=True)
    if stop_after is not None:  # a run that ends early, as if killed after this iteration's checkpoint
        trainer.max_iter = stop_after
    trainer.train()
    return trainer


def test_bf16_training_on_the_cpu_resumes_bit_identically(native_bf16, tmp_path):
    full = _train(_cfg(tmp_path / "full"))
    assert isinstance(full._trainer, AMPTrainer) and full._trainer.precision == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in full.model.parameters())
    saved = torch.load(tmp_path / "full" / "model_final.pth", weights_only=True)
    assert all(v.dtype in (torch.float32, torch.int64) for v in saved["model"].values())
    losses = [m for m in full.storage.history("total_loss").values()]
    assert len(losses) == 6 and all(np.isfinite(v) for v, _ in losses)

    _train(_cfg(tmp_path / "part"), stop_after=3)
    resumed = _train(_cfg(tmp_path / "part"))
    assert resumed.start_iter == 3
    ours = torch.load(tmp_path / "part" / "model_final.pth", weights_only=True)
    assert saved["model"].keys() == ours["model"].keys()
    for key in saved["model"]:
        assert torch.equal(saved["model"][key], ours["model"][key]), key
    state, resumed_state = saved["optimizer"]["state"], ours["optimizer"]["state"]
    assert all(torch.equal(state[k]["exp_avg"], resumed_state[k]["exp_avg"]) for k in state)


def test_fp16_grad_scaler_state_is_checkpointed_and_restored(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(4, 3, generator=g)
            yield x, x.sum(dim=1, keepdim=True)

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = model

        def forward(self, batch):
            return {"loss": (self.fc(batch[0]) - batch[1]).square().mean()}

    regressor = Regressor()
    trainer = AMPTrainer(regressor, batches(), torch.optim.SGD(regressor.parameters(), lr=0.01),
                         precision=torch.float16, grad_scaler=torch.amp.GradScaler("cpu", init_scale=2.0 ** 20,
                                                                                   growth_interval=2))
    trainer.train(0, 5)
    state = trainer.grad_scaler.state_dict()
    Checkpointer(regressor, str(tmp_path), grad_scaler=trainer.grad_scaler).save("model_0000004", iteration=4)
    restored = torch.amp.GradScaler("cpu")
    Checkpointer(Regressor(), str(tmp_path), grad_scaler=restored).resume_or_load("", resume=True)
    assert restored.state_dict() == state and state["scale"] not in (2.0 ** 20, 2.0 ** 16)


def test_bf16_predictor_returns_float32_outputs_close_to_fp32(native_bf16, tmp_path):
    cfg = _cfg(tmp_path, "MODEL.PRECISION", "fp32")
    trainer = _train(cfg.clone())  # a few steps, so that the predictions are not uniform
    cfg.MODEL.WEIGHTS = str(tmp_path / "model_final.pth")
    image = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)
    expected = DefaultPredictor(cfg)(image)["sem_seg"]
    cfg.MODEL.PRECISION = "bf16"
    predictor = DefaultPredictor(cfg)
    assert predictor.precision == torch.bfloat16
    out = predictor(image)["sem_seg"]
    assert out.dtype == torch.float32 and out.shape == expected.shape == (7, 48, 80)
    assert float((out - expected).norm() / expected.norm()) < 3e-2
    assert (out.argmax(0) == expected.argmax(0)).float().mean() > 0.95
    assert trainer.model.training  # untouched by the predictors
