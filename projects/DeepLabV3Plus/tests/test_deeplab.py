"""The DeepLabV3+ project: ASPP, DeepLabV3PlusHead on the dilated ResNet, configs and train_net.py."""
import os

import pytest
import torch
from torch import nn

from deeplab import ASPP, DeepLabV3PlusHead, add_deeplab_config
from seg_research.config import ConfigError, get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_model
from seg_research.modeling.meta_arch import SemanticSegmentor

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(PROJECT, "configs")
R18_OS16 = {"res2": ShapeSpec(channels=64, stride=4), "res5": ShapeSpec(channels=512, stride=16)}


def _cfg(name: str):
    cfg = get_cfg()
    add_deeplab_config(cfg)
    cfg.merge_from_file(os.path.join(CONFIGS, name))
    return cfg


# ----------------------------------------------------------------------------- ASPP
def test_aspp_branches_and_output_shape():
    aspp = ASPP(32, 16, (2, 4, 6), norm="BN", dropout=0.1)
    convs = [b[0] for b in aspp.branches]
    assert [(c.kernel_size, c.dilation, c.padding) for c in convs] == [
        ((1, 1), (1, 1), (0, 0)), ((3, 3), (2, 2), (2, 2)), ((3, 3), (4, 4), (4, 4)), ((3, 3), (6, 6), (6, 6))]
    assert isinstance(aspp.pooling[0], nn.AdaptiveAvgPool2d) and aspp.project[0][0].in_channels == 5 * 16
    assert aspp.project[1].p == 0.1
    assert aspp.eval()(torch.randn(2, 32, 9, 7)).shape == (2, 16, 9, 7)


def test_aspp_rate_d_branch_sees_pixels_d_apart():
    """The rate-3 branch's output at the centre changes with the input 3 pixels away and not 1
    pixel away; the pooling branch is the same at every position."""
    aspp = ASPP(1, 1, (3,), norm="", dropout=0.0).eval()
    nn.init.ones_(aspp.branches[1][0].weight)  # positive weights: a pixel in view raises the ReLU output
    nn.init.zeros_(aspp.branches[1][0].bias)
    x = torch.zeros(1, 1, 9, 9)
    centre = aspp.branches[1](x)[0, 0, 4, 4]
    near, far = x.clone(), x.clone()
    near[0, 0, 4, 5], far[0, 0, 4, 7] = 1.0, 1.0
    assert aspp.branches[1](near)[0, 0, 4, 4] == centre
    assert aspp.branches[1](far)[0, 0, 4, 4] != centre
    pooled = aspp.pooling(far)
    assert pooled.shape == (1, 1, 1, 1)
    conv = aspp.pooling[1][0]
    assert pooled.item() == pytest.approx(torch.relu(conv.weight[0, 0, 0, 0] / 81 + conv.bias[0]).item(), rel=1e-6)


def test_aspp_rejects_bad_rates():
    with pytest.raises(ValueError, match=r"positive atrous rates \(MODEL.SEM_SEG_HEAD.ASPP_DILATIONS\), got \[0, 6\]"):
        ASPP(8, 8, (0, 6))


# ----------------------------------------------------------------------------- head
def test_head_layout():
    head = DeepLabV3PlusHead(R18_OS16, num_classes=3, aspp_channels=32, aspp_dilations=(1, 2, 3),
                             project_channels=12, conv_dims=24)
    assert (head.low_level_feature, head.aspp_feature) == ("res2", "res5")
    assert head.aspp.branches[0][0].in_channels == 512 and head.project[0].in_channels == 64
    assert head.project[0].kernel_size == (1, 1) and head.project[0].out_channels == 12
    # decoder: two 3×3 convs on the fused 32 + 12 channels (the second is the output head's), then 1×1
    assert head.fuse[0].in_channels == 44 and head.fuse[0].kernel_size == (3, 3)
    scale_head = head.output_head.scale_heads["fused"]
    assert len(scale_head) == 1  # one conv block, no upsampling: the feature is at the common stride
    assert scale_head[0][0].kernel_size == (3, 3) and scale_head[0][0].in_channels == 24
    assert head.output_head.predictor.kernel_size == (1, 1) and head.output_head.common_stride == 4


def test_head_forward_fuses_upsampled_aspp_with_low_level_feature():
    head = DeepLabV3PlusHead(R18_OS16, num_classes=3, aspp_channels=8, aspp_dilations=(1,), project_channels=4,
                             conv_dims=8, norm="").eval()
    features = {"res2": torch.randn(2, 64, 16, 16), "res5": torch.randn(2, 512, 4, 4)}
    captured = []
    head.fuse.register_forward_hook(lambda m, inputs, out: captured.append(inputs[0]))
    logits, losses = head(features)
    assert logits.shape == (2, 3, 64, 64) and losses == {}
    fused_input = captured[0]
    assert fused_input.shape == (2, 4 + 8, 16, 16)
    assert torch.allclose(fused_input[:, :4], head.project(features["res2"]))
    aspp = nn.functional.interpolate(head.aspp(features["res5"]), size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(fused_input[:, 4:], aspp)


def test_head_losses_are_the_library_losses(reference_losses):
    head = DeepLabV3PlusHead(R18_OS16, num_classes=1, aspp_channels=8, aspp_dilations=(1,), project_channels=4,
                             conv_dims=8, norm="", aspp_dropout=0.0, loss_types=("bce_dice",))
    g = torch.Generator().manual_seed(0)
    features = {"res2": torch.randn(2, 64, 8, 8, generator=g), "res5": torch.randn(2, 512, 2, 2, generator=g)}
    targets = torch.randint(0, 2, (2, 32, 32), generator=g)
    _, losses = head(features, targets)
    context = nn.functional.interpolate(head.aspp(features["res5"]), size=(8, 8), mode="bilinear", align_corners=False)
    fused = head.fuse(torch.cat([head.project(features["res2"]), context], dim=1))
    expected = reference_losses.bce_dice(head.output_head.layers({"fused": fused}), targets)  # by hand
    assert set(losses) == {"loss_sem_seg_bce_dice"}
    assert losses["loss_sem_seg_bce_dice"].item() == pytest.approx(expected.item(), rel=1e-5)
    head.eval()
    logits, _ = head(features)
    assert logits.shape == (2, 2, 32, 32) and torch.count_nonzero(logits[:, 0]) == 0  # binary head: [0, x]


def test_head_needs_a_low_level_and_a_deeper_feature():
    with pytest.raises(ValueError, match=r"needs 2 input features .* got \{'res5': 16\}"):
        DeepLabV3PlusHead({"res5": ShapeSpec(channels=8, stride=16)}, num_classes=2)
    with pytest.raises(ValueError, match="of larger stride"):
        DeepLabV3PlusHead({"res4": ShapeSpec(channels=8, stride=8), "res5": ShapeSpec(channels=8, stride=8)},
                          num_classes=2)


# ----------------------------------------------------------------------------- configs and training
@pytest.mark.parametrize("output_stride, res4_dilation, res5_dilation", [(16, 1, 2), (8, 2, 4)])
def test_demo_config_at_output_stride_16_and_8(output_stride, res4_dilation, res5_dilation):
    cfg = _cfg("Shapes/deeplab_v3plus_R_18_demo.yaml")
    cfg.MODEL.RESNETS.RES4_DILATION, cfg.MODEL.RESNETS.RES5_DILATION = res4_dilation, res5_dilation
    model = build_model(cfg).eval()
    assert isinstance(model, SemanticSegmentor) and isinstance(model.sem_seg_head, DeepLabV3PlusHead)
    assert model.backbone.output_shape() == {
        "res2": ShapeSpec(channels=64, stride=4), "res5": ShapeSpec(channels=512, stride=output_stride)}
    res5 = []
    model.backbone.res5.register_forward_hook(lambda m, inputs, out: res5.append(out))
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 64, 64, dtype=torch.uint8), "height": 96, "width": 96}])
    assert res5[0].shape[-2:] == (64 // output_stride, 64 // output_stride)
    assert out[0]["sem_seg"].shape == (7, 96, 96)


@pytest.mark.parametrize("name, num_classes, loss_types", [
    ("Shapes/deeplab_v3plus_R_18_demo.yaml", 7, ("cross_entropy", "dice")),
    ("PH2/deeplab_v3plus_R_50.yaml", 1, ("bce_dice",)),
    ("MADS/deeplab_v3plus_R_50.yaml", 1, ("bce_dice",)),
])
def test_configs(name, num_classes, loss_types):
    cfg = _cfg(name)
    head = cfg.MODEL.SEM_SEG_HEAD
    assert head.NUM_CLASSES == num_classes and tuple(head.LOSS_TYPES) == loss_types
    assert list(head.IN_FEATURES) == ["res2", "res5"] and cfg.MODEL.RESNETS.RES5_DILATION == 2


def test_r50_base_config_builds_the_paper_head():
    cfg = _cfg("PH2/deeplab_v3plus_R_50.yaml")
    model = build_model(cfg)
    head = model.sem_seg_head
    assert model.backbone.output_shape()["res5"] == ShapeSpec(channels=2048, stride=16)
    assert [b[0].dilation[0] for b in head.aspp.branches] == [1, 6, 12, 18]
    assert head.aspp.branches[0][0].out_channels == 256 and head.project[0].out_channels == 48
    assert head.fuse[0].in_channels == 256 + 48 and head.fuse[0].out_channels == 256


def test_deeplab_keys_need_add_deeplab_config():
    cfg = get_cfg()
    with pytest.raises(ConfigError, match="Non-existent config key 'MODEL.SEM_SEG_HEAD.ASPP_CHANNELS'"):
        cfg.merge_from_file(os.path.join(CONFIGS, "Base-DeepLabV3Plus.yaml"))
    add_deeplab_config(cfg)
    head = cfg.MODEL.SEM_SEG_HEAD
    assert (head.ASPP_CHANNELS, list(head.ASPP_DILATIONS), head.ASPP_DROPOUT, head.PROJECT_CHANNELS) == (
        256, [6, 12, 18], 0.1, 48)


@pytest.mark.slow
def test_train_net_trains_and_evaluates(tmp_path, train_project_on_shapes):
    train_project_on_shapes("DeepLabV3Plus", "deeplab_v3plus_R_18_instant_test.yaml", tmp_path)
    saved = get_cfg()
    add_deeplab_config(saved)
    saved.merge_from_file(str(tmp_path / "config.yaml"))
    assert saved.MODEL.SEM_SEG_HEAD.NAME == "DeepLabV3PlusHead" and list(saved.MODEL.SEM_SEG_HEAD.ASPP_DILATIONS) == [
        1, 2, 3]
