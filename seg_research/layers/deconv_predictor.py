"""The end of a Mask R-CNN mask head for one class per ROI, fused: 2×2 stride-2 transposed conv,
ReLU and a 1×1 predictor conv restricted to a chosen class of each ROI.

Unfused, ``predictor(relu(deconv(x)))[range(R), classes]`` materialises the (R, D, 2S, 2S)
upsampled features (R·D·4S² floats: 136 MB for 170 ROIs at S = 14, D = 256) several times over
(deconv output, ReLU output, their gradients), and the CPU spends more time moving and
page-faulting those buffers than computing. A 2×2 stride-2 transposed convolution does not
overlap its outputs, so it is a matrix product: with ``X`` the (R·S², C) input pixels,
``Y = X @ W + b`` holds, per input pixel, the D channels of its 2×2 output pixels. Here ROIs are
processed in blocks small enough to stay in cache, each block's ``relu(Y)`` is written once (the
only (R, 4S², D) buffer, kept for the backward) and reduced against its ROI's class filter while
in cache; the backward forms each block's gradient of ``Y`` in cache and accumulates the weight
gradients from it. The numbers equal the unfused layers' up to float summation order.

Under autocast (CPU or CUDA) the products run in the autocast dtype, as the unfused convolutions
would: ``x`` and, inside, the weights are cast to it; the weight gradients are accumulated over
the blocks in float32 and returned in the weights' dtype.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

__all__ = ["deconv_relu_class_logits"]

_BLOCK_FLOATS = 1 << 20  # floats of Y per block (4 MiB in float32)


def _rois_per_block(pixels: int, width: int) -> int:
    return max(1, _BLOCK_FLOATS // max(pixels * width, 1))


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """(R, C, S, S) -> (R·S², C) rows of channels (a view when x is channels-last)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _matrix(deconv_weight: torch.Tensor) -> torch.Tensor:
    """(C, D, 2, 2) transposed-conv weight -> (C, 4·D) matrix, columns in (a, b, d) order."""
    return deconv_weight.permute(0, 2, 3, 1).reshape(deconv_weight.shape[0], 4 * deconv_weight.shape[1])


def _logits(x: torch.Tensor, deconv_weight: torch.Tensor, deconv_bias: torch.Tensor, class_weight: torch.Tensor,
            class_bias: torch.Tensor, keep_upsampled: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(R, 2S, 2S) logits and, if ``keep_upsampled``, relu(Y) as (R, 4S², D) (else one block's buffer)."""
    num_rois, _, side, _ = x.shape
    channels_out = deconv_weight.shape[1]
    rows = _as_rows(x)
    weight = _matrix(deconv_weight).to(x.dtype)  # (C, (a, b, d))
    bias = deconv_bias.to(x.dtype).repeat(4)
    class_weight, class_bias = class_weight.to(x.dtype), class_bias.to(x.dtype)
    pixels = side * side
    step = _rois_per_block(pixels, 4 * channels_out)
    logits = x.new_empty(num_rois, pixels * 4)
    upsampled = x.new_empty(num_rois if keep_upsampled else min(step, num_rois), pixels * 4, channels_out)
    for start in range(0, num_rois, step):
        stop = min(start + step, num_rois)
        y = upsampled[start:stop] if keep_upsampled else upsampled[:stop - start]
        torch.addmm(bias, rows[start * pixels:stop * pixels], weight, out=y.view(-1, 4 * channels_out)).clamp_(min=0)
        torch.bmm(y, class_weight[start:stop, :, None], out=logits[start:stop, :, None])
    logits += class_bias[:, None]
    # (R, S·S·2·2) in (i, j, a, b) order -> (R, 2S, 2S) with row 2i + a, column 2j + b
    logits = logits.view(num_rois, side, side, 2, 2).permute(0, 1, 3, 2, 4).reshape(num_rois, 2 * side, 2 * side)
    return logits, upsampled if keep_upsampled else None


class _DeconvReluClassLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, deconv_weight, deconv_bias, class_weight, class_bias):
        logits, upsampled = _logits(x, deconv_weight, deconv_bias, class_weight, class_bias, keep_upsampled=True)
        ctx.save_for_backward(x, deconv_weight, upsampled, class_weight)
        return logits

    @staticmethod
    def backward(ctx, grad_logits):
        x, deconv_weight, upsampled, class_weight = ctx.saved_tensors
        num_rois, channels_in, side, _ = x.shape
        channels_out = deconv_weight.shape[1]
        pixels = side * side
        rows = _as_rows(x)
        weight = _matrix(deconv_weight).to(x.dtype)
        class_weight_x = class_weight.to(x.dtype)
        grad = grad_logits.to(x.dtype).reshape(num_rois, side, 2, side, 2).permute(0, 1, 3, 2, 4).reshape(
            num_rois, pixels * 4, 1)
        grad_rows = torch.empty_like(rows)
        # weight gradients summed over the blocks in float32 (also when x is bfloat16/float16)
        accumulate = torch.promote_types(deconv_weight.dtype, torch.float32)
        grad_weight = weight.new_zeros(weight.shape, dtype=accumulate)
        grad_bias = weight.new_zeros(4 * channels_out, dtype=accumulate)
        grad_class_weight = torch.empty_like(class_weight_x)
        step = _rois_per_block(pixels, 4 * channels_out)
        for start in range(0, num_rois, step):
            stop = min(start + step, num_rois)
            block_rows = rows[start * pixels:stop * pixels]
            y = upsampled[start:stop]
            g = grad[start:stop]
            torch.bmm(y.transpose(1, 2), g, out=grad_class_weight[start:stop, :, None])
            grad_y = torch.ops.aten.threshold_backward(g * class_weight_x[start:stop, None, :], y, 0.0)
            grad_y = grad_y.view(-1, 4 * channels_out)
            torch.mm(grad_y, weight.t(), out=grad_rows[start * pixels:stop * pixels])
            if grad_weight.dtype == grad_y.dtype:
                grad_weight.addmm_(block_rows.t(), grad_y)
            else:
                grad_weight += torch.mm(block_rows.t(), grad_y)
            grad_bias += grad_y.sum(0)
        grad_x = grad_rows.view(num_rois, side, side, channels_in).permute(0, 3, 1, 2)
        grad_deconv_weight = grad_weight.view(channels_in, 2, 2, channels_out).permute(0, 3, 1, 2)
        grad_deconv_bias = grad_bias.view(4, channels_out).sum(0)
        grad_class_bias = grad.sum(dim=(1, 2), dtype=accumulate)
        return (grad_x, grad_deconv_weight.to(deconv_weight.dtype), grad_deconv_bias.to(deconv_weight.dtype),
                grad_class_weight.to(class_weight.dtype), grad_class_bias.to(class_weight.dtype))


def deconv_relu_class_logits(x: torch.Tensor, deconv_weight: torch.Tensor, deconv_bias: torch.Tensor,
                             class_weight: torch.Tensor, class_bias: torch.Tensor) -> torch.Tensor:
    """``conv1x1(relu(conv_transpose2d(x, deconv_weight, deconv_bias, stride=2)))`` with one
    output channel per ROI, fused and blocked (see the module doc); differentiable in every input.

    Args:
        x: float (R, C, S, S) features (channels-last avoids a copy).
        deconv_weight: (C, D, 2, 2) weight of ``nn.ConvTranspose2d(C, D, 2, stride=2)``; deconv_bias: (D,).
        class_weight: (R, D) the predictor's filter for each ROI's class; class_bias: (R,).

    Returns:
        (R, 2S, 2S) logits: ROI r's map of its class, in ``x``'s dtype (the autocast dtype under autocast).
    """
    if deconv_weight.shape[2:] != (2, 2):
        raise ValueError(f"deconv_relu_class_logits needs a 2x2 transposed conv (stride 2), got {tuple(deconv_weight.shape)}.")
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        x = x.to(torch.get_autocast_dtype(device_type))
    inputs = (x, deconv_weight, deconv_bias, class_weight, class_bias)
    with torch.autocast(device_type, enabled=False):
        if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
            return _DeconvReluClassLogits.apply(*inputs)
        return _logits(*inputs, keep_upsampled=False)[0]
