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


def test_add_config_loads_a_projects_keys_or_says_what_to_fix():
    tool = _tool()
    add = tool.load_add_config("seg_research.projects.deeplab.add_deeplab_config")
    cfg = get_cfg()
    add(cfg)
    assert "POLY_LR_POWER" in cfg.SOLVER
    with pytest.raises(SystemExit, match="MODULE.FUNCTION"):
        tool.load_add_config("add_unet_config")
    with pytest.raises(SystemExit, match="PYTHONPATH"):
        tool.load_add_config("no_such_project_module.add_config")
    with pytest.raises(SystemExit, match="has no function"):
        tool.load_add_config("seg_research.projects.deeplab.no_such_function")


# project configs: (config under the repository, --add-config functions, folder to import from, overrides)
PROJECT_CONFIGS = {
    "unet": ("projects/UNet/configs/Shapes/unet_instant_test.yaml", ["unet.add_unet_config"], "projects/UNet", []),
    "mask2former": ("configs/Shapes/mask2former_R18_bs4_demo.yaml",
                    ["seg_research.projects.deeplab.add_deeplab_config",
                     "seg_research.projects.mask2former.add_maskformer2_config"], None,
                    ["INPUT.MIN_SIZE_TEST", 64, "INPUT.MAX_SIZE_TEST", 64, "MODEL.SEM_SEG_HEAD.CONVS_DIM", 32,
                     "MODEL.SEM_SEG_HEAD.MASK_DIM", 32, "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", 1,
                     "MODEL.MASK_FORMER.HIDDEN_DIM", 32, "MODEL.MASK_FORMER.DIM_FEEDFORWARD", 64,
                     "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", 8, "MODEL.MASK_FORMER.DEC_LAYERS", 4]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROJECT_CONFIGS))
def test_run_eval_of_project_models_with_add_config(name, tmp_path, monkeypatch):
    """A project's config through --add-config; random weights, scored as the PyTorch model on
    DATASETS.TEST[0] by DefaultTrainer.test (mIoU, PQ within 0.2)."""
    from seg_research.checkpoint import Checkpointer
    from seg_research.modeling import build_model

    tool = _tool()
    config, add_configs, folder, opts = PROJECT_CONFIGS[name]
    if folder:
        monkeypatch.syspath_prepend(os.path.join(REPO, folder))
    cfg = get_cfg()
    for add in add_configs:
        tool.load_add_config(add)(cfg)
    cfg.merge_from_file(os.path.join(REPO, config))
    cfg.merge_from_list([*opts, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path / "reference")])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    Checkpointer(model, str(tmp_path)).save("random")
    expected = DefaultTrainer.test(cfg, model)

    output = tmp_path / "exported"
    flags = [arg for add in add_configs for arg in ("--add-config", add)]
    assert tool.main([*flags, "--config-file", os.path.join(REPO, config), "--output", str(output), "--run-eval",
                      *map(str, opts), "MODEL.WEIGHTS", str(tmp_path / "random.pth")]) == 0
    with open(output / "inference" / cfg.DATASETS.TEST[0] / "results.json") as f:
        results = json.load(f)
    compared = 0
    for task, metrics in METRICS.items():
        for metric in metrics if task in expected else []:
            assert abs(results[task][metric] - expected[task][metric]) <= 0.2, (task, metric)
            compared += 1
    assert compared >= 1
