"""seg_research.model_zoo: detectron2's config names, its published checkpoint URLs, and every
shipped zoo config building detectron2 v0.6's exact model (parameter counts and the state_dict
its checkpoints carry, read from ``d2_zoo_layouts.json.gz``, made by ``make_d2_zoo_layouts.py``)."""
import gzip
import json
import logging
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from seg_research import model_zoo
from seg_research.checkpoint.detectron2_layout import convert_detectron2_state_dict, is_detectron2_state_dict
from seg_research.checkpoint.download import cached_path_for_url
from seg_research.modeling import build_model
from seg_research.modeling.roi_heads import Res5ROIHeads, StandardROIHeads

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
with gzip.open(os.path.join(HERE, "d2_zoo_layouts.json.gz"), "rt") as _f:
    D2_LAYOUTS = json.load(_f)


def _meta_model(name):
    """The model of config ``name`` built on the meta device (shapes only, no memory)."""
    cfg = model_zoo.get_config(name + ".yaml")
    cfg.MODEL.DEVICE = "meta"
    with torch.device("meta"):
        return build_model(cfg)


def test_every_detectron2_zoo_config_we_build_is_listed():
    assert sorted(D2_LAYOUTS) == sorted([*model_zoo.MODEL_ZOO_URLS, "Misc/semantic_R_50_FPN_1x"])
    assert len([n for n in D2_LAYOUTS if n.startswith("COCO-InstanceSegmentation/")]) == 10
    shipped = set(model_zoo.list_configs())
    assert {n + ".yaml" for n in D2_LAYOUTS} <= shipped


@pytest.mark.parametrize("name", sorted(D2_LAYOUTS))
def test_config_builds_detectron2s_model_and_loads_its_checkpoint_layout(name):
    reference = D2_LAYOUTS[name]
    model = _meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == reference["num_params"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == reference["num_trainable"]
    if "_C4_" in name:
        assert type(model.roi_heads) is Res5ROIHeads
    elif "InstanceSegmentation" in name:
        assert type(model.roi_heads) is StandardROIHeads
    # a zoo checkpoint of this model, renamed by the converter the Checkpointer uses, fills every tensor
    checkpoint = {k: np.broadcast_to(np.float32(0), shape) for k, shape in reference["state_dict"].items()}
    assert is_detectron2_state_dict(checkpoint.keys())
    converted = {k: tuple(v.shape) for k, v in convert_detectron2_state_dict(checkpoint).items()}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ours) - set(converted)) == []
    assert sorted(set(converted) - set(ours)) == []
    assert {k: s for k, s in ours.items() if converted[k] != s} == {}


def test_measured_counts_of_the_layout_file():
    assert D2_LAYOUTS["COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"]["num_params"] == 44_343_216
    assert D2_LAYOUTS["COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x"]["num_params"] == 35_909_612
    assert D2_LAYOUTS["COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x"]["num_params"] == 107_427_760
    assert D2_LAYOUTS["COCO-PanopticSegmentation/panoptic_fpn_R_101_3x"]["num_params"] == 64_913_894


def test_checkpoint_urls_are_detectron2s():
    assert model_zoo.get_checkpoint_url("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml") == (
        "https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/"
        "137849600/model_final_f10217.pkl")
    assert model_zoo.get_checkpoint_url("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x") == (
        "https://dl.fbaipublicfiles.com/detectron2/COCO-PanopticSegmentation/panoptic_fpn_R_50_3x/"
        "139514569/model_final_c10459.pkl")
    with pytest.raises(RuntimeError, match="No pretrained model is published for 'Misc/semantic_R_50_FPN_1x.yaml'"):
        model_zoo.get_checkpoint_url("Misc/semantic_R_50_FPN_1x.yaml")


def test_config_file_lookup_and_errors():
    path = model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml")
    assert os.path.samefile(path, os.path.join(REPO, "configs", "COCO-InstanceSegmentation", "mask_rcnn_R_50_C4_3x.yaml"))
    assert model_zoo.get_config_file("Misc/semantic_R_50_FPN_1x") == model_zoo.get_config_file(
        "Misc/semantic_R_50_FPN_1x.yaml")
    with pytest.raises(RuntimeError, match="'COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.yaml' is not available.*"
                                           "mask_rcnn_R_50_FPN_3x.yaml"):
        model_zoo.get_config_file("COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.yaml")
    with pytest.raises(RuntimeError, match="must stay inside"):
        model_zoo.get_config_file("../setup.py")


def test_get_config_trained_sets_the_published_weights():
    name = "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml"
    assert model_zoo.get_config(name).MODEL.WEIGHTS == "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
    assert model_zoo.get_config(name, trained=True).MODEL.WEIGHTS == model_zoo.get_checkpoint_url(name)


def test_get_trained_loads_the_cached_zoo_checkpoint(tmp_path, monkeypatch, caplog):
    """``get(trained=True)`` reads the published .pkl from the weights cache (put there by hand
    here, as a user without network would): detectron2 names, numpy arrays, zoo tags."""
    name = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml"
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path))
    cached = cached_path_for_url(model_zoo.get_checkpoint_url(name))
    assert cached.startswith(str(tmp_path)) and cached.endswith("137260431/model_final_a54504.pkl")
    os.makedirs(os.path.dirname(cached))
    rng = np.random.default_rng(0)
    stem = rng.normal(size=(64, 3, 7, 7)).astype(np.float32)
    cls_score = rng.normal(size=(81, 1024)).astype(np.float32)
    with open(cached, "wb") as f:
        pickle.dump({"model": {"backbone.bottom_up.stem.conv1.weight": stem,
                               "roi_heads.box_predictor.cls_score.weight": cls_score},
                     "__author__": "Detectron2 Model Zoo"}, f)
    with caplog.at_level(logging.INFO, logger="seg_research.checkpoint.checkpointer"):
        model = model_zoo.get(name, trained=True)
    assert model.training and next(model.parameters()).device.type == "cpu"
    state = model.state_dict()
    np.testing.assert_array_equal(state["backbone.bottom_up.stem.conv1.weight"].numpy(), stem)
    np.testing.assert_array_equal(state["roi_heads.box_predictor.cls_score.weight"].numpy(), cls_score)
    assert f"Loaded 2 of {len(state)} model tensors" in caplog.text


@pytest.mark.slow
def test_wheel_carries_the_configs(tmp_path):
    """An installed (non-editable) seg_research finds the configs as package data."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", REPO,
                    "-w", str(tmp_path)], check=True, cwd=tmp_path)
    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    for name in D2_LAYOUTS:
        assert f"seg_research/model_zoo/configs/{name}.yaml" in names
    assert "seg_research/model_zoo/configs/Base-RCNN-FPN.yaml" in names
