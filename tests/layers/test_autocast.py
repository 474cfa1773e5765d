"""The CPU fast paths under ``torch.autocast("cpu", dtype=torch.bfloat16)``: values and gradients
against the same computation in float32, within bfloat16 tolerance (8-bit mantissa: a rounding
error of 2**-9 relative per value; sums of a few hundred products stay within ~1 % in norm).

Covered: the sparse-matrix RoIAlign (one and four levels), the fused deconv/ReLU/class-filter end
of the mask head, the box head's ``fc1`` as a convolution, the channels-last ResNet-FPN backbone,
the semantic FPN head (loss and gradients) and panoptic fusion of bfloat16 outputs.
"""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seg_research.config import get_cfg
from seg_research.layers import ShapeSpec, deconv_predictor
from seg_research.layers.deconv_predictor import deconv_relu_class_logits
from seg_research.modeling.backbone import build_backbone
from seg_research.modeling.panoptic_fusion import combine_semantic_and_instance_outputs
from seg_research.modeling.poolers import ROIPooler
from seg_research.modeling.roi_heads.box_head import FastRCNNConvFCHead
from seg_research.modeling.sem_seg_heads.fpn_head import SemSegFPNHead
from seg_research.structures import Boxes, Instances

BF16 = torch.bfloat16
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _autocast():
    return torch.autocast("cpu", dtype=BF16)


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """||value - reference|| / ||reference|| (the absolute norm for an all-zero reference)."""
    value, reference = value.detach().float(), reference.detach().float()
    return float((value - reference).norm() / reference.norm().clamp(min=1.0 if not reference.any() else 0.0))


def _grads(output, inputs, grad_output):
    return torch.autograd.grad(output.float(), inputs, grad_output)


@pytest.mark.parametrize("levels", [1, 4])
def test_pooler_under_autocast_pools_bf16_features_in_float32_with_unrounded_boxes(levels):
    g = torch.Generator().manual_seed(0)
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32][:levels]
    features = [torch.randn(2, 16, int(256 * s), int(256 * s), generator=g, requires_grad=True) for s in scales]
    # fractional corners beyond 128 px: bfloat16 would round 201.3 to 201 and 251.9 to 252
    boxes = [Boxes(torch.tensor([[130.3, 70.7, 251.9, 199.1], [4.6, 6.2, 20.9, 30.3]])),
             Boxes(torch.tensor([[10.4, 10.8, 170.2, 190.6], [201.3, 3.1, 255.7, 60.5]]))]
    pooler = ROIPooler(7, scales, sampling_ratio=0, pooler_type="ROIAlignV2")
    expected = pooler(features, boxes)
    with _autocast():
        low = [f.to(BF16) for f in features]  # what the FPN convolutions return under autocast
        out = pooler(low, boxes)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    # only the features' own bfloat16 rounding remains (boxes unrounded, sums in float32)
    reference = pooler([f.detach().to(BF16).float() for f in features], boxes)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    assert _relative_error(out, expected) < 5e-3
    grad_output = torch.randn(out.shape, generator=g)
    for grad, expected_grad in zip(_grads(out, features, grad_output), _grads(expected, features, grad_output),
                                   strict=True):
        assert grad.dtype == torch.float32 and _relative_error(grad, expected_grad) < 5e-3


def _unfused(x, deconv_weight, deconv_bias, class_weight, class_bias):
    upsampled = F.relu(F.conv_transpose2d(x, deconv_weight, deconv_bias, stride=2))
    return torch.einsum("rdhw,rd->rhw", upsampled, class_weight) + class_bias[:, None, None]


def _errors(ours, stock, inputs, grad_output):
    """Relative errors of the output and of each input's gradient, of ``ours`` and of ``stock``
    (the same computation by torch's own layers) under autocast, both against ``stock`` in float32."""
    expected = stock(*inputs)
    expected_grads = _grads(expected, inputs, grad_output)
    errors = {}
    for name, fn in (("ours", ours), ("stock", stock)):
        with _autocast():
            out = fn(*inputs)
        assert out.dtype == BF16 or name == "stock"
        grads = _grads(out, inputs, grad_output)
        assert [g.dtype for g in grads] == [t.dtype for t in inputs], name
        errors[name] = [_relative_error(out, expected)] + [
            _relative_error(a, b) for a, b in zip(grads, expected_grads, strict=True)]
    return errors


def _assert_within_bf16_tolerance(errors):
    """Ours is as accurate as torch's autocast layers (1.5x their error, or under 0.5 %)."""
    for ours, stock in zip(errors["ours"], errors["stock"], strict=True):
        assert ours <= max(1.5 * stock, 5e-3), errors


@pytest.mark.parametrize("block_floats", [1 << 20, 3 * 49 * 4 * 16])  # one block; 3 ROIs per block
def test_fused_deconv_under_autocast_is_as_accurate_as_the_autocast_layers(monkeypatch, block_floats):
    monkeypatch.setattr(deconv_predictor, "_BLOCK_FLOATS", block_floats)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(8, 32, 7, 7, generator=g).to(memory_format=torch.channels_last),
              torch.randn(32, 16, 2, 2, generator=g) / 8, torch.randn(16, generator=g),
              torch.randn(8, 16, generator=g) / 4, torch.randn(8, generator=g)]
    inputs = [t.requires_grad_() for t in inputs]
    with _autocast():
        assert deconv_relu_class_logits(*inputs).shape == (8, 14, 14)
    errors = _errors(deconv_relu_class_logits, _unfused, inputs, torch.randn(8, 14, 14, generator=g))
    _assert_within_bf16_tolerance(errors)
    assert max(errors["ours"]) < 5e-2


def test_box_head_fc1_as_conv_under_autocast_is_as_accurate_as_linear():
    torch.manual_seed(0)
    head = FastRCNNConvFCHead(ShapeSpec(channels=32, height=7, width=7), conv_dims=[], fc_dims=[64])

    def stock(x, weight, bias):
        return F.relu(F.linear(x.flatten(1), weight, bias))

    x = torch.randn(16, 32, 7, 7).to(memory_format=torch.channels_last).requires_grad_()
    errors = _errors(lambda x, weight, bias: head(x), stock, [x, head.fc1.weight, head.fc1.bias], torch.randn(16, 64))
    _assert_within_bf16_tolerance(errors)
    assert max(errors["ours"]) < 5e-2


def _backbone():
    cfg = get_cfg()
    cfg.merge_from_file(CONFIGS / "Base-RCNN-FPN.yaml")
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS, cfg.MODEL.RESNETS.NORM = 18, 64, "BN"
    cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.BACKBONE.FREEZE_AT = 32, 0
    torch.manual_seed(0)
    return build_backbone(cfg)


def test_channels_last_resnet_fpn_backbone_under_autocast_keeps_float32_bn_statistics():
    backbone = _backbone().train()
    image = torch.randn(2, 3, 64, 64).to(memory_format=torch.channels_last)
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    expected = backbone(image)
    fp32_stats = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.load_state_dict(state)
    with _autocast():
        features = backbone(image)
    for name, feature in features.items():
        assert feature.dtype == BF16 and _relative_error(feature, expected[name]) < 5e-2, name
    for key, value in backbone.state_dict().items():  # BN running statistics stay float32 and close
        assert value.dtype == fp32_stats[key].dtype, key
        if value.is_floating_point():
            assert _relative_error(value, fp32_stats[key]) < 3e-2, key


def test_channels_last_resnet_fpn_backbone_gradients_under_autocast():
    # BN as an affine map (eval mode): with batch statistics on a batch of 2 random images the
    # float32 gradients themselves change by ~20 % when only the input is rounded to bfloat16.
    backbone = _backbone().eval()
    params = list(backbone.parameters())
    image = torch.randn(2, 3, 64, 64).to(memory_format=torch.channels_last)
    expected = torch.autograd.grad(sum(f.square().mean() for f in backbone(image).values()), params)
    with _autocast():
        features = backbone(image)
    grads = torch.autograd.grad(sum(f.float().square().mean() for f in features.values()), params)
    assert all(grad.dtype == torch.float32 for grad in grads)
    errors = sorted(_relative_error(grad, reference) for grad, reference in zip(grads, expected, strict=True))
    whole = _relative_error(torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in expected]))
    assert whole < 0.1 and errors[len(errors) // 2] < 0.08 and errors[-1] < 0.25, errors


def test_semantic_fpn_head_loss_and_gradients_under_autocast():
    torch.manual_seed(0)
    head = SemSegFPNHead({"p2": ShapeSpec(channels=16, stride=4), "p3": ShapeSpec(channels=16, stride=8)},
                         num_classes=4, conv_dims=32, common_stride=4, norm="GN").train()
    features = {"p2": torch.randn(2, 16, 16, 16, requires_grad=True), "p3": torch.randn(2, 16, 8, 8, requires_grad=True)}
    targets = torch.randint(0, 4, (2, 64, 64))
    targets[:, :4] = 255
    params = [*features.values(), *head.parameters()]
    _, expected = head(features, targets)
    expected_grads = torch.autograd.grad(sum(expected.values()), params)
    with _autocast():
        _, losses = head({k: v.to(BF16) for k, v in features.items()}, targets)
    loss = sum(v.float() for v in losses.values())
    assert abs(float(loss) - float(sum(expected.values()))) < 1e-2 * float(sum(expected.values()))
    for grad, expected_grad in zip(torch.autograd.grad(loss, params), expected_grads, strict=True):
        assert grad.dtype == torch.float32 and _relative_error(grad, expected_grad) < 8e-2
    head.eval()
    with torch.no_grad(), _autocast():
        logits, _ = head({k: v.to(BF16) for k, v in features.items()})
    assert logits.shape == (2, 4, 64, 64)


def test_panoptic_fusion_of_bf16_outputs_equals_float32_fusion():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(3, 32, 32, dtype=torch.bool)
    masks[0, 2:14, 2:14], masks[1, 8:20, 8:20], masks[2, 20:30, 0:10] = True, True, True
    instances = Instances((32, 32), scores=torch.tensor([0.91, 0.62, 0.55]), pred_classes=torch.tensor([1, 0, 2]),
                          pred_masks=masks)
    semantic = torch.randn(4, 32, 32, generator=g) * 4
    expected_seg, expected_info = combine_semantic_and_instance_outputs(instances, semantic, 0.5, 16, 0.5)
    low = Instances((32, 32), scores=instances.scores.to(BF16), pred_classes=instances.pred_classes, pred_masks=masks)
    with _autocast():
        seg, info = combine_semantic_and_instance_outputs(low, semantic.to(BF16), 0.5, 16, 0.5)
    assert torch.equal(seg, expected_seg)
    assert [(s["id"], s["category_id"], s["isthing"]) for s in info] == [
        (s["id"], s["category_id"], s["isthing"]) for s in expected_info]
