"""Upstream Mask2Former's 57 image configs ship under ``configs/`` with upstream's relative paths; each
merges into ``get_cfg()`` + ``add_deeplab_config`` + ``add_maskformer2_config`` with upstream's values
and builds upstream's model: its parameter count, per top-level part too, and its state_dict's names and
shapes, so that the official checkpoint of each config fills ours exactly as it fills upstream's
(``fixtures/param_counts.json.gz``, made by ``make_param_counts.py`` with upstream's code in the reference
environment).

The models are built on the meta device (shapes only): 57 models, 9 of them Swin-L (215M parameters),
would otherwise allocate ~20 GB one after the other. No dataset is registered or read: building a model
needs only the dataset *names* of ``DATASETS.TRAIN`` (their metadata, which may be empty).
"""
import gzip
import json
import os

import numpy as np
import pytest
import torch
import yaml

from seg_research import model_zoo
from seg_research.checkpoint import Checkpointer
from seg_research.config import get_cfg
from seg_research.modeling import build_model
from seg_research.projects.deeplab import add_deeplab_config
from seg_research.projects.mask2former import add_maskformer2_config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
with gzip.open(os.path.join(HERE, "fixtures", "param_counts.json.gz"), "rt") as _f:
    _FIXTURE = json.load(_f)
UPSTREAM, LAYOUTS = _FIXTURE["configs"], _FIXTURE["layouts"]
#: upstream's image configs (every YAML under its configs/ but youtubevis_*), Base-*.yaml included
FOLDERS = ("coco", "ade20k", "cityscapes", "mapillary-vistas")


def _merged(name):
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(os.path.join(REPO, "configs", name))
    return cfg


def _value(cfg, key):
    node = cfg
    for part in key.split("."):
        assert part in node, f"{key} is not a key of our config"
        node = node[part]
    return list(node) if isinstance(node, (tuple, list)) else node


def test_the_57_image_configs_are_shipped_with_upstreams_paths():
    shipped = sorted(
        os.path.relpath(os.path.join(folder, f), os.path.join(REPO, "configs")).replace(os.sep, "/")
        for top in FOLDERS for folder, _, files in os.walk(os.path.join(REPO, "configs", top))
        for f in files if f.endswith(".yaml"))
    assert shipped == sorted(UPSTREAM) and len(shipped) == 57
    assert len([n for n in shipped if not os.path.basename(n).startswith("Base-")]) == 47
    assert set(shipped) <= set(model_zoo.list_configs())


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_config_merges_with_upstreams_values_and_builds_upstreams_model(name):
    reference = UPSTREAM[name]
    cfg = _merged(name)
    differ = {k: (_value(cfg, k), v) for k, v in reference["config"].items() if _value(cfg, k) != v}
    assert differ == {}

    cfg.MODEL.DEVICE = "meta"
    with torch.device("meta"):
        model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == reference["num_params"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == reference["num_trainable"]
    parts = {n: sum(p.numel() for p in c.parameters()) for n, c in model.named_children()}
    assert {n: c for n, c in parts.items() if c} == {n: c for n, c in reference["children"].items() if c}
    ours = {name: list(value.shape) for name, value in model.state_dict().items()}
    theirs = LAYOUTS[reference["layout"]]
    # upstream's names as our Checkpointer reads them from a checkpoint (detectron2's ResNet names converted)
    checkpoint = {k: np.broadcast_to(np.float32(0), shape) for k, shape in theirs.items()}
    theirs = {k: list(v.shape) for k, v in Checkpointer(model)._convert_foreign_layout(checkpoint, name).items()}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert {k: (s, theirs[k]) for k, s in ours.items() if s != theirs[k]} == {}


def test_measured_counts_of_the_fixture():
    """Figures to recognise (upstream's MODEL_ZOO.md rounds them: R50 44M, Swin-L 216M)."""
    assert UPSTREAM["coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml"]["num_params"] == 43_983_878
    assert UPSTREAM["coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml"]["num_params"] == (
        47_435_264)
    assert UPSTREAM["ade20k/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k_res640.yaml"][
        "num_params"] == 215_488_779


def test_upstreams_eval_tags_are_replaced_by_their_values():
    """Upstream computes the multi-scale MIN_SIZE_TRAIN lists with ``!!python/object/apply:eval``, which
    yaml.safe_load refuses; our copies carry the values (checked against upstream's merged values above)."""
    path = os.path.join(REPO, "configs", "ade20k", "semantic-segmentation", "Base-ADE20K-SemanticSegmentation.yaml")
    with open(path) as f:
        text = f.read()
    assert yaml.safe_load(text)["INPUT"]["MIN_SIZE_TRAIN"] == [int(x * 0.1 * 512) for x in range(5, 21)]
    assert "!!python" not in "".join(line.split("#")[0] for line in text.splitlines())
