"""ResNet / FPN backbones, norms, freezing and the BACKBONE registry."""
from typing import Dict

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.ops.misc import FrozenBatchNorm2d

from seg_research.config import ConfigError, get_cfg
from seg_research.layers import ShapeSpec, convert_frozen_batchnorm, get_norm
from seg_research.layers.batch_norm import SyncBatchNorm2d
from seg_research.modeling import BACKBONE_REGISTRY, Backbone, build_backbone
from seg_research.modeling.backbone import FPN, LastLevelMaxPool, ResNet, convert_torchvision_resnet_state_dict

ALL_STAGES = ["stem", "res2", "res3", "res4", "res5"]


def _r18_cfg(backbone_name: str = "build_resnet_backbone"):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = backbone_name
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    return cfg


def _shapes(features: Dict[str, torch.Tensor]) -> Dict[str, tuple]:
    return {name: tuple(t.shape) for name, t in features.items()}


def _randomize_norms(model: nn.Module) -> None:
    """Non-trivial BN affine parameters and running statistics, so that norms matter."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)


# ----------------------------------------------------------------------------- ResNet shapes
def test_resnet18_output_shapes_and_strides_at_128():
    model = ResNet(depth=18, out_features=ALL_STAGES, norm="FrozenBN")
    out = model(torch.zeros(2, 3, 128, 128))
    assert _shapes(out) == {
        "stem": (2, 64, 32, 32),
        "res2": (2, 64, 32, 32),
        "res3": (2, 128, 16, 16),
        "res4": (2, 256, 8, 8),
        "res5": (2, 512, 4, 4),
    }
    assert model.output_shape() == {
        "stem": ShapeSpec(channels=64, stride=4),
        "res2": ShapeSpec(channels=64, stride=4),
        "res3": ShapeSpec(channels=128, stride=8),
        "res4": ShapeSpec(channels=256, stride=16),
        "res5": ShapeSpec(channels=512, stride=32),
    }
    assert model.size_divisibility == 0


def test_resnet_builds_only_stages_up_to_last_out_feature():
    model = ResNet(depth=18, out_features=["res3"])
    assert hasattr(model, "res3") and not hasattr(model, "res4") and not hasattr(model, "res5")
    assert _shapes(model(torch.zeros(1, 3, 64, 64))) == {"res3": (1, 128, 8, 8)}


def test_resnet50_shapes_and_stride_in_1x1():
    msra = ResNet(depth=50, out_features=["res2", "res5"], stride_in_1x1=True)
    tv = ResNet(depth=50, out_features=["res5"], stride_in_1x1=False)
    for stage in ("res3", "res4", "res5"):
        first = getattr(msra, stage)[0]
        assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
        first = getattr(tv, stage)[0]
        assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert msra.res2[0].conv1.stride == (1, 1) and msra.res2[0].conv2.stride == (1, 1)
    x = torch.zeros(1, 3, 64, 64)
    assert _shapes(msra(x)) == {"res2": (1, 256, 16, 16), "res5": (1, 2048, 2, 2)}
    assert _shapes(tv(x)) == {"res5": (1, 2048, 2, 2)}


@pytest.mark.parametrize("depth", [18, 50])
def test_res5_dilation_keeps_stride_16(depth):
    model = ResNet(depth=depth, out_features=["res4", "res5"], res5_dilation=2)
    assert model.output_shape()["res5"].stride == 16
    out = model(torch.zeros(1, 3, 64, 64))
    assert out["res5"].shape[-2:] == out["res4"].shape[-2:] == (4, 4)
    three_by_three = model.res5[1].conv2  # a 3×3 conv of a later block: dilated, same-size padding
    assert three_by_three.dilation == (2, 2) and three_by_three.padding == (2, 2)



def _conv_dilations(stage: nn.Module):
    """Dilation of every 3×3 conv of a stage, in module order."""
    return [m.dilation[0] for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("depth", [18, 50])
def test_res4_and_res5_dilation_give_output_stride_8(depth):
    model = ResNet(depth=depth, out_features=["res2", "res4", "res5"], res4_dilation=2, res5_dilation=4)
    assert {name: s.stride for name, s in model.output_shape().items()} == {"res2": 4, "res4": 8, "res5": 8}
    out = model(torch.zeros(1, 3, 64, 64))
    assert out["res2"].shape[-2:] == (16, 16) and out["res4"].shape[-2:] == out["res5"].shape[-2:] == (8, 8)
    for m in model.modules():  # every dilated 3×3 conv keeps the spatial size
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            assert m.padding == m.dilation


def test_output_stride_8_dilations_follow_torchvision():
    """Bottleneck: identical to torchvision's replace_stride_with_dilation=[False, True, True];
    BasicBlock (which torchvision refuses): the same rule, first block at the previous dilation."""
    ours = ResNet(depth=50, out_features=["res5"], res4_dilation=2, res5_dilation=4, stride_in_1x1=False)
    tv = resnet50(replace_stride_with_dilation=[False, True, True])
    for stage, layer in (("res4", tv.layer3), ("res5", tv.layer4)):
        assert _conv_dilations(getattr(ours, stage)) == _conv_dilations(layer)
        assert [m.stride for m in getattr(ours, stage).modules() if isinstance(m, nn.Conv2d)] == [
            m.stride for m in layer.modules() if isinstance(m, nn.Conv2d)]
    assert _conv_dilations(ours.res4) == [1] + [2] * 5 and _conv_dilations(ours.res5) == [2, 4, 4]
    basic = ResNet(depth=18, out_features=["res5"], res4_dilation=2, res5_dilation=4)
    assert _conv_dilations(basic.res4) == [1, 1, 2, 2] and _conv_dilations(basic.res5) == [2, 2, 4, 4]
    assert all(m.stride == (1, 1) for stage in (basic.res4, basic.res5) for m in stage.modules()
               if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("dilations", [(2, 1), (2, 2), (1, 4), (4, 8)])
def test_unsupported_dilations_are_reported(dilations):
    with pytest.raises(ValueError, match=r"use \(1, 1\) for output stride 32, \(1, 2\) for 16 or \(2, 4\) for 8"):
        ResNet(depth=18, res4_dilation=dilations[0], res5_dilation=dilations[1])


def test_res4_dilation_from_config():
    cfg = _r18_cfg("build_resnet_backbone")
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res5"]
    cfg.MODEL.RESNETS.RES4_DILATION, cfg.MODEL.RESNETS.RES5_DILATION = 2, 4
    assert build_backbone(cfg).output_shape() == {
        "res2": ShapeSpec(channels=64, stride=4), "res5": ShapeSpec(channels=512, stride=8)}


# ----------------------------------------------------------------------------- norms / freezing
@pytest.mark.parametrize(
    "norm, cls",
    [("FrozenBN", FrozenBatchNorm2d), ("BN", nn.BatchNorm2d), ("SyncBN", SyncBatchNorm2d), ("GN", nn.GroupNorm)],
)
def test_norm_choice_builds_that_module_everywhere(norm, cls):
    model = ResNet(depth=18, out_features=["res5"], norm=norm)
    norms = [m for n, m in model.named_modules() if n.split(".")[-1].startswith("bn") or n.endswith("downsample.1")]
    assert len(norms) == 1 + 2 * 8 + 3  # stem, 2 per BasicBlock, 3 downsample norms
    assert all(type(m) is cls for m in norms)
    if norm == "GN":
        assert model.res5[0].bn1.num_groups == 32 and model.res5[0].bn1.num_channels == 512


def test_get_norm_names():
    assert get_norm("", 64) is None
    gn = get_norm("GN", 64)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32 and gn.num_channels == 64
    assert isinstance(get_norm("FrozenBN", 8), FrozenBatchNorm2d)
    with pytest.raises(ValueError, match="Unknown norm 'LN'"):
        get_norm("LN", 64)
    with pytest.raises(ValueError, match="48 channels"):
        get_norm("GN", 48)
    with pytest.raises(ValueError, match="needs a norm layer"):
        ResNet(depth=18, norm="")


def test_convert_frozen_batchnorm_keeps_eval_output():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, eps=1e-3)
    _randomize_norms(bn)
    frozen = convert_frozen_batchnorm(nn.Sequential(bn))[0]
    assert type(frozen) is FrozenBatchNorm2d and frozen.eps == 1e-3
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(frozen(x), bn.eval()(x))


def test_freeze_at_2_freezes_stem_and_res2_only():
    model = ResNet(depth=18, out_features=["res5"], norm="BN", freeze_at=2)
    for name in ("stem", "res2"):
        module = getattr(model, name)
        assert all(not p.requires_grad for p in module.parameters())
        assert not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())
    assert type(model.stem.bn1) is FrozenBatchNorm2d and type(model.res2[1].bn2) is FrozenBatchNorm2d
    for name in ("res3", "res4", "res5"):
        module = getattr(model, name)
        assert all(p.requires_grad for p in module.parameters())
        assert type(module[0].bn1) is nn.BatchNorm2d
    # a backward pass reaches res3 but not res2
    model(torch.randn(1, 3, 64, 64))["res5"].sum().backward()
    assert model.res3[0].conv1.weight.grad is not None and model.res2[0].conv1.weight.grad is None


def test_freeze_at_0_trains_everything_and_bad_value_raises():
    model = ResNet(depth=18, out_features=["res3"], norm="BN", freeze_at=0)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="freeze_at must be in 0..5"):
        ResNet(depth=18, freeze_at=6)


# ----------------------------------------------------------------------------- torchvision weights
def test_torchvision_resnet18_weights_give_identical_res5():
    torch.manual_seed(0)
    reference = resnet18(weights=None)
    _randomize_norms(reference)
    reference.eval()
    ours = ResNet(depth=18, out_features=["res5"], norm="BN", stride_in_1x1=False).eval()
    result = ours.load_state_dict(convert_torchvision_resnet_state_dict(reference.state_dict()))
    assert result.missing_keys == [] and result.unexpected_keys == []

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        r = reference
        expected = r.layer4(r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x))))))))
        torch.testing.assert_close(ours(x)["res5"], expected, rtol=0, atol=0)
        # FrozenBN (the default) holds the same statistics: same features up to float rounding
        frozen = ResNet(depth=18, out_features=["res5"], stride_in_1x1=False)
        frozen.load_state_dict(convert_torchvision_resnet_state_dict(reference.state_dict()))
        torch.testing.assert_close(frozen(x)["res5"], expected, rtol=1e-4, atol=5e-5)


def test_torchvision_resnet50_state_dict_loads_without_missing_keys():
    state = convert_torchvision_resnet_state_dict(resnet50(weights=None).state_dict(), prefix="bottom_up.")
    assert "bottom_up.stem.conv1.weight" in state and "bottom_up.res5.2.bn3.running_var" in state
    assert not any(".fc." in k or k.startswith("fc.") for k in state)
    model = FPN(
        bottom_up=ResNet(depth=50, out_features=["res2", "res3", "res4", "res5"], norm="BN"),
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=8,
        top_block=LastLevelMaxPool(),
    )
    result = model.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert all(k.startswith("fpn_") for k in result.missing_keys)


def test_convert_rejects_non_resnet_state_dict():
    with pytest.raises(ValueError, match=r"unexpected keys \['backbone.body.conv1.weight'\]"):
        convert_torchvision_resnet_state_dict({"backbone.body.conv1.weight": torch.zeros(1)})


# ----------------------------------------------------------------------------- FPN
def test_resnet18_fpn_p2_to_p6_at_128():
    model = FPN(
        bottom_up=ResNet(depth=18, out_features=["res2", "res3", "res4", "res5"]),
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=32,
        top_block=LastLevelMaxPool(),
    )
    out = model(torch.zeros(1, 3, 128, 128))
    assert _shapes(out) == {
        "p2": (1, 32, 32, 32),
        "p3": (1, 32, 16, 16),
        "p4": (1, 32, 8, 8),
        "p5": (1, 32, 4, 4),
        "p6": (1, 32, 2, 2),
    }
    assert model.output_shape() == {f"p{s}": ShapeSpec(channels=32, stride=2**s) for s in range(2, 7)}
    assert model.size_divisibility == 32
    assert model.padding_constraints == {"size_divisibility": 32}
    torch.testing.assert_close(out["p6"], out["p5"][:, :, ::2, ::2])


class _FixedFeatures(Backbone):
    """Bottom-up stub: c4 (stride 16) all ones 4×4, c5 (stride 32) = [[1, 2], [3, 4]], 1 channel."""

    def __init__(self):
        super().__init__()
        self._out_features = ["c4", "c5"]
        self._out_feature_channels = {"c4": 1, "c5": 1}
        self._out_feature_strides = {"c4": 16, "c5": 32}

    def forward(self, x):
        return {"c4": torch.ones(1, 1, 4, 4), "c5": torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])}


def _identity_fpn(fuse_type: str) -> FPN:
    """FPN over ``_FixedFeatures`` whose 1×1 laterals and 3×3 outputs are identities."""
    model = FPN(bottom_up=_FixedFeatures(), in_features=["c4", "c5"], out_channels=1, top_block=LastLevelMaxPool(),
                fuse_type=fuse_type)
    with torch.no_grad():
        for s in (4, 5):
            getattr(model, f"fpn_lateral{s}")[0].weight.fill_(1.0)
            output = getattr(model, f"fpn_output{s}")[0].weight
            output.zero_()
            output[0, 0, 1, 1] = 1.0
    return model


@pytest.mark.parametrize("fuse_type, divisor", [("sum", 1.0), ("avg", 2.0)])
def test_fpn_top_down_fusion_values(fuse_type, divisor):
    out = _identity_fpn(fuse_type)(torch.zeros(1, 3, 128, 128))
    assert list(out) == ["p4", "p5", "p6"]
    torch.testing.assert_close(out["p5"], torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    upsampled = torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    torch.testing.assert_close(out["p4"][0, 0], (1.0 + upsampled) / divisor)
    torch.testing.assert_close(out["p6"], torch.tensor([[[[1.0]]]]))


def test_fpn_layout_and_bias_off_with_norm():
    model = FPN(bottom_up=_FixedFeatures(), in_features=["c4", "c5"], out_channels=32, norm="GN")
    keys = set(model.state_dict())
    assert {"fpn_lateral4.0.weight", "fpn_lateral4.1.weight", "fpn_output5.0.weight", "fpn_output5.1.bias"} <= keys
    assert "fpn_lateral4.0.bias" not in keys and isinstance(model.fpn_output5[1], nn.GroupNorm)
    assert list(model.output_shape()) == ["p4", "p5"]  # no top block


def test_fpn_rejects_bad_inputs():
    with pytest.raises(ValueError, match="must be a non-empty subset"):
        FPN(bottom_up=_FixedFeatures(), in_features=["c3", "c4"], out_channels=1)
    with pytest.raises(ValueError, match="fuse_type"):
        FPN(bottom_up=_FixedFeatures(), in_features=["c4", "c5"], out_channels=1, fuse_type="max")
    dilated = ResNet(depth=18, out_features=["res4", "res5"], res5_dilation=2)
    with pytest.raises(ValueError, match=r"strides \[16, 16\]"):
        FPN(bottom_up=dilated, in_features=["res4", "res5"], out_channels=1)


# ----------------------------------------------------------------------------- registry / config
def test_build_resnet_backbone_by_name():
    cfg = _r18_cfg("build_resnet_backbone")
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res4"]
    model = build_backbone(cfg)
    assert isinstance(model, ResNet) and "build_resnet_backbone" in BACKBONE_REGISTRY
    assert model.output_shape() == {"res4": ShapeSpec(channels=256, stride=16)}
    # cfg defaults: FREEZE_AT 2 and FrozenBN
    assert not any(p.requires_grad for p in model.res2.parameters()) and model.res3[0].conv1.weight.requires_grad
    gray = build_backbone(cfg, ShapeSpec(channels=1))
    assert gray.stem.conv1.in_channels == 1
    assert _shapes(gray(torch.zeros(1, 1, 64, 64))) == {"res4": (1, 256, 4, 4)}


def test_build_resnet_fpn_backbone_by_name():
    model = build_backbone(_r18_cfg("build_resnet_fpn_backbone"))
    assert isinstance(model, FPN) and isinstance(model.bottom_up, ResNet)
    assert _shapes(model(torch.zeros(1, 3, 64, 64))) == {
        "p2": (1, 32, 16, 16), "p3": (1, 32, 8, 8), "p4": (1, 32, 4, 4), "p5": (1, 32, 2, 2), "p6": (1, 32, 1, 1),
    }


def test_config_errors_say_what_to_set():
    cfg = _r18_cfg()
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
    with pytest.raises(ConfigError, match="set MODEL.RESNETS.RES2_OUT_CHANNELS 64"):
        build_backbone(cfg)
    cfg = _r18_cfg("build_resnet_fpn_backbone")
    cfg.MODEL.FPN.IN_FEATURES = []
    with pytest.raises(ConfigError, match="MODEL.FPN.IN_FEATURES is empty"):
        build_backbone(cfg)
    cfg = _r18_cfg("build_resnet_fpn_backbone")
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res4"]
    with pytest.raises(ValueError, match="MODEL.RESNETS.OUT_FEATURES must include"):
        build_backbone(cfg)
    cfg = _r18_cfg("resnet_please")
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME 'resnet_please' is not registered"):
        build_backbone(cfg)
