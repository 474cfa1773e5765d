"""SemSegFPNHead, the SEM_SEG_HEADS registry and the SemanticSegmentor meta-architecture."""
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import ConfigError, get_cfg
from seg_research.data.errors import DataError
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_backbone, build_model
from seg_research.modeling.losses import cross_entropy_loss, dice_loss, focal_loss
from seg_research.modeling.meta_arch import SemanticSegmentor
from seg_research.modeling.sem_seg_heads import SEM_SEG_HEADS_REGISTRY, SemSegFPNHead, build_sem_seg_head

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTANT = os.path.join(REPO, "configs", "Shapes", "semantic_fpn_R_18_instant_test.yaml")
FPN_SHAPES = {f"p{s}": ShapeSpec(channels=8, stride=2**s) for s in (2, 3, 4, 5)}


def _instant_cfg():
    cfg = get_cfg()
    cfg.merge_from_file(INSTANT)
    return cfg


def _features(n=1, size=32, channels=8, seed=0):
    """Random FPN-like features p2..p5 for an input of ``size`` × ``size``."""
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(n, channels, size // s.stride, size // s.stride, generator=g)
            for name, s in FPN_SHAPES.items()}


def test_head_on_r18_fpn_features_at_128_predicts_at_stride_4():
    cfg = _instant_cfg()
    backbone = build_backbone(cfg)
    head = build_sem_seg_head(cfg, backbone.output_shape())
    assert isinstance(head, SemSegFPNHead) and head.in_features == ["p2", "p3", "p4", "p5"]
    # conv stages per level: p2 1 (no upsampling), p3 1, p4 2, p5 3, each followed by a 2x upsampling
    convs = {name: sum(isinstance(m, nn.Conv2d) for m in h.modules()) for name, h in head.scale_heads.items()}
    ups = {name: sum(isinstance(m, nn.Upsample) for m in h.modules()) for name, h in head.scale_heads.items()}
    assert convs == {"p2": 1, "p3": 1, "p4": 2, "p5": 3} and ups == {"p2": 0, "p3": 1, "p4": 2, "p5": 3}
    head.eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 128, 128))
        assert head.layers(features).shape == (2, 7, 32, 32)
        logits, losses = head(features)
    assert logits.shape == (2, 7, 128, 128) and losses == {}


def test_layers_sum_the_scale_heads_then_predict():
    head = SemSegFPNHead(FPN_SHAPES, num_classes=3, conv_dims=4, common_stride=4, norm="")
    features = _features()
    summed = sum(head.scale_heads[name](features[name]) for name in FPN_SHAPES)
    assert torch.allclose(head.layers(features), head.predictor(summed))


def test_weighted_sum_of_losses_has_one_key_per_loss():
    head = SemSegFPNHead(FPN_SHAPES, num_classes=3, conv_dims=4, common_stride=4, norm="", loss_weight=0.5,
                         loss_types=("cross_entropy", "dice", "focal"), loss_weights=(1.0, 0.5, 2.0),
                         loss_options={"focal": {"gamma": 1.0}})
    predictions = head.layers(_features())
    targets = torch.randint(0, 3, (1, 32, 32), generator=torch.Generator().manual_seed(3))
    targets[0, :4] = 255
    losses = head.losses(predictions, targets)
    logits = F.interpolate(predictions, size=(32, 32), mode="bilinear", align_corners=False)
    expected = {
        "loss_sem_seg": 0.5 * 1.0 * cross_entropy_loss(logits, targets),
        "loss_sem_seg_dice": 0.5 * 0.5 * dice_loss(logits, targets),
        "loss_sem_seg_focal": 0.5 * 2.0 * focal_loss(logits, targets, gamma=1.0),
    }
    assert losses.keys() == expected.keys()
    for key in expected:
        assert losses[key].item() == pytest.approx(expected[key].item(), rel=1e-6)
    assert sum(losses.values()).item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-6)


def test_from_config_reads_loss_keys():
    cfg = _instant_cfg()
    cfg.MODEL.SEM_SEG_HEAD.LOSS_TYPES = ("lovasz_softmax", "focal")
    cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHTS = (0.3, 1.0)
    cfg.MODEL.SEM_SEG_HEAD.FOCAL_GAMMA = 0.0
    cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    head = SemSegFPNHead(cfg, FPN_SHAPES)  # GN over 32 channels: p5 needs more than 1 pixel
    predictions = head.layers(_features(size=64))
    targets = torch.randint(0, 7, (1, 64, 64), generator=torch.Generator().manual_seed(4))
    losses = head.losses(predictions, targets)
    logits = F.interpolate(predictions, size=(64, 64), mode="bilinear", align_corners=False)
    # focal with gamma 0 is the cross-entropy
    assert losses["loss_sem_seg_focal"].item() == pytest.approx(cross_entropy_loss(logits, targets).item(), rel=1e-6)
    assert set(losses) == {"loss_sem_seg_lovasz_softmax", "loss_sem_seg_focal"}


@pytest.mark.parametrize("kwargs, match", [
    ({"loss_types": ("dice", "nope"), "loss_weights": (1.0, 1.0)}, r"must name each loss once, from \["),
    ({"loss_types": ("dice",), "loss_weights": (1.0, 1.0)}, "same length"),
    ({"loss_types": ("dice", "dice"), "loss_weights": (1.0, 1.0)}, "once"),
    ({"num_classes": 1}, r"single-channel head \(NUM_CLASSES 1\) trains with LOSS_TYPES \('bce_dice',\)"),
    ({"common_stride": 8}, "'p2' has stride 4"),
])
def test_invalid_head_arguments_are_reported(kwargs, match):
    args = {"num_classes": 3, "conv_dims": 4, "common_stride": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        SemSegFPNHead(FPN_SHAPES, **args)


def test_config_errors():
    cfg = _instant_cfg()
    cfg.MODEL.SEM_SEG_HEAD.LOSS_TYPES = "dice"
    with pytest.raises(ConfigError, match=r'\(\\"dice\\",\)|\("dice",\)'):
        SemSegFPNHead(cfg, FPN_SHAPES)
    cfg = _instant_cfg()
    cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "res3"]
    with pytest.raises(ConfigError, match=r"\['res3'\] are not backbone outputs"):
        SemSegFPNHead(cfg, FPN_SHAPES)
    cfg = _instant_cfg()
    cfg.MODEL.SEM_SEG_HEAD.NAME = "NoSuchHead"
    with pytest.raises(ConfigError, match="NoSuchHead' is not registered"):
        build_sem_seg_head(cfg, FPN_SHAPES)
    assert "SemSegFPNHead" in SEM_SEG_HEADS_REGISTRY


def test_single_channel_head_returns_two_channel_logits():
    head = SemSegFPNHead(FPN_SHAPES, num_classes=1, conv_dims=4, common_stride=4, norm="", loss_types=("bce_dice",))
    features = _features()
    targets = torch.randint(0, 2, (1, 32, 32), generator=torch.Generator().manual_seed(5))
    assert set(head.losses(head.layers(features), targets)) == {"loss_sem_seg_bce_dice"}
    head.eval()
    logits, _ = head(features)
    x = F.interpolate(head.layers(features), scale_factor=4, mode="bilinear", align_corners=False)
    assert logits.shape == (1, 2, 32, 32)
    assert torch.all(logits[:, 0] == 0) and torch.allclose(logits[:, 1:], x)


def test_labels_beyond_num_classes_raise_data_error():
    head = SemSegFPNHead(FPN_SHAPES, num_classes=3, conv_dims=4, common_stride=4, norm="")
    targets = torch.zeros(1, 32, 32, dtype=torch.int64)
    targets[0, 0, 0] = 3
    with pytest.raises(DataError, match=r"labels \[3\].*MODEL.SEM_SEG_HEAD.NUM_CLASSES"):
        head(_features(), targets)


class _RecordingHead(nn.Module):
    """Stands in for a head: records the targets it gets and returns a constant loss."""

    ignore_value = 99

    def forward(self, features, targets=None):
        self.targets = targets
        return None, {"loss_sem_seg": features["p2"].sum() * 0}


def test_training_pads_targets_with_the_heads_ignore_value():
    cfg = _instant_cfg()
    model = SemanticSegmentor(backbone=build_backbone(cfg), sem_seg_head=_RecordingHead(),
                              pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD)
    inputs = [{"image": torch.zeros(3, 40, 64, dtype=torch.uint8), "sem_seg": torch.full((40, 64), 1)},
              {"image": torch.zeros(3, 64, 33, dtype=torch.uint8), "sem_seg": torch.full((64, 33), 2)}]
    assert set(model(inputs)) == {"loss_sem_seg"}
    targets = model.sem_seg_head.targets
    assert targets.shape == (2, 64, 64)  # padded to the backbone's size_divisibility 32
    assert torch.all(targets[0, :40] == 1) and torch.all(targets[0, 40:] == 99)
    assert torch.all(targets[1, :, :33] == 2) and torch.all(targets[1, :, 33:] == 99)
    with pytest.raises(ValueError, match=r"'sem_seg' in every input; inputs \[0\]"):
        model([{"image": torch.zeros(3, 32, 32, dtype=torch.uint8)}])


def test_inference_returns_logits_at_the_records_height_and_width():
    cfg = _instant_cfg()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    # image resized by the mapper to 50 x 70, record's original size 100 x 140
    image = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    with torch.no_grad():
        (out,) = model([{"image": image, "height": 100, "width": 140}])
        assert out["sem_seg"].shape == (7, 100, 140) and out["sem_seg"].dtype == torch.float32
        # the same as: normalize, pad to 64 x 96, head logits, crop to 50 x 70, resize
        padded = torch.zeros(1, 3, 64, 96)
        padded[0, :, :50, :70] = (image.float() - model.pixel_mean) / model.pixel_std
        logits, _ = model.sem_seg_head(model.backbone(padded))
        expected = F.interpolate(logits[:, :, :50, :70], size=(100, 140), mode="bilinear", align_corners=False)[0]
        assert torch.allclose(out["sem_seg"], expected, atol=1e-5)
        (no_size,) = model([{"image": image}])
    assert no_size["sem_seg"].shape == (7, 50, 70)


@pytest.mark.slow
def test_instant_config_training_reduces_the_loss(tmp_path):
    from seg_research.engine import DefaultTrainer

    cfg = _instant_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.SOLVER.MAX_ITER = 12
    cfg.SOLVER.CHECKPOINT_PERIOD = 100
    cfg.DATASETS.TEST = ()  # inference is tested above; this test is about the loss
    cfg.freeze()
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = [value for value, _ in trainer.storage.history("loss_sem_seg").values()]  # raw, one per iteration
    assert len(losses) == 12
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.85 * first, losses


def test_auxiliary_head_adds_weighted_losses_in_training_only():
    cfg = _instant_cfg()
    cfg.merge_from_list(["MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES", '["p4"]', "MODEL.SEM_SEG_HEAD.AUX_LOSS_WEIGHT", "0.4"])
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model.aux_head, SemSegFPNHead) and model.aux_head.in_features == ["p4"]
    assert model.aux_head.common_stride == 16 and model.aux_head.loss_weight == 0.4
    inputs = [{"image": torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8), "sem_seg": torch.randint(0, 7, (64, 64))}]
    losses = model(inputs)
    assert set(losses) == {"loss_sem_seg", "loss_aux_sem_seg"}
    # the auxiliary loss is 0.4 x the cross-entropy of its own logits (stride 16, upsampled to the targets)
    images = (inputs[0]["image"].float() - model.pixel_mean) / model.pixel_std
    features = model.backbone(images[None])
    logits = F.interpolate(model.aux_head.layers(features), size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(losses["loss_aux_sem_seg"], 0.4 * cross_entropy_loss(logits, inputs[0]["sem_seg"][None]))
    model.eval()
    with torch.no_grad():
        (out,) = model(inputs)
    assert out["sem_seg"].shape == (7, 64, 64)
    cfg.merge_from_list(["MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES", '["res4"]'])
    with pytest.raises(ConfigError, match=r"AUX_IN_FEATURES \['res4'\]: \['res4'\] are not backbone outputs"):
        build_model(cfg)
