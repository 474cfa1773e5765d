"""CPU speed-ups that must not change results: the ROIPooler's sparse RoIAlign against torchvision's
MultiScaleRoIAlign, the mask head's fused one-class logits, and channels-last preprocessing."""
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import MultiScaleRoIAlign

from seg_research.layers import ShapeSpec, deconv_predictor
from seg_research.layers.deconv_predictor import deconv_relu_class_logits
from seg_research.modeling.poolers import ROIPooler
from seg_research.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead, mask_rcnn_loss
from seg_research.structures import BitMasks, Boxes, Instances


def _boxes():
    """Boxes on 256×256 inputs for each level: sqrt(area) < 112 -> p2, < 224 -> p3, < 448 -> p4, else p5."""
    return [Boxes(torch.tensor([[4.0, 6.0, 20.0, 30.0], [0.0, 0.0, 250.0, 240.0], [50.0, 40.0, 51.0, 41.0]])),
            Boxes(torch.tensor([[10.0, 10.0, 170.0, 190.0], [-100.0, -80.0, 400.0, 420.0]]))]


def test_pooler_values_and_gradients_equal_torchvision_multiscale_roi_align():
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(2, 4, 256 // s, 256 // s, dtype=torch.float64, generator=g, requires_grad=True)
                for s in (4, 8, 16, 32)]
    ours = ROIPooler(7, [1 / 4, 1 / 8, 1 / 16, 1 / 32], sampling_ratio=2, pooler_type="ROIAlign")
    reference = MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 7, sampling_ratio=2)
    boxes = _boxes()
    out = ours(features, boxes)
    expected = reference(dict(zip(["p2", "p3", "p4", "p5"], features, strict=True)), [b.tensor.double() for b in boxes],
                         [(256, 256), (256, 256)])
    assert ours.level_mapper([torch.cat([b.tensor for b in boxes])]).tolist() == [0, 2, 0, 1, 3]
    assert out.shape == (5, 4, 7, 7) and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grad_output = torch.randn(out.shape, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad(out, features, grad_output)
    expected_grads = torch.autograd.grad(expected, features, grad_output)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)


def test_mask_head_loss_from_ground_truth_class_logits_equals_the_full_logits_loss():
    torch.manual_seed(0)
    head = MaskRCNNConvUpsampleHead(ShapeSpec(channels=8), num_classes=5, conv_dims=[16, 8])
    torch.nn.init.normal_(head.predictor.weight, std=0.5)
    torch.nn.init.normal_(head.predictor.bias, std=0.5)
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 2:9, 3:12], masks[1, 5:16, 0:6] = True, True
    rois = [Instances((16, 16), proposal_boxes=Boxes(torch.tensor([[1.0, 1.0, 12.0, 10.0], [0.0, 4.0, 8.0, 16.0]])),
                      gt_classes=torch.tensor([3, 1]), gt_masks=BitMasks(masks)),
            Instances((16, 16), proposal_boxes=Boxes(torch.tensor([[2.0, 2.0, 9.0, 9.0]])),
                      gt_classes=torch.tensor([4]), gt_masks=BitMasks(masks[:1]))]
    x = torch.randn(3, 8, 7, 7)
    selected = head.class_logits(x, torch.tensor([3, 1, 4]))
    full = head.layers(x)
    assert selected.shape == (3, 1, 14, 14)
    torch.testing.assert_close(selected[:, 0], full[torch.arange(3), torch.tensor([3, 1, 4])], rtol=1e-5, atol=1e-6)
    head.train()
    loss = head(x, rois)["loss_mask"]
    torch.testing.assert_close(loss, mask_rcnn_loss(full, rois), rtol=1e-5, atol=1e-6)
    loss.backward()
    weight_grad = head.predictor.weight.grad[:, :, 0, 0]
    assert weight_grad[[1, 3, 4]].abs().sum() > 0 and weight_grad[[0, 2]].abs().sum() == 0


def _unfused(x, deconv_weight, deconv_bias, class_weight, class_bias):
    upsampled = F.relu(F.conv_transpose2d(x, deconv_weight, deconv_bias, stride=2))
    return torch.einsum("rdhw,rd->rhw", upsampled, class_weight) + class_bias[:, None, None]


@pytest.mark.parametrize("block_floats", [1 << 20, 3 * 4 * 4 * 4])  # one block; 3 ROIs per block (3 blocks)
def test_fused_deconv_relu_class_logits_values_and_gradients_equal_the_layers(monkeypatch, block_floats):
    monkeypatch.setattr(deconv_predictor, "_BLOCK_FLOATS", block_floats)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(7, 5, 3, 3, generator=g).to(memory_format=torch.channels_last),  # x: R=7, C=5, S=3
              torch.randn(5, 4, 2, 2, generator=g), torch.randn(4, generator=g),        # deconv: D=4
              torch.randn(7, 4, generator=g), torch.randn(7, generator=g)]              # per-ROI class filter
    inputs = [t.double().requires_grad_() for t in inputs]
    fused = deconv_relu_class_logits(*inputs)
    expected = _unfused(*inputs)
    assert fused.shape == (7, 6, 6)
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-12)
    grad_output = torch.randn(fused.shape, dtype=torch.float64, generator=g)
    for grad, expected_grad in zip(torch.autograd.grad(fused, inputs, grad_output),
                                   torch.autograd.grad(expected, inputs, grad_output), strict=True):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(deconv_relu_class_logits, [t.detach()[:4].requires_grad_() if i in (0, 3, 4)
                                                               else t.detach().requires_grad_()
                                                               for i, t in enumerate(inputs)])


def test_fused_deconv_refuses_other_kernels():
    with pytest.raises(ValueError, match="2x2 transposed conv"):
        deconv_relu_class_logits(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2, 3, 3), torch.zeros(2),
                                 torch.zeros(1, 2), torch.zeros(1))


def test_mask_head_inference_keeps_the_predicted_class_map_of_the_full_logits():
    torch.manual_seed(0)
    head = MaskRCNNConvUpsampleHead(ShapeSpec(channels=8), num_classes=5, conv_dims=[16, 8]).eval()
    torch.nn.init.normal_(head.predictor.weight, std=0.5)
    detections = [Instances((16, 16), pred_classes=torch.tensor([2, 0])), Instances((16, 16), pred_classes=torch.tensor([4]))]
    x = torch.randn(3, 8, 7, 7)
    with torch.no_grad():
        head(x, detections)
        full = head.layers(x)
    masks = torch.cat([d.pred_masks for d in detections])
    assert masks.shape == (3, 1, 14, 14)
    torch.testing.assert_close(masks[:, 0], full[torch.arange(3), torch.tensor([2, 0, 4])].sigmoid(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_box_head_fc1_as_conv_equals_the_flattened_layers(memory_format):
    from seg_research.modeling.roi_heads.box_head import FastRCNNConvFCHead

    torch.manual_seed(0)
    head = FastRCNNConvFCHead(ShapeSpec(channels=6, height=3, width=3), conv_dims=[], fc_dims=[10, 4]).double()
    x = torch.randn(5, 6, 3, 3, dtype=torch.float64)
    x_conv = x.clone().to(memory_format=memory_format).requires_grad_()
    x_plain = x.clone().requires_grad_()
    out = head(x_conv)
    expected = head.fc_relu2(head.fc2(head.fc_relu1(head.fc1(x_plain.flatten(1)))))
    assert out.shape == (5, 4)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grad_output = torch.randn(out.shape, dtype=torch.float64)
    params = [head.fc1.weight, head.fc1.bias, head.fc2.weight]
    grads = torch.autograd.grad(out, [x_conv, *params], grad_output)
    expected_grads = torch.autograd.grad(expected, [x_plain, *params], grad_output)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)
