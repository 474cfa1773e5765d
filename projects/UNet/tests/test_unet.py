"""The U-Net project: UNetEncoder, UpBlock, UNetHead, its configs and train_net.py."""
import os

import pytest
import torch
from torch import nn

from seg_research.config import ConfigError, get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_backbone, build_model
from seg_research.modeling.backbone import ResNet
from seg_research.modeling.meta_arch import SemanticSegmentor
from unet import UNetEncoder, UNetHead, UpBlock, add_unet_config

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(PROJECT, "configs")


def _cfg(name: str):
    cfg = get_cfg()
    add_unet_config(cfg)
    cfg.merge_from_file(os.path.join(CONFIGS, name))
    return cfg


def _num_convs3x3(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in module.modules())


# ----------------------------------------------------------------------------- encoder
def test_encoder_levels_channels_strides():
    enc = UNetEncoder(depth=4, base_channels=8)
    assert enc.output_shape() == {
        "enc1": ShapeSpec(channels=8, stride=1), "enc2": ShapeSpec(channels=16, stride=2),
        "enc3": ShapeSpec(channels=32, stride=4), "enc4": ShapeSpec(channels=64, stride=8),
    }
    assert enc.size_divisibility == 8 and _num_convs3x3(enc) == 8
    out = enc(torch.zeros(2, 3, 64, 48))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "enc1": (2, 8, 64, 48), "enc2": (2, 16, 32, 24), "enc3": (2, 32, 16, 12), "enc4": (2, 64, 8, 6)}
    # sizes that do not divide: max-pools round up, like ResNet's strided convs
    assert [tuple(v.shape[-2:]) for v in enc(torch.zeros(1, 3, 50, 50)).values()] == [
        (50, 50), (25, 25), (13, 13), (7, 7)]


def test_encoder_norm_option():
    plain = UNetEncoder(depth=2, base_channels=4, norm="")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))
    bn = UNetEncoder(depth=2, base_channels=4, norm="BN")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 4
    assert all(m.bias is None for m in bn.modules() if isinstance(m, nn.Conv2d))
    with pytest.raises(ValueError, match=r"at least 2 levels \(MODEL.UNET.DEPTH\), got 1"):
        UNetEncoder(depth=1)


def test_paper_unet_has_31037698_parameters():
    """Depth 5, 64..1024 channels, 2×2 up-convolutions, BN, 2 classes, counted by hand:
    encoder level c_in -> c: 9 c_in c + 9 c² + 4 c (convs without bias, BN weight+bias)
    = 38 848 + 221 696 + 885 760 + 3 540 992 + 14 159 872 = 18 847 168; decoder level of
    skip channels s: up-conv 8 s² + s, convs 18 s² + 9 s² + 4 s, i.e. 35 s² + 5 s for
    s = 512, 256, 128, 64 = 12 190 400; classifier 64·2 + 2 = 130."""
    cfg = _cfg("PH2/unet.yaml")
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 2
    cfg.MODEL.SEM_SEG_HEAD.LOSS_TYPES = ("cross_entropy",)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == 18_847_168 + 12_190_400 + 130


# ----------------------------------------------------------------------------- decoder
@pytest.mark.parametrize("upsample", ["transposed", "bilinear"])
def test_up_block_crops_upsampled_feature_and_concatenates_after_skip(upsample):
    block = UpBlock(1, 1, upsample=upsample, norm="", num_convs=2).eval()
    if upsample == "transposed":  # 2×2 kernel of ones, stride 2: each pixel becomes a 2×2 block
        nn.init.ones_(block.up.weight)
        nn.init.zeros_(block.up.bias)
    else:  # identity 1×1 conv after the bilinear 2× upsampling
        nn.init.ones_(block.up[1].weight)
        nn.init.zeros_(block.up[1].bias)
    captured = []
    block.convs[0].register_forward_hook(lambda m, inputs, out: captured.append(inputs[0]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    skip = torch.full((1, 1, 3, 3), -5.0)  # 3 = 2·2 - 1: the upsampled 4×4 is cropped to 3×3
    out = block(x, skip)
    assert out.shape == (1, 1, 3, 3)
    assert torch.equal(captured[0][:, 0], skip[:, 0])
    expected_up = {
        "transposed": [[1.0, 1.0, 2.0], [1.0, 1.0, 2.0], [3.0, 3.0, 4.0]],
        # bilinear, align_corners=False: output pixel i samples input coordinate (i + 0.5) / 2 - 0.5
        "bilinear": [[1.0, 1.25, 1.75], [1.5, 1.75, 2.25], [2.5, 2.75, 3.25]],
    }[upsample]
    assert torch.allclose(captured[0][0, 1], torch.tensor(expected_up))


def test_head_layout_completes_the_paper_decoder():
    enc = UNetEncoder(depth=4, base_channels=8)
    head = UNetHead(enc.output_shape(), num_classes=3)
    assert head.in_features == ["enc1", "enc2", "enc3", "enc4"]
    # two 3×3 convs per decoder level: the top level's second one is the output head's
    assert [_num_convs3x3(b) for b in head.up_blocks] == [1, 2, 2]
    assert _num_convs3x3(head.output_head) == 1 and _num_convs3x3(head) == 2 * 3
    assert [(b.up.in_channels, b.up.out_channels) for b in head.up_blocks] == [(16, 8), (32, 16), (64, 32)]
    assert head.output_head.predictor.kernel_size == (1, 1) and head.output_head.predictor.out_channels == 3


def test_head_inference_logits_and_binary_head():
    enc = UNetEncoder(depth=3, base_channels=4)
    features = enc(torch.randn(2, 3, 32, 32))
    multi = UNetHead(enc.output_shape(), num_classes=5).eval()
    logits, losses = multi(features)
    assert logits.shape == (2, 5, 32, 32) and losses == {}
    binary = UNetHead(enc.output_shape(), num_classes=1, loss_types=("bce_dice",)).eval()
    logits, _ = binary(features)
    assert logits.shape == (2, 2, 32, 32) and torch.count_nonzero(logits[:, 0]) == 0  # [0, x]: softmax = sigmoid


def test_head_losses_are_the_library_losses_of_the_decoded_feature(reference_losses):
    enc = UNetEncoder(depth=3, base_channels=4)
    features = enc(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    head = UNetHead(enc.output_shape(), num_classes=3, norm="", loss_types=("cross_entropy", "dice"),
                    loss_weights=(1.0, 0.5))
    targets = torch.randint(0, 3, (2, 16, 16), generator=torch.Generator().manual_seed(1))
    targets[:, :2] = 255
    top = features["enc3"]
    for i in (1, 0):
        top = head.up_blocks[i](top, features[f"enc{i + 1}"])
    logits = head.output_head.layers({"top": top})
    # cross-entropy (weight 1) and Dice (weight 0.5) over the non-ignored pixels, by hand
    expected = {"loss_sem_seg": reference_losses.cross_entropy(logits, targets),
                "loss_sem_seg_dice": 0.5 * reference_losses.dice(logits, targets)}
    _, losses = head(features, targets)
    assert set(losses) == {"loss_sem_seg", "loss_sem_seg_dice"}
    for key in expected:
        assert losses[key].item() == pytest.approx(expected[key].item(), rel=1e-5)


def test_deep_supervision_adds_weighted_losses_of_each_decoder_level():
    enc = UNetEncoder(depth=4, base_channels=4)
    features = enc(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    targets = torch.randint(0, 3, (2, 16, 16), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    head = UNetHead(enc.output_shape(), num_classes=3, norm="", loss_types=("cross_entropy", "dice"),
                    loss_weights=(1.0, 1.0), deep_supervision_weights=(0.5, 0.25))
    assert [(p[0].in_channels, p[0].out_channels, p[0].kernel_size, len(p)) for p in head.deep_supervision] == [
        (8, 3, (1, 1), 1), (16, 3, (1, 1), 1)]  # a lone 1×1 conv (with bias) per level
    decoded, x = {}, features["enc4"]
    for i in (2, 1, 0):
        x = decoded[i] = head.up_blocks[i](x, features[f"enc{i + 1}"])
    _, losses = head(features, targets)
    assert set(losses) == {"loss_sem_seg", "loss_sem_seg_dice", "loss_ds2_sem_seg", "loss_ds2_sem_seg_dice",
                           "loss_ds4_sem_seg", "loss_ds4_sem_seg_dice"}
    for level, stride, weight in ((1, 2, 0.5), (2, 4, 0.25)):
        # the level's 1×1 logits at stride 2 or 4, upsampled to the targets by the library's losses
        logits = head.deep_supervision[level - 1](decoded[level])
        assert logits.shape[-1] == 16 // stride
        expected = head.output_head.losses(logits, targets)
        assert losses[f"loss_ds{stride}_sem_seg"].item() == pytest.approx(
            weight * expected["loss_sem_seg"].item(), rel=1e-6)
        assert losses[f"loss_ds{stride}_sem_seg_dice"].item() == pytest.approx(
            weight * expected["loss_sem_seg_dice"].item(), rel=1e-6)
    expected_top = head.output_head.losses(head.output_head.layers({"top": decoded[0]}), targets)
    assert losses["loss_sem_seg"].item() == pytest.approx(expected_top["loss_sem_seg"].item(), rel=1e-6)
    # inference: the top output only, the same as without deep supervision
    plain = UNetHead(enc.output_shape(), num_classes=3, norm="")
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("deep_supervision")})
    assert torch.equal(head.eval()(features)[0], plain.eval()(features)[0])
    with pytest.raises(ValueError, match=r"DEEP_SUPERVISION_WEIGHTS has 3 weights.*2 levels below the top"):
        UNetHead(enc.output_shape(), num_classes=3, deep_supervision_weights=(1.0, 1.0, 1.0))


def test_head_on_resnet_features_is_a_resnet_unet():
    resnet = ResNet(depth=18, out_features=["res2", "res3", "res4", "res5"], norm="BN")
    head = UNetHead(resnet.output_shape(), num_classes=4, upsample="bilinear").eval()
    logits, _ = head(resnet(torch.randn(1, 3, 100, 100)))  # res2 25, res3 13, res4 7, res5 4: crops
    assert logits.shape == (1, 4, 100, 100)


def test_head_errors_say_what_to_fix():
    with pytest.raises(ValueError, match=r"strides doubling.*'b': 8"):
        UNetHead({"a": ShapeSpec(channels=4, stride=2), "b": ShapeSpec(channels=8, stride=8)}, num_classes=2)
    with pytest.raises(ValueError, match=r"MODEL.UNET.UPSAMPLE.*\('transposed', 'bilinear'\)"):
        UpBlock(8, 4, upsample="nearest", norm="", num_convs=2)
    cfg = _cfg("Shapes/unet_demo.yaml")
    cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["enc1", "enc2", "enc5"]
    with pytest.raises(ConfigError, match=r"\['enc5'\] are not backbone outputs"):
        build_model(cfg)


# ----------------------------------------------------------------------------- configs and training
@pytest.mark.parametrize("name, num_classes, loss_types", [
    ("Shapes/unet_demo.yaml", 7, ("cross_entropy", "dice")),
    ("PH2/unet.yaml", 1, ("bce_dice",)),
    ("MADS/unet.yaml", 1, ("bce_dice",)),
])
def test_configs_build_a_semantic_segmentor(name, num_classes, loss_types):
    cfg = _cfg(name)
    assert cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == num_classes and tuple(cfg.MODEL.SEM_SEG_HEAD.LOSS_TYPES) == loss_types
    cfg.MODEL.UNET.BASE_CHANNELS = 4  # keep the test light; the layout is what matters
    model = build_model(cfg)
    assert isinstance(model, SemanticSegmentor) and isinstance(model.backbone, UNetEncoder)
    assert isinstance(model.sem_seg_head, UNetHead)
    assert model.sem_seg_head.in_features == [f"enc{i + 1}" for i in range(cfg.MODEL.UNET.DEPTH)]


def test_unet_keys_need_add_unet_config():
    cfg = get_cfg()
    with pytest.raises(ConfigError, match="Non-existent config key 'MODEL.UNET' in config file"):
        cfg.merge_from_file(os.path.join(CONFIGS, "Shapes", "unet_demo.yaml"))
    add_unet_config(cfg)
    assert (cfg.MODEL.UNET.DEPTH, cfg.MODEL.UNET.BASE_CHANNELS, cfg.MODEL.UNET.NORM, cfg.MODEL.UNET.UPSAMPLE) == (
        5, 64, "BN", "transposed")
    backbone = build_backbone(_cfg("Shapes/unet_demo.yaml"))
    assert backbone.output_shape()["enc4"] == ShapeSpec(channels=128, stride=8)


def test_small_unet_overfits_one_image():
    """A square on a background: a depth-3 U-Net fits it (every pixel right, with BN running
    statistics in inference) in 40 Adam steps."""
    torch.manual_seed(0)
    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    target = torch.zeros(16, 16, dtype=torch.int64)
    image[:, 4:12, 4:12], target[4:12, 4:12] = 200, 1
    encoder = UNetEncoder(depth=3, base_channels=8)
    head = UNetHead(encoder.output_shape(), num_classes=2, loss_types=("cross_entropy", "dice"), loss_weights=(1.0, 1.0))
    model = SemanticSegmentor(backbone=encoder, sem_seg_head=head, pixel_mean=[100.0] * 3, pixel_std=[100.0] * 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):
        loss = sum(model([{"image": image, "sem_seg": target}]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        prediction = model([{"image": image}])[0]["sem_seg"].argmax(0)
    assert torch.equal(prediction, target)


@pytest.mark.slow
def test_train_net_trains_and_evaluates(tmp_path, train_project_on_shapes):
    train_project_on_shapes("UNet", "unet_instant_test.yaml", tmp_path)
    saved = get_cfg()
    add_unet_config(saved)
    saved.merge_from_file(str(tmp_path / "config.yaml"))
    assert saved.MODEL.BACKBONE.NAME == "UNetEncoder" and saved.MODEL.UNET.DEPTH == 3
