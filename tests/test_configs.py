"""Every shipped config merges into the defaults and builds its model (shapes only, no training).

Mask2Former's configs need the project's keys (``add_deeplab_config``, ``add_maskformer2_config``);
upstream's 47 (the folders of ``model_zoo.PROJECT_CONFIGS``) are built on the meta device, with
upstream's parameter counts, by tests/projects/mask2former/test_configs.py, so here they only merge.
"""
import glob
import importlib
import os

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.model_zoo import PROJECT_CONFIGS
from seg_research.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
    if not os.path.basename(p).startswith("Base-")
)
MASK2FORMER_FNS = PROJECT_CONFIGS["coco"]


def _folder(path):
    return os.path.relpath(path, os.path.join(REPO, "configs")).split(os.sep)[0]


def _cfg(path):
    cfg = get_cfg()
    if _folder(path) in PROJECT_CONFIGS or os.path.basename(path).startswith("mask2former"):
        for module, fn in MASK2FORMER_FNS:
            getattr(importlib.import_module(module), fn)(cfg)
    cfg.merge_from_file(path)
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, REPO) for p in CONFIGS])
def test_config_builds_its_model(path):
    cfg = _cfg(path)
    assert isinstance(cfg.DATASETS.TRAIN, tuple) and isinstance(cfg.DATASETS.TEST, tuple)
    if _folder(path) in PROJECT_CONFIGS:
        return  # built with parameter counts in tests/projects/mask2former/test_configs.py
    torch.manual_seed(0)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
