"""Every shipped config merges into the defaults and builds its model (shapes only, no training)."""
import glob
import os

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
    if not os.path.basename(p).startswith("Base-")
)


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, REPO) for p in CONFIGS])
def test_config_builds_its_model(path):
    cfg = get_cfg()
    cfg.merge_from_file(path)
    assert isinstance(cfg.DATASETS.TRAIN, tuple) and isinstance(cfg.DATASETS.TEST, tuple)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
