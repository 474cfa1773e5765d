"""MSRA/FAIR Caffe2 ImageNet backbones (detectron2's ``ImageNetPretrained/MSRA/R-50.pkl``,
``R-101.pkl``, ``FAIR/X-101-32x8d.pkl``): generated here blob by blob in Caffe2's naming from the
ResNet recipe, they load completely into the zoo configs' ResNets."""
import logging
import os
import pickle
import re

import numpy as np
import pytest
import torch
import torchvision

from seg_research import model_zoo
from seg_research.checkpoint.checkpointer import FOREIGN_LAYOUTS
from seg_research.checkpoint.download import cached_path_for_url, weights_url
from seg_research.modeling import build_model

# name -> (blocks per stage res2..res5, groups, bottleneck width of res2)
RECIPES = {"R-50": ([3, 4, 6, 3], 1, 64), "R-101": ([3, 4, 23, 3], 1, 64), "X-101-32x8d": ([3, 4, 23, 3], 32, 256)}


def caffe2_resnet_shapes(name):
    """Blob name -> shape of a Caffe2 ImageNet ResNet/ResNeXt, with its classifier and momenta."""
    blocks, groups, width = RECIPES[name]
    shapes = {"conv1_w": (64, 3, 7, 7), "res_conv1_bn_s": (64,), "res_conv1_bn_b": (64,),
              "fc1000_w": (1000, 2048), "fc1000_b": (1000,)}
    in_channels, out_channels = 64, 256
    for stage, count in enumerate(blocks, start=2):
        for block in range(count):
            prefix = f"res{stage}_{block}_"
            if block == 0:
                shapes[prefix + "branch1_w"] = (out_channels, in_channels, 1, 1)
            shapes[prefix + "branch2a_w"] = (width, in_channels if block == 0 else out_channels, 1, 1)
            shapes[prefix + "branch2b_w"] = (width, width // groups, 3, 3)
            shapes[prefix + "branch2c_w"] = (out_channels, width, 1, 1)
            for branch, channels in [("branch1", out_channels), ("branch2a", width), ("branch2b", width),
                                     ("branch2c", out_channels)]:
                if branch != "branch1" or block == 0:
                    shapes[prefix + branch + "_bn_s"] = shapes[prefix + branch + "_bn_b"] = (channels,)
        in_channels, out_channels, width = out_channels, out_channels * 2, width * 2
    shapes.update({k + "_momentum": s for k, s in list(shapes.items()) if k.endswith("_w")})
    return shapes


def _meta_model(config):
    cfg = model_zoo.get_config(config)
    cfg.MODEL.DEVICE = "meta"
    with torch.device("meta"):
        return build_model(cfg)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
@pytest.mark.parametrize("name,config", [
    ("R-101", "COCO-InstanceSegmentation/mask_rcnn_R_101_C4_3x.yaml"),
    ("X-101-32x8d", "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml"),
    ("R-50", "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_1x.yaml"),
    ("R-50", "COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.yaml"),
])
def test_caffe2_blobs_fill_the_configs_resnet(name, config):
    """Every ResNet tensor of the model (C4: also ``roi_heads.res5``) and nothing else."""
    assert model_zoo.get_config(config).MODEL.WEIGHTS.endswith(f"/{name}.pkl")
    model = _meta_model(config)
    blobs = {k: np.broadcast_to(np.float32(0), s) for k, s in caffe2_resnet_shapes(name).items()}
    (layout,) = [layout for layout in FOREIGN_LAYOUTS if layout.matches(blobs.keys())]
    assert layout.name == "Caffe2 ImageNet ResNet"
    converted = {k: tuple(v.shape) for k, v in layout.convert(blobs, model).items()}
    resnet = re.compile(r"^backbone\.(bottom_up\.)?(stem|res[2-5])\.|^roi_heads\.res5\.")
    assert converted == {k: tuple(v.shape) for k, v in model.state_dict().items() if resnet.match(k)}


@pytest.mark.slow
def test_msra_r50_loads_completely_through_model_weights(tmp_path, monkeypatch, caplog):
    """``model_zoo.get`` of an FPN config reads ``detectron2://ImageNetPretrained/MSRA/R-50.pkl``
    from the weights cache: every ResNet tensor comes from the blobs, norms compute ``s * x + b``."""
    config = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml"
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path))
    cached = cached_path_for_url(weights_url(model_zoo.get_config(config).MODEL.WEIGHTS))
    os.makedirs(os.path.dirname(cached))
    rng = np.random.default_rng(0)
    blobs = {k: rng.normal(size=s).astype(np.float32) for k, s in caffe2_resnet_shapes("R-50").items()}
    with open(cached, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    with caplog.at_level(logging.INFO, logger="seg_research.checkpoint.checkpointer"):
        model = model_zoo.get(config)
    state = model.state_dict()
    resnet_keys = [k for k in state if k.startswith("backbone.bottom_up.")]
    assert len(resnet_keys) == 265
    assert f"Loaded {len(resnet_keys)} of {len(state)} model tensors" in caplog.text
    assert "Caffe2 ImageNet ResNet" in caplog.text
    np.testing.assert_array_equal(state["backbone.bottom_up.stem.conv1.weight"].numpy(), blobs["conv1_w"])
    np.testing.assert_array_equal(state["backbone.bottom_up.res4.5.conv3.weight"].numpy(), blobs["res4_5_branch2c_w"])
    np.testing.assert_array_equal(state["backbone.bottom_up.res3.0.downsample.0.weight"].numpy(),
                                  blobs["res3_0_branch1_w"])
    norm = model.backbone.bottom_up.res5[0].downsample[1]
    x = torch.randn(2, 2048, 3, 3)
    s, b = (torch.from_numpy(blobs[f"res5_0_branch1_bn_{k}"]) for k in "sb")
    torch.testing.assert_close(norm(x), s[:, None, None] * x + b[:, None, None], rtol=1e-5, atol=1e-5)


def test_torchvision_resnet_fills_c4s_backbone_and_res5_head():
    """torchvision's ImageNet ResNet-50 layout: ``layer4`` goes to C4's ``roi_heads.res5``."""
    model = _meta_model("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml")
    with torch.device("meta"):
        classifier = torchvision.models.resnet50()
    (layout,) = [layout for layout in FOREIGN_LAYOUTS if layout.matches(classifier.state_dict().keys())]
    converted = {k: tuple(v.shape) for k, v in layout.convert(classifier.state_dict(), model).items()}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()
            if re.match(r"^backbone\.(stem|res[2-4])\.|^roi_heads\.res5\.", k)}
    assert converted == ours  # the classifier (fc) is dropped
