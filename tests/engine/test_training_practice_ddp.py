"""MODEL_EMA, SOLVER.GRADIENT_ACCUMULATION_STEPS and SOLVER.BEST_CHECKPOINTER under DDP (2 gloo processes)."""
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow  # subprocess runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_NET = os.path.join(REPO, "tests", "helpers", "train_net.py")
CONFIG = os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml")
# 4 images per step in 2 micro-batches: 1 process x 2 images with BN, or 2 processes x 1 image with
# SyncBN, whose statistics cover the same 2 images.
OPTS = ["SOLVER.IMS_PER_BATCH", "4", "SOLVER.GRADIENT_ACCUMULATION_STEPS", "2", "MODEL_EMA.ENABLED", "True",
        "MODEL_EMA.DECAY", "0.6", "SOLVER.BEST_CHECKPOINTER.ENABLED", "True", "SOLVER.BEST_CHECKPOINTER.METRIC",
        "sem_seg/mIoU", "SOLVER.BEST_CHECKPOINTER.PATIENCE", "5"]


def _train(out, norm, *extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID")}
    proc = subprocess.run([sys.executable, TRAIN_NET, "--config-file", CONFIG, *extra, "OUTPUT_DIR", out,
                           "MODEL.SEM_SEG_HEAD.NORM", norm, *OPTS], capture_output=True, text=True, cwd=REPO,
                          timeout=400, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {name: torch.load(os.path.join(out, name), weights_only=True) for name in ("model_final.pth",
                                                                                      "model_best.pth")}


def test_two_processes_with_accumulation_ema_and_best_checkpoint_match_one_process(tmp_path):
    single = _train(str(tmp_path / "single"), "BN")
    double = _train(str(tmp_path / "double"), "SyncBN", "--num-gpus", "2")
    for name in ("model_final.pth", "model_best.pth"):
        assert single[name]["iteration"] == double[name]["iteration"]
        assert single[name]["best_checkpointer"] == double[name]["best_checkpointer"]
        for part in ("model", "ema_state"):
            assert single[name][part].keys() == double[name][part].keys()
            for key, value in single[name][part].items():
                torch.testing.assert_close(value, double[name][part][key], rtol=1e-5, atol=1e-6)
    ema, raw = double["model_final.pth"]["ema_state"], double["model_final.pth"]["model"]
    assert not torch.equal(ema["predictor.weight"], raw["predictor.weight"])
    assert not any(k.startswith("module.") for k in ema)  # the average of the unwrapped module
