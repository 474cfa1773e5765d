"""The FCN project: bilinear deconvolution weights, FCNHead 32s/16s/8s score fusion, configs, train_net.py."""
import os

import pytest
import torch
import torch.nn.functional as F

from fcn import FCNHead, add_fcn_config, bilinear_upsampling_weight
from seg_research.config import ConfigError, get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_model
from seg_research.modeling.meta_arch import SemanticSegmentor

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(PROJECT, "configs")
R18 = {"res3": ShapeSpec(channels=128, stride=8), "res4": ShapeSpec(channels=256, stride=16),
       "res5": ShapeSpec(channels=512, stride=32)}
VARIANTS = {"32s": ["res5"], "16s": ["res4", "res5"], "8s": ["res3", "res4", "res5"]}


def _cfg(name):
    cfg = get_cfg()
    add_fcn_config(cfg)
    cfg.merge_from_file(os.path.join(CONFIGS, name))
    return cfg


def _features(batch=2, size=64, generator=None):
    return {name: torch.randn(batch, s.channels, size // s.stride, size // s.stride, generator=generator)
            for name, s in R18.items()}


def test_bilinear_weight_upsamples_like_bilinear_interpolation():
    weight = bilinear_upsampling_weight(3, 2)
    assert weight.shape == (3, 3, 4, 4)
    assert weight[0, 0, :, 0].tolist() == pytest.approx([0.0625, 0.1875, 0.1875, 0.0625])
    assert weight[0, 1].abs().sum() == 0  # no mixing of classes
    x = torch.randn(1, 3, 6, 5)
    up = F.conv_transpose2d(x, weight, stride=2, padding=1)
    reference = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert up.shape == reference.shape == (1, 3, 12, 10)
    assert torch.allclose(up[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-6)  # equal away from borders
    assert bilinear_upsampling_weight(1, 3).shape == (1, 1, 5, 5)


@pytest.mark.parametrize("variant, stride", [("32s", 32), ("16s", 16), ("8s", 8)])
def test_variants_output_stride_and_layout(variant, stride):
    head = FCNHead({n: R18[n] for n in VARIANTS[variant]}, num_classes=5, conv_dims=16).eval()
    assert head.common_stride == stride and head.in_features == VARIANTS[variant]
    assert sorted(head.skip_scores) == sorted(VARIANTS[variant][:-1])
    assert head.fc[0][0].in_channels == 512 and head.fc[0][0].kernel_size == (3, 3)
    assert head.fc[2][0].kernel_size == (1, 1)
    features = _features()
    assert head.layers(features).shape == (2, 5, 64 // stride, 64 // stride)
    logits, losses = head(features)
    assert logits.shape == (2, 5, 64, 64) and losses == {}


def test_fcn8s_fuses_upsampled_scores_with_skip_scores():
    head = FCNHead(R18, num_classes=3, conv_dims=8, norm="", dropout=0.0).eval()
    g = torch.Generator().manual_seed(0)
    for skip in head.skip_scores.values():  # zero at the start (the paper); give them weights to see them
        torch.nn.init.normal_(skip.weight, generator=g)
    features = _features(generator=g)
    score5 = head.score(head.fc(features["res5"]))
    score4 = F.conv_transpose2d(score5, head.upsamplers["res4"].weight, stride=2, padding=1) \
        + head.skip_scores["res4"](features["res4"])
    score3 = F.conv_transpose2d(score4, head.upsamplers["res3"].weight, stride=2, padding=1) \
        + head.skip_scores["res3"](features["res3"])
    assert torch.allclose(head.layers(features), score3, atol=1e-6)


def test_zero_skip_scores_start_as_the_upsampled_32s_net():
    head = FCNHead(R18, num_classes=3, conv_dims=8, norm="", dropout=0.0, upsample="bilinear").eval()
    features = _features()
    score5 = head.score(head.fc(features["res5"]))
    expected = F.interpolate(F.interpolate(score5, scale_factor=2, mode="bilinear", align_corners=False),
                             scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(head.layers(features), expected, atol=1e-6)


def test_odd_sizes_are_cropped_to_the_skip_feature():
    head = FCNHead(R18, num_classes=2, conv_dims=8).eval()
    features = {"res3": torch.randn(1, 128, 9, 7), "res4": torch.randn(1, 256, 5, 4), "res5": torch.randn(1, 512, 3, 2)}
    assert head.layers(features).shape == (1, 2, 9, 7)


def test_losses_are_the_library_losses(reference_losses):
    head = FCNHead(R18, num_classes=1, conv_dims=8, norm="", dropout=0.0, loss_types=("bce_dice",))
    g = torch.Generator().manual_seed(1)
    features = _features(generator=g)
    targets = torch.randint(0, 2, (2, 64, 64), generator=g)
    _, losses = head(features, targets)
    expected = reference_losses.bce_dice(head.layers(features), targets)  # BCE + 1 - Dice, by hand
    assert set(losses) == {"loss_sem_seg_bce_dice"}
    assert losses["loss_sem_seg_bce_dice"].item() == pytest.approx(expected.item(), rel=1e-5)
    head.eval()
    logits, _ = head(features)
    assert logits.shape == (2, 2, 64, 64) and torch.count_nonzero(logits[:, 0]) == 0  # binary head: [0, x]


def test_bad_features_and_upsample_are_refused():
    with pytest.raises(ValueError, match=r"strides double.*\{'res3': 8, 'res5': 32\}"):
        FCNHead({"res3": R18["res3"], "res5": R18["res5"]}, num_classes=2)
    with pytest.raises(ValueError, match=r"MODEL.FCN.UPSAMPLE\) must be one of \('learned', 'bilinear'\)"):
        FCNHead(R18, num_classes=2, upsample="nearest")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_demo_config_builds_each_variant(variant):
    cfg = _cfg("Shapes/fcn8s_R_18_demo.yaml")
    cfg.MODEL.RESNETS.OUT_FEATURES = cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = VARIANTS[variant]
    model = build_model(cfg).eval()
    assert isinstance(model, SemanticSegmentor) and isinstance(model.sem_seg_head, FCNHead)
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 64, 64, dtype=torch.uint8), "height": 96, "width": 96}])
    assert out[0]["sem_seg"].shape == (7, 96, 96)


def test_configs_and_keys():
    voc = _cfg("VOC/fcn8s_R_50.yaml")
    assert voc.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 21 and voc.DATASETS.TEST == ("voc_2012_sem_seg_val",)
    head = build_model(voc).sem_seg_head
    assert head.fc[0][0].in_channels == 2048 and head.skip_scores["res3"].in_channels == 512
    assert isinstance(head.upsamplers["res4"], torch.nn.ConvTranspose2d)
    with pytest.raises(ConfigError, match="Non-existent config key 'MODEL.FCN'"):
        get_cfg().merge_from_file(os.path.join(CONFIGS, "Base-FCN.yaml"))


@pytest.mark.slow
def test_train_net_trains_and_evaluates(tmp_path, train_project_on_shapes):
    train_project_on_shapes("FCN", "fcn8s_R_18_instant_test.yaml", tmp_path)
