"""The projects' models exported give the PyTorch model's outputs (``DefaultPredictor``, the
reference) on images of several sizes, with the criteria of test_onnx_parity.py (issue 28): ONNX
through tools/deploy/onnx_predict.py in a fresh process that imports neither torch nor
seg_research, TorchScript traced and scripted through TorchScriptPredictor.

Models: each project's Shapes instant-test config with random weights: U-Net (7 classes, and the
single-channel binary head of its PH2 config), FCN-8s, DeepLabV3+; Mask2Former (the Shapes config
at 64 px after 20 iterations: semantic labels, panoptic ids, instances: same classes in the same
order, scores within 1e-3, mask IoU >= 0.98)."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.checkpoint import Checkpointer
from seg_research.engine import DefaultPredictor
from seg_research.export import TorchScriptPredictor, export_model
from seg_research.modeling import build_model
from tests.export.test_onnx_parity import _from_results_json, _images, _mask_iou, _run_onnx_predict, _sample
from tests.export.test_registered_architectures import MODELS, config

pytestmark = pytest.mark.slow

M2F_SHORT_TRAINING = ["SOLVER.MAX_ITER", 20, "SOLVER.IMS_PER_BATCH", 2, "SOLVER.WARMUP_ITERS", 2, "SOLVER.BASE_LR", 0.003,
                      "SOLVER.CHECKPOINT_PERIOD", 1000, "TEST.EVAL_PERIOD", 0, "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", 64,
                      "INPUT.MIN_SIZE_TRAIN", (64,), "INPUT.MAX_SIZE_TRAIN", 64]


def _check(expected, got):
    """``got``: {"instances": (boxes, scores, classes, masks), "sem_seg": labels, "panoptic_seg": ids}."""
    if "sem_seg" in expected:
        labels = expected["sem_seg"].argmax(0).numpy()
        assert (got["sem_seg"] == labels).mean() >= 0.999
    if "panoptic_seg" in expected:
        assert (got["panoptic_seg"] == expected["panoptic_seg"][0].numpy()).mean() >= 0.995
    if "instances" in expected:
        reference = expected["instances"]
        _, scores, classes, masks = got["instances"]
        assert classes.tolist() == reference.pred_classes.tolist()
        np.testing.assert_allclose(scores, reference.scores.numpy(), atol=1e-3, rtol=0)
        ious = [_mask_iou(m, e) for m, e in zip(masks, reference.pred_masks.numpy(), strict=True)]
        assert min(ious, default=1.0) >= 0.98, ious


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_project_models_give_the_pytorch_outputs(name, tmp_path):
    if name == "mask2former":
        # a random Mask2Former gives one class everywhere; 20 iterations (~5 s) give 3 classes, 2 panoptic
        # segments and 32 instances per image
        from seg_research.projects.mask2former.train_net import Trainer

        cfg = config(name, *M2F_SHORT_TRAINING, "OUTPUT_DIR", str(tmp_path / "train"))
        os.makedirs(cfg.OUTPUT_DIR)
        torch.manual_seed(0)
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
        cfg.MODEL.WEIGHTS = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    else:
        cfg = config(name)
        torch.manual_seed(0)
        Checkpointer(build_model(cfg), str(tmp_path)).save("random")
        cfg.MODEL.WEIGHTS = str(tmp_path / "random.pth")
    predictor = DefaultPredictor(cfg)
    images = {key: image for key, image in _images().items() if key in ("val", "wide")}
    image_paths = []
    for key, image in images.items():
        image_paths.append(tmp_path / f"{key}.png")
        Image.fromarray(image[:, :, ::-1]).save(image_paths[-1])
    expected = {key: predictor(image) for key, image in images.items()}
    assert len({expected[key]["sem_seg"].shape[1:] for key in images}) == 2  # two output sizes
    assert all(len(np.unique(expected[key]["sem_seg"].argmax(0).numpy())) > 1 for key in images)
    if name == "mask2former":  # the random model has panoptic segments and instances to compare
        assert all(len(expected[key]["panoptic_seg"][1]) > 0 for key in images)
        assert all(len(expected[key]["instances"]) > 0 for key in images)
    # traced at a size none of the test images has
    sample = _sample(cfg, np.zeros((77, 91, 3), dtype=np.uint8) + 100)
    export_model(cfg, predictor.model, sample, str(tmp_path / "onnx"), "onnx")
    export_model(cfg, predictor.model, sample, str(tmp_path / "tracing"), "torchscript", "tracing")
    export_model(cfg, predictor.model, sample, str(tmp_path / "scripting"), "torchscript", "scripting")

    assert _run_onnx_predict(tmp_path / "onnx", image_paths, tmp_path / "results.json") == []
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    with open(tmp_path / "onnx" / "runtime.json") as f:
        metadata = json.load(f)
    assert metadata["meta_architecture"] == type(predictor.model).__name__
    for entry, key in zip(results, images, strict=True):
        _check(expected[key], _from_results_json(entry, metadata))

    for method in ("tracing", "scripting"):
        exported = TorchScriptPredictor(str(tmp_path / method))
        for key, image in images.items():
            out = exported(image)
            got = {"sem_seg": out["sem_seg"].argmax(0).numpy()}
            if "panoptic_seg" in out:
                got["panoptic_seg"] = out["panoptic_seg"][0].numpy()
            if "instances" in out:
                inst = out["instances"]
                got["instances"] = (None, inst.scores.numpy(), inst.pred_classes.numpy(), inst.pred_masks.numpy())
            _check(expected[key], got)
