"""detectron2's defaults and config files mean the same here.

``fixtures/d2_configs.json.gz`` was written by detectron2 v0.6 itself (``make_d2_config_fixtures.py``
under ``../shared/anchors``): its ``get_cfg()``, and for each of its 92 model-zoo YAML files the keys
and values the file sets, the config it gives merged into ``get_cfg()`` and the parameter count of
the model detectron2 builds from it. The files themselves are rebuilt here from those keys and values
(``_BASE_`` chains included) and go through ``tools/check_detectron2_configs.py``, which is also
what checks a real detectron2 checkout.
"""
import gzip
import importlib.util
import os

import pytest
import torch
import yaml

from seg_research.config import ConfigError, get_cfg
from seg_research.config.unsupported import UnsupportedConfigError
from seg_research.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with gzip.open(os.path.join(os.path.dirname(__file__), "fixtures", "d2_configs.json.gz"), "rt") as _f:
    import json

    D2 = json.load(_f)


def _tool():
    spec = importlib.util.spec_from_file_location("_check_d2_configs",
                                                  os.path.join(REPO, "tools", "check_detectron2_configs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()


def _decode(value):
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(_decode(v) for v in value["tuple"])
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def test_get_cfg_is_detectron2s_key_for_key_and_value_for_value():
    ours = TOOL.flatten_cfg(get_cfg())
    expected = D2["get_cfg"]
    assert len(expected) == 183
    missing = sorted(set(expected) - set(ours))
    assert not missing, f"detectron2 keys missing here: {missing}"
    differing = {k: (ours[k], v) for k, v in expected.items() if ours[k] != v and k != "MODEL.DEVICE"}
    assert not differing  # value and type (tuple vs list) alike
    assert get_cfg().MODEL.DEVICE == ("cuda" if torch.cuda.is_available() else "cpu")


def test_our_additions_leave_detectron2_behaviour_unchanged():
    """Every key of ours that detectron2 lacks, at its default, is a no-op or detectron2's behaviour."""
    extra = {k: v for k, v in TOOL.flatten_cfg(get_cfg()).items() if k not in D2["get_cfg"]}
    assert extra == {
        "MODEL.PRECISION": "fp32", "MODEL.DDP.FIND_UNUSED_PARAMETERS": False,
        "MODEL.COMPILE.ENABLED": False, "MODEL.COMPILE.PARTS": ["backbone"], "MODEL.COMPILE.MODE": "default",
        "MODEL.ANCHOR_GENERATOR.ROUND_CELLS": False,
        "MODEL.SEM_SEG_HEAD.LOSS_TYPES": {"tuple": ["cross_entropy"]}, "MODEL.SEM_SEG_HEAD.LOSS_WEIGHTS": {"tuple": [1.0]},
        "MODEL.SEM_SEG_HEAD.FOCAL_GAMMA": 2.0, "MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES": [],
        "MODEL.SEM_SEG_HEAD.AUX_LOSS_WEIGHT": 0.4, "MODEL.RESNETS.RES4_DILATION": 1,
        "MODEL.RESNETS.DILATION_CONVENTION": "detectron2",
        "INPUT.BRIGHTNESS": {"tuple": [1.0, 1.0]}, "INPUT.CONTRAST": {"tuple": [1.0, 1.0]},
        "DATALOADER.ON_BAD_SAMPLE": "error", "SOLVER.BASE_LR_END": 0.0, "SOLVER.AMP.PRECISION": "auto",
        "SOLVER.OPTIMIZER": "SGD", "SOLVER.BETAS": {"tuple": [0.9, 0.999]}, "SOLVER.SKIP_NONFINITE_STEPS": False,
        "TEST.SAVE_PREDICTIONS": True, "TEST.PANOPTIC_USE_FAST_IMPL": True, "TEST.PANOPTIC_NUM_WORKERS": 0,
        "LOG_PERIOD": 20, "SOLVER.GRADIENT_ACCUMULATION_STEPS": 1, "SOLVER.BEST_CHECKPOINTER.ENABLED": False,
        "SOLVER.BEST_CHECKPOINTER.METRIC": "", "SOLVER.BEST_CHECKPOINTER.MODE": "max",
        "SOLVER.BEST_CHECKPOINTER.PATIENCE": 0, "MODEL_EMA.ENABLED": False, "MODEL_EMA.DECAY": 0.999,
        "MODEL_EMA.DEVICE": "", "MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY": False,
    }


def _flat_content(node, prefix=""):
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and set(value) != {"tuple"}:
            out.update(_flat_content(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


#: our configs/ files that are detectron2's (same relative path); every other file of configs/ is ours.
COPIES = sorted(rel for rel in D2["files"] if os.path.exists(os.path.join(REPO, "configs", rel)))


def test_configs_copies_hold_exactly_detectron2s_keys_and_values():
    assert len(COPIES) == 19
    for rel in COPIES:
        with open(os.path.join(REPO, "configs", rel)) as f:
            ours = _flat_content(yaml.safe_load(f))
        assert ours == _flat_content(D2["files"][rel]["content"]), rel


#: detectron2's one Python-tagged value (Base-RetinaNet.yaml): three anchor sizes per octave.
RETINANET_SIZES = "[[x, x * 2**(1.0/3), x * 2**(2.0/3) ] for x in [32, 64, 128, 256, 512 ]]"


def _write_d2_tree(root):
    for rel, entry in D2["files"].items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content = _decode(entry["content"])
        text = yaml.safe_dump(content, sort_keys=False)
        if entry["python_tag"]:  # put the tag back where detectron2 has it
            assert content["MODEL"]["ANCHOR_GENERATOR"]["SIZES"] == eval(RETINANET_SIZES)
            content["MODEL"]["ANCHOR_GENERATOR"]["SIZES"] = "TAGGED"
            text = yaml.safe_dump(content, sort_keys=False).replace(
                "SIZES: TAGGED", f"SIZES: !!python/object/apply:eval ['{RETINANET_SIZES}']")
            assert "!!python" in text
        path.write_text(text)


def test_every_detectron2_config_merges_builds_or_is_refused_by_name(tmp_path):
    """All 92: merged values equal detectron2's; segmentation/detection models have its parameter
    counts; RetinaNet, keypoint, cascade, deformable, precomputed-proposal ones are refused by key."""
    _write_d2_tree(tmp_path)
    results = TOOL.check_folder(str(tmp_path), D2["files"])
    assert len(results) == 92
    failed = {rel: r["detail"] for rel, r in results.items() if r["status"] == "FAIL"}
    assert not failed
    unsupported = {rel: r["detail"].split(" = ")[0] for rel, r in results.items() if r["status"] == "unsupported"}
    assert sorted(set(unsupported.values())) == [
        "MODEL.KEYPOINT_ON", "MODEL.LOAD_PROPOSALS", "MODEL.META_ARCHITECTURE", "MODEL.RESNETS.DEFORM_ON_PER_STAGE",
        "MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES", "MODEL.ROI_HEADS.NAME"]
    assert all(("retinanet" in rel.lower()) == (key == "MODEL.META_ARCHITECTURE") for rel, key in unsupported.items())
    assert all("keypoint" in rel.lower() for rel, key in unsupported.items() if key == "MODEL.KEYPOINT_ON")
    built = {rel: r["num_params"] for rel, r in results.items() if r["status"] == "ok"}
    assert len(built) == 92 - len(unsupported)
    assert built["COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml"] == 44_343_216  # detectron2's, by hand


def test_python_tagged_yaml_is_refused_naming_file_tag_and_opt_in(tmp_path):
    (tmp_path / "Base-RetinaNet.yaml").write_text(
        "MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: !!python/object/apply:eval "
        "[\"[[x, x * 2**(1.0/3), x * 2**(2.0/3)] for x in [32, 64, 128, 256, 512]]\"]\n")
    (tmp_path / "child.yaml").write_text('_BASE_: "Base-RetinaNet.yaml"\nMODEL:\n  MASK_ON: True\n')
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_file(str(tmp_path / "child.yaml"))
    message = str(e.value)
    assert str(tmp_path / "Base-RetinaNet.yaml") in message and "line 3" in message
    assert "!!python/object/apply:eval" in message and "allow_unsafe=True" in message
    cfg = get_cfg()
    cfg.merge_from_file(str(tmp_path / "child.yaml"), allow_unsafe=True)
    assert cfg.MODEL.MASK_ON
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES[2] == pytest.approx([128, 128 * 2 ** (1 / 3), 128 * 2 ** (2 / 3)])


@pytest.mark.parametrize("key,value", [
    ("MODEL.KEYPOINT_ON", True), ("MODEL.META_ARCHITECTURE", "RetinaNet"),
    ("MODEL.ROI_HEADS.NAME", "CascadeROIHeads"), ("MODEL.RESNETS.DEFORM_ON_PER_STAGE", [False, False, True, True]),
    ("MODEL.LOAD_PROPOSALS", True), ("MODEL.ANCHOR_GENERATOR.NAME", "RotatedAnchorGenerator"),
])
def test_turning_on_an_unsupported_feature_names_the_key(key, value):
    cfg = get_cfg()
    cfg.merge_from_list([key, value])
    with pytest.raises(UnsupportedConfigError, match=key.replace(".", r"\.") + ".*not support"):
        build_model(cfg)


def test_default_config_builds_detectron2s_c4_model():
    """get_cfg() alone is detectron2's default model: a ResNet-50 C4 Faster R-CNN (Res5ROIHeads)."""
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "meta"
    with torch.device("meta"):
        model = build_model(cfg)
    assert type(model.roi_heads).__name__ == "Res5ROIHeads"
    assert sum(p.numel() for p in model.parameters()) == D2["files"]["Base-RCNN-C4.yaml"]["num_params"]
