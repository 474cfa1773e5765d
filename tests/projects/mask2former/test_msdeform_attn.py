"""Multi-scale deformable attention in plain PyTorch: float64 values against a direct loop, gradients
against finite differences (gradcheck), the layer's initialisation and its reference-point handling."""
import math

import pytest
import torch
import torch.nn.functional as F

from seg_research.projects.mask2former.modeling.pixel_decoder.ops import (
    MSDeformAttn,
    ms_deform_attn,
    ms_deform_attn_core_pytorch,
)

SHAPES = [(3, 4), (2, 3)]  # (H, W) of two levels


def _inputs(seed, n=2, lq=5, m=2, d=3, p=2, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(n, s, m, d, generator=g, dtype=torch.float64)
    # locations in [-0.3, 1.3]: some samples fall partly or wholly outside the map
    loc = torch.rand(n, lq, m, len(shapes), p, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3
    attn = torch.rand(n, lq, m, len(shapes), p, generator=g, dtype=torch.float64)
    return value, loc, attn


def _naive(value, shapes, loc, attn):
    """The definition, one sample at a time: bilinear interpolation between pixel centres (at
    (i + 0.5) / W), pixels outside the map read 0."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = loc.shape
    out = torch.zeros(n, lq, m, d, dtype=value.dtype)
    start = 0
    starts = []
    for h, w in shapes:
        starts.append(start)
        start += h * w

    def pixel(b, lvl, yy, xx, head):
        h, w = shapes[lvl]
        if 0 <= xx < w and 0 <= yy < h:
            return value[b, starts[lvl] + yy * w + xx, head]
        return torch.zeros(d, dtype=value.dtype)

    for b in range(n):
        for q in range(lq):
            for head in range(m):
                for lvl, (h, w) in enumerate(shapes):
                    for pt in range(num_points):
                        x = loc[b, q, head, lvl, pt, 0].item() * w - 0.5
                        y = loc[b, q, head, lvl, pt, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        ax, ay = x - x0, y - y0
                        sample = ((1 - ax) * (1 - ay) * pixel(b, lvl, y0, x0, head)
                                  + ax * (1 - ay) * pixel(b, lvl, y0, x0 + 1, head)
                                  + (1 - ax) * ay * pixel(b, lvl, y0 + 1, x0, head)
                                  + ax * ay * pixel(b, lvl, y0 + 1, x0 + 1, head))
                        out[b, q, head] += attn[b, q, head, lvl, pt] * sample
    return out.view(n, lq, m * d)


def test_equals_the_direct_loop_in_float64():
    value, loc, attn = _inputs(0)
    expected = _naive(value, SHAPES, loc, attn)
    torch.testing.assert_close(ms_deform_attn(value, SHAPES, loc, attn), expected, rtol=0, atol=1e-12)
    # spatial shapes as upstream passes them, a (L, 2) int64 tensor, through upstream's function name
    torch.testing.assert_close(ms_deform_attn_core_pytorch(value, torch.tensor(SHAPES), loc, attn), expected,
                               rtol=0, atol=1e-12)


def test_equals_grid_sample_per_level():
    """The same samples as torch's grid_sample (bilinear, zero padding, align_corners=False)."""
    value, loc, attn = _inputs(1, n=1, lq=4, m=1, d=2, p=3)
    expected = torch.zeros(1, 4, 2, dtype=torch.float64)
    start = 0
    for lvl, (h, w) in enumerate(SHAPES):
        image = value[0, start:start + h * w, 0].T.reshape(1, 2, h, w)
        start += h * w
        grid = (loc[:, :, 0, lvl] * 2 - 1)  # (1, Lq, P, 2) in [-1, 1]
        samples = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        expected += (samples * attn[0, :, 0, lvl]).sum(-1).T  # (Lq, D)
    torch.testing.assert_close(ms_deform_attn(value, SHAPES, loc, attn), expected, rtol=0, atol=1e-12)


def test_gradcheck_value_locations_weights():
    value, loc, attn = _inputs(2, n=1, lq=3)
    assert torch.autograd.gradcheck(lambda v, lc, a: ms_deform_attn(v, SHAPES, lc, a),
                                    (value.requires_grad_(), loc.requires_grad_(), attn.requires_grad_()),
                                    eps=1e-6, atol=1e-8)


def test_mismatched_shapes_are_refused():
    value, loc, attn = _inputs(3)
    with pytest.raises(ValueError, match="spatial_shapes"):
        ms_deform_attn(value, [(3, 4), (2, 2)], loc, attn)


def test_layer_initialisation():
    layer = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=3)
    offsets = layer.sampling_offsets.bias.view(4, 2, 3, 2)
    # head k looks along angle k * 90 degrees (4 heads), point j at distance j + 1 pixels
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    for j in range(3):
        torch.testing.assert_close(offsets[:, 0, j], expected * (j + 1), atol=1e-6, rtol=0)
        torch.testing.assert_close(offsets[:, 1, j], expected * (j + 1), atol=1e-6, rtol=0)
    assert not layer.attention_weights.weight.any() and not layer.sampling_offsets.weight.any()
    assert [n for n, _ in layer.named_parameters()] == [
        "sampling_offsets.weight", "sampling_offsets.bias", "attention_weights.weight", "attention_weights.bias",
        "value_proj.weight", "value_proj.bias", "output_proj.weight", "output_proj.bias"]


def test_layer_with_reference_points_and_padding_mask():
    """The layer's sampling locations: reference point + offset / (W_l, H_l); padded values read 0."""
    torch.manual_seed(0)
    layer = MSDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=2).double()
    for param in layer.parameters():
        torch.nn.init.normal_(param, std=0.5)
    n, lq, s = 1, 3, sum(h * w for h, w in SHAPES)
    query = torch.randn(n, lq, 8, dtype=torch.float64)
    source = torch.randn(n, s, 8, dtype=torch.float64)
    ref = torch.rand(n, lq, 2, 2, dtype=torch.float64)
    padding = torch.zeros(n, s, dtype=torch.bool)
    padding[0, 5:9] = True
    out = layer(query, ref, source, torch.tensor(SHAPES), None, padding)

    value = (source @ layer.value_proj.weight.T + layer.value_proj.bias).masked_fill(padding[..., None], 0.0)
    offsets = (query @ layer.sampling_offsets.weight.T + layer.sampling_offsets.bias).view(n, lq, 2, 2, 2, 2)
    weights = (query @ layer.attention_weights.weight.T + layer.attention_weights.bias).view(n, lq, 2, 4)
    weights = weights.softmax(-1).view(n, lq, 2, 2, 2)
    wh = torch.tensor([[w, h] for h, w in SHAPES], dtype=torch.float64)  # (x, y) normalisers per level
    loc = ref[:, :, None, :, None, :] + offsets / wh[None, None, None, :, None, :]
    sampled = _naive(value.view(n, s, 2, 4), SHAPES, loc, weights)
    expected = sampled @ layer.output_proj.weight.T + layer.output_proj.bias
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_gradients_of_each_input_alone_equal_those_of_all():
    """The backward computes only what is asked for; each gradient equals the one computed with all three."""
    value, loc, attn = _inputs(4, n=1, lq=3)
    go = torch.randn(1, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    inputs = [value.requires_grad_(), loc.requires_grad_(), attn.requires_grad_()]
    ms_deform_attn(inputs[0], SHAPES, inputs[1], inputs[2]).backward(go)
    full = [t.grad.clone() for t in inputs]
    for i in range(3):
        alone = [t.detach().clone().requires_grad_(j == i) for j, t in enumerate(inputs)]
        ms_deform_attn(alone[0], SHAPES, alone[1], alone[2]).backward(go)
        torch.testing.assert_close(alone[i].grad, full[i], rtol=0, atol=1e-12)
