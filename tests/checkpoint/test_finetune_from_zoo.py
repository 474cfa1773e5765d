"""Fine-tuning a detectron2 COCO model on PH2 is one command: ``tools/train_net.py`` with
``configs/PH2/mask_rcnn_R_50_FPN_from_coco.yaml``, its checkpoint (a zoo-layout .pkl of generated
weights, 80 classes) served over HTTP on 127.0.0.1, downloaded once into the weights cache."""
import gzip
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

# Subprocess / end-to-end runs: not in `make test-fast`.
pytestmark = pytest.mark.slow

from ..data.test_ph2 import _write_ph2
from .test_download import _Server

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(REPO, "configs", "PH2", "mask_rcnn_R_50_FPN_from_coco.yaml")
ZOO = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"
TINY = ["SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "96",
        "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96", "DATALOADER.NUM_WORKERS", "0",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN", "200", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
        "SOLVER.CHECKPOINT_PERIOD", "100", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"]


def _zoo_checkpoint():
    """A detectron2 model-zoo file for ``ZOO``: its names and shapes, generated values."""
    with gzip.open(os.path.join(REPO, "tests", "model_zoo", "d2_zoo_layouts.json.gz"), "rt") as f:
        layout = json.load(f)[ZOO]["state_dict"]
    rng = np.random.default_rng(0)
    model = {}
    for name, shape in layout.items():
        if name.endswith("running_var"):
            model[name] = np.ones(shape, np.float32)
        elif name.endswith("running_mean"):
            model[name] = np.zeros(shape, np.float32)
        else:
            model[name] = (0.01 * rng.standard_normal(shape)).astype(np.float32)
    return {"model": model, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}


@pytest.fixture
def served(tmp_path):
    server = _Server(tmp_path / "served")
    checkpoint = _zoo_checkpoint()
    path = tmp_path / "served" / "zoo" / "model_final_f10217.pkl"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL)
    yield server, f"{server.base}/zoo/model_final_f10217.pkl", checkpoint["model"]
    server.shutdown()


def _train(tmp_path, url, output, iterations):
    env = dict(os.environ, SEG_DATASETS=str(tmp_path / "datasets"), SEG_RESEARCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", CONFIG, *TINY,
         "MODEL.WEIGHTS", url, "SOLVER.MAX_ITER", str(iterations), "OUTPUT_DIR", str(output)],
        capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return open(output / "log.txt", encoding="utf-8").read()


def test_finetune_coco_model_on_ph2_from_a_url(served, tmp_path):
    server, url, weights = served
    _write_ph2(tmp_path / "datasets")
    log = _train(tmp_path, url, tmp_path / "run1", iterations=2)
    # everything but the 80-class layers: 307 tensors, 6 of them class-dependent
    assert "Loaded 301 of 307 model tensors from the checkpoint; 6 skipped (shape mismatch), 0 missing" in log
    for layer in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.weight",
                  "roi_heads.mask_head.predictor.weight"):
        assert layer in log
    assert server.requests == ["/zoo/model_final_f10217.pkl"]
    final = torch.load(tmp_path / "run1" / "model_final.pth", weights_only=True)["model"]
    # frozen by FREEZE_AT 2 (stem, res2): still exactly the served COCO weights after fine-tuning
    np.testing.assert_array_equal(final["backbone.bottom_up.res2.1.conv2.weight"].numpy(),
                                  weights["backbone.bottom_up.res2.1.conv2.weight"])
    assert final["roi_heads.box_predictor.cls_score.weight"].shape == (4, 1024)
    assert final["roi_heads.mask_head.predictor.weight"].shape[0] == 3
    # a second run reads the cached file: no new request
    _train(tmp_path, url, tmp_path / "run2", iterations=1)
    assert server.requests == ["/zoo/model_final_f10217.pkl"]
