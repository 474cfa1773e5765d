"""configs/Shapes-Lazy/*.py: the same models as their YAML twins, and each trains and evaluates
through tools/lazyconfig_train_net.py (ResNet-18, 128 px, 2 iterations on the small test Shapes)."""
import importlib.util
import json
import logging
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from seg_research.config import LazyConfig, get_cfg, instantiate
from seg_research.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "lazyconfig_train_net.py")
NAMES = ["mask_rcnn_R_18_FPN_demo", "semantic_fpn_R_18_demo", "panoptic_fpn_R_18_demo"]
RESULT_KEYS = {
    "mask_rcnn_R_18_FPN_demo": {"bbox": "AP", "segm": "AP"},
    "semantic_fpn_R_18_demo": {"sem_seg": "mIoU"},
    "panoptic_fpn_R_18_demo": {"panoptic_seg": "PQ"},
}
BASE_LR = 0.002
# 128 px instead of 192, batches of 2, 2 iterations, model_final.pth only, evaluation at the end
TINY = [
    "train.max_iter=2", "train.checkpointer.period=100", "train.eval_period=0", "train.log_period=1",
    "dataloader.train.mapper.augmentations.0.short_edge_length=(128,)",
    "dataloader.train.mapper.augmentations.0.max_size=128",
    "dataloader.test.mapper.augmentations.0.short_edge_length=128",
    "dataloader.test.mapper.augmentations.0.max_size=128",
    "dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0",
]


def _lazy(name):
    return os.path.join(REPO, "configs", "Shapes-Lazy", f"{name}.py")


def _yaml_model(name):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", f"{name}.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    return build_model(cfg)


def _settings(model: nn.Module) -> dict:
    """Every number / string / sequence setting of every module and of the plain objects they
    hold (matchers, box coders), e.g. ``proposal_generator.anchor_matcher.thresholds``."""
    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    out = {}
    for name, module in model.named_modules():
        for key, value in vars(module).items():
            if key.startswith("_") or key == "training":
                continue
            if value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)):
                out[f"{name}.{key}"] = plain(value)
            elif not isinstance(value, (nn.Module, torch.Tensor)) and hasattr(value, "__dict__"):
                for sub, sub_value in vars(value).items():
                    if sub_value is None or isinstance(sub_value, (bool, int, float, str, list, tuple)):
                        out[f"{name}.{key}.{sub}"] = plain(sub_value)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_lazy_config_builds_the_yaml_model(name):
    cfg = LazyConfig.load(_lazy(name))
    torch.manual_seed(0)
    lazy = instantiate(cfg.model)
    torch.manual_seed(0)
    yaml_built = _yaml_model(name)
    assert type(lazy) is type(yaml_built)
    lazy_state, yaml_state = lazy.state_dict(), yaml_built.state_dict()
    assert list(lazy_state) == list(yaml_state)
    assert sum(p.numel() for p in lazy.parameters()) == sum(p.numel() for p in yaml_built.parameters())
    # same modules built in the same order: the same initial values from the same seed
    assert all(torch.equal(lazy_state[k], yaml_state[k]) for k in yaml_state)
    lazy_settings, yaml_settings = _settings(lazy), _settings(yaml_built)
    assert len(yaml_settings) > 50
    assert {k: v for k, v in lazy_settings.items() if yaml_settings.get(k) != v} == {}
    assert set(lazy_settings) == set(yaml_settings)


def _load_tool():
    spec = importlib.util.spec_from_file_location("lazyconfig_train_net", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_in_process(tool, argv):
    """tools/lazyconfig_train_net.py's main in this process; the log handlers it adds are removed."""
    loggers = [logging.getLogger(n) for n in ("seg_research", "fvcore")]
    handlers = [list(lg.handlers) for lg in loggers]
    try:
        return tool.main(tool.default_argument_parser().parse_args(argv))
    finally:
        for lg, before in zip(loggers, handlers, strict=True):
            for handler in lg.handlers[len(before):]:
                handler.close()
            lg.handlers[:] = before


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """name -> (output_dir, final evaluation results) of a 2-iteration run of each config."""
    tool = _load_tool()
    runs = {}
    for name in NAMES:
        out = str(tmp_path_factory.mktemp(name))
        results = _run_in_process(tool, ["--config-file", _lazy(name), f"train.output_dir={out}"] + TINY)
        runs[name] = (out, results)
    return tool, runs


def _metrics(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_each_lazy_config_trains_and_evaluates(trained, name):
    _, runs = trained
    out, results = runs[name]
    files = set(os.listdir(out))
    assert {"config.yaml", "log.txt", "metrics.json", "last_checkpoint",
            "model_final.pth"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    for task, metric in RESULT_KEYS[name].items():
        assert 0.0 <= results[task][metric] <= 100.0
    assert json.load(open(os.path.join(out, "inference", "results.json"))).keys() == results.keys()
    lines = {line["iteration"]: line for line in _metrics(out)}
    assert sorted(lines) == [0, 1]
    assert all(math.isfinite(line["total_loss"]) for line in lines.values())
    # warmup (50 of 700 iterations) then cosine over train.max_iter = 2: the multiplier at
    # progress 0 is the warmup start 0.001; at 1/2 it is (1 + cos(pi / 2)) / 2 = 0.5
    assert [lines[i]["lr"] for i in range(2)] == pytest.approx([BASE_LR * 0.001, BASE_LR * 0.5])
    final = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)
    assert final["iteration"] == 1  # the YAML trainer's layout
    assert {"model", "optimizer", "scheduler"} <= set(final)


def test_saved_config_yaml_rebuilds_the_model(trained):
    _, runs = trained
    out, _ = runs["panoptic_fpn_R_18_demo"]
    saved = LazyConfig.load(os.path.join(out, "config.yaml"))
    assert saved.train.output_dir == out and saved.train.max_iter == 2
    model = instantiate(saved.model)
    state = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]
    assert list(model.state_dict()) == list(state)
    assert instantiate(saved.lr_multiplier)(0.0) == pytest.approx(0.001)


@pytest.mark.slow
def test_resume_continues_schedule_and_iteration(trained):
    tool, runs = trained
    out, _ = runs["semantic_fpn_R_18_demo"]
    _run_in_process(tool, ["--config-file", _lazy("semantic_fpn_R_18_demo"), "--resume", f"train.output_dir={out}"]
                    + TINY + ["train.max_iter=3"])
    lines = [line for line in _metrics(out) if line["iteration"] == 2]
    assert len(lines) == 1 and [line["iteration"] for line in _metrics(out)] == [0, 1, 2]  # only iteration 2 ran
    # the schedule now spans 3 iterations; at iteration 2: (1 + cos(2 pi / 3)) / 2 = 0.25
    assert lines[0]["lr"] == pytest.approx(BASE_LR * 0.25)
    assert torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["iteration"] == 2


@pytest.mark.slow
def test_eval_only_cli_reproduces_the_final_evaluation(trained, tmp_path):
    _, runs = trained
    out, results = runs["mask_rcnn_R_18_FPN_demo"]
    eval_dir = str(tmp_path / "eval")
    proc = subprocess.run(
        [sys.executable, TOOL, "--config-file", _lazy("mask_rcnn_R_18_FPN_demo"), "--eval-only",
         f"train.output_dir={eval_dir}", f"train.init_checkpoint={os.path.join(out, 'model_final.pth')}"] + TINY,
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.load(open(os.path.join(eval_dir, "inference", "results.json")))
    for task in ("bbox", "segm"):
        assert again[task]["AP"] == pytest.approx(results[task]["AP"], nan_ok=True)
        assert again[task]["AP50"] == pytest.approx(results[task]["AP50"], nan_ok=True)
