"""tools/export_model.py: detectron2's flags, and --run-eval scores the exported model on DATASETS.TEST[0]
within 0.2 of the PyTorch model's scores (the reference: DefaultTrainer.test on the same weights)."""
import importlib.util
import json
import os

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.engine import DefaultTrainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location("_tool_export_model", os.path.join(REPO, "tools", "export_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_format_and_method_flags():
    tool = _tool()
    assert tool.resolve_format(None, None) == ("onnx", "onnx")
    assert tool.resolve_format("torchscript", None) == ("torchscript", "tracing")
    assert tool.resolve_format(None, "tracing") == ("torchscript", "tracing")
    assert tool.resolve_format(None, "scripting") == ("torchscript", "scripting")
    assert tool.resolve_format("onnx", "onnx") == ("onnx", "onnx")
    with pytest.raises(SystemExit, match="conflicts"):
        tool.resolve_format("onnx", "scripting")


# key of each task's headline metric in the results
METRICS = {"bbox": ["AP"], "segm": ["AP"], "sem_seg": ["mIoU"], "panoptic_seg": ["PQ"]}


@pytest.mark.slow
@pytest.mark.parametrize("config", ["mask_rcnn_R_18_FPN_instant_test", "semantic_fpn_R_18_instant_test",
                                    "panoptic_fpn_R_18_instant_test"])
def test_run_eval_scores_the_exported_model_as_the_pytorch_one(config, tmp_path):
    config_file = os.path.join(REPO, "configs", "Shapes", f"{config}.yaml")
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path / "train"), "TEST.EVAL_PERIOD", 0])
    os.makedirs(cfg.OUTPUT_DIR)
    torch.manual_seed(0)
    trainer = DefaultTrainer(cfg)  # the config's short schedule
    trainer.resume_or_load(resume=False)
    trainer.train()
    weights = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    expected = DefaultTrainer.test(cfg, trainer.model)

    output = tmp_path / "exported"
    assert _tool().main(["--config-file", config_file, "--format", "onnx", "--output", str(output), "--run-eval",
                         "MODEL.WEIGHTS", weights]) == 0
    assert (output / "model.onnx").is_file()
    dataset = cfg.DATASETS.TEST[0]
    with open(output / "inference" / dataset / "results.json") as f:
        results = json.load(f)
    compared = 0
    for task, metrics in METRICS.items():
        for metric in metrics if task in expected else []:
            assert abs(results[task][metric] - expected[task][metric]) <= 0.2, (task, metric)
            compared += 1
    assert compared >= 1
