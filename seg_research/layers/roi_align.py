"""RoIAlign as a sparse matrix product: the same numbers as ``torchvision.ops.roi_align``, with a
multi-threaded, vectorised forward and backward on the CPU.

RoIAlign is linear in the features: every output value is a weighted sum of a few input pixels
(bilinear weights of the sampling points of its bin, averaged). With ``A`` the sparse
(R·Ph·Pw, N·H·W) matrix of these weights and ``F`` the (N·H·W, C) channels-last features,
``output = A @ F`` and ``grad_F = Aᵀ @ grad_output``. torchvision's CPU kernel runs one ROI after
another and its backward scatters every sample into the input gradient one thread at a time;
here both directions are sparse-dense products over all ROIs (of all FPN levels) at once. The
weights are separable (a bin's weight of pixel (y, x) is ``wy(y) · wx(x)``), so they are built
per axis and multiplied out. Results equal torchvision's up to float rounding of the summation
order; on other devices torchvision's kernels are used.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.ops import roi_align as _torchvision_roi_align

__all__ = ["ROIAlign", "roi_align", "multilevel_roi_align", "roi_align_matrix"]


def _csr(crow: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, shape: Tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix from valid parts (built here, so torch's invariant checks are skipped)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, columns, values, shape, check_invariants=False)


def _axis_weights(start: torch.Tensor, length: torch.Tensor, pooled: int, grid: torch.Tensor, size: torch.Tensor,
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bilinear weights along one axis, summed over the sampling points of each bin.

    Args:
        start, length: float (R,) ROI start and extent in feature pixels (after scaling/offset).
        pooled: bins along the axis.
        grid: int64 (R,) sampling points per bin along the axis (0: none).
        size: int64 (R,) extent of each ROI's feature map along the axis.

    Returns:
        first: int64 (R, pooled) first pixel a bin touches; weights: float (R, pooled, L) weight of
        pixel ``first + l``, including the ``1 / grid`` of the sample average. Follows torchvision's
        kernel: samples beyond [-1, size] count 0, others are clamped into [0, size - 1].
    """
    num_points = max(int(grid.max()) if grid.numel() else 1, 1)
    points = torch.arange(num_points, device=start.device)
    grid_f = grid.clamp(min=1).to(start.dtype)[:, None, None]
    size = size[:, None, None]
    bin_size = (length / pooled)[:, None, None]
    bins = torch.arange(pooled, device=start.device, dtype=start.dtype)[None, :, None]
    pos = start[:, None, None] + bins * bin_size + (points + 0.5).to(start.dtype) * bin_size / grid_f
    valid = (points < grid[:, None, None]) & (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0.0)
    low = torch.minimum(pos.floor(), (size - 1).to(pos.dtype))
    frac = torch.where(low >= size - 1, torch.zeros_like(pos), pos - low)
    scale = valid.to(start.dtype) / grid_f
    low = torch.where(valid, low.long(), size.expand_as(low))
    first = low.amin(dim=2)
    first = torch.where(first >= size[..., 0], torch.zeros_like(first), first)  # bins without valid samples
    local = torch.where(valid, low - first[..., None], torch.zeros_like(low))
    width = int(local.max()) + 2 if local.numel() else 2
    weights = pos.new_zeros(*local.shape[:2], width)
    weights.scatter_add_(2, local, (1.0 - frac) * scale)
    weights.scatter_add_(2, local + 1, frac * scale)
    return first, weights


def roi_align_matrix(rois: torch.Tensor, feature_shapes: Sequence[Tuple[int, int, int]], output_size: Tuple[int, int],
                     spatial_scales: Sequence[float], sampling_ratio: int, aligned: bool,
                     level_of_roi: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The sparse CSR matrix ``A`` of :func:`roi_align` over one or more feature maps (see the module doc).

    Args:
        rois: float (R, 5) rows ``(image index, x0, y0, x1, y1)``, XYXY absolute input pixels.
        feature_shapes: (N, H_l, W_l) of each feature map (level).
        output_size: (Ph, Pw).
        spatial_scales: feature pixels per input pixel of each level.
        sampling_ratio, aligned: as in ``torchvision.ops.roi_align``.
        level_of_roi: int64 (R,) level each ROI is pooled from (None: all from level 0).

    Returns:
        (R·Ph·Pw, Σ_l N·H_l·W_l): row ``(r · Ph + ph) · Pw + pw`` holds the weights of output bin
        (ph, pw) of ROI r over the pixels of the levels' maps, each flattened as ``(n, y, x)`` and
        concatenated in level order.
    """
    device = rois.device
    pooled_h, pooled_w = output_size
    if level_of_roi is None:
        level_of_roi = torch.zeros(len(rois), dtype=torch.long, device=device)
    shapes = torch.tensor(feature_shapes, dtype=torch.long, device=device)  # (L, 3)
    sizes = shapes.prod(dim=1)
    level_start = torch.cumsum(sizes, 0) - sizes
    height, width = shapes[level_of_roi, 1], shapes[level_of_roi, 2]
    scale = torch.tensor(spatial_scales, dtype=rois.dtype, device=device)[level_of_roi]
    boxes = rois[:, 1:] * scale[:, None] - (0.5 if aligned else 0.0)
    extent = boxes[:, 2:] - boxes[:, :2]
    if not aligned:
        extent = extent.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_x = grid_y = torch.full((len(rois),), sampling_ratio, dtype=torch.long, device=device)
    else:
        grid_x = torch.ceil(extent[:, 0] / pooled_w).long()
        grid_y = torch.ceil(extent[:, 1] / pooled_h).long()
    first_y, wy = _axis_weights(boxes[:, 1], extent[:, 1], pooled_h, grid_y, height)
    first_x, wx = _axis_weights(boxes[:, 0], extent[:, 0], pooled_w, grid_x, width)
    # (R, Ph, Pw, Ly, Lx) weights in row-major CSR order; only the nonzero ones are stored
    len_y, len_x = wy.shape[2], wx.shape[2]
    values = (wy[:, :, None, :, None] * wx[:, None, :, None, :]).flatten()
    nonzero = values.nonzero().squeeze(1)
    row, cell = nonzero.div(len_y * len_x, rounding_mode="floor"), nonzero % (len_y * len_x)
    roi = row.div(pooled_h * pooled_w, rounding_mode="floor")
    ys = first_y.flatten()[row.div(pooled_w, rounding_mode="floor")] + cell.div(len_x, rounding_mode="floor")
    xs = first_x.flatten()[roi * pooled_w + row % pooled_w] + cell % len_x
    columns = level_start[level_of_roi[roi]] + (rois[roi, 0].long() * height[roi] + ys) * width[roi] + xs
    num_rows = len(rois) * pooled_h * pooled_w
    crow = torch.zeros(num_rows + 1, dtype=torch.long, device=device)
    torch.cumsum(torch.bincount(row, minlength=num_rows), 0, out=crow[1:])
    return _csr(crow, columns, values[nonzero], (num_rows, int(sizes.sum())))


def _transpose(matrix: torch.Tensor) -> torch.Tensor:
    """CSR of the transpose of a CSR matrix (column indices sorted within each row)."""
    crow, columns, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    num_rows, num_columns = matrix.shape
    rows = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), crow.diff())
    order = torch.sort(columns, stable=True).indices  # rows stay ascending within each column
    crow_t = torch.zeros(num_columns + 1, dtype=torch.long, device=crow.device)
    torch.cumsum(torch.bincount(columns, minlength=num_columns), 0, out=crow_t[1:])
    return _csr(crow_t, rows[order], values[order], (num_columns, num_rows))


def _channels_last_rows(feature: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N·H·W, C); a view for a channels-last tensor."""
    return feature.permute(0, 2, 3, 1).reshape(-1, feature.shape[1])


def _stacked_rows(features: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The levels' (N·H_l·W_l, C) rows one under the other, in ``dtype`` (one copy at most)."""
    rows = [_channels_last_rows(f) for f in features]
    if len(rows) == 1:
        return rows[0].to(dtype)
    return torch.cat(rows, out=rows[0].new_empty(sum(len(r) for r in rows), rows[0].shape[1], dtype=dtype))


class _SparseRoIAlign(torch.autograd.Function):
    """``A @ F`` with ``F`` the levels' features as rows of channels; gradient ``Aᵀ @ grad``.

    The product runs in the matrix's dtype (float32 for float32/bfloat16/float16 features: torch's
    sparse kernels have no reduced-precision CPU version, and under autocast the sums keep float32
    accuracy); the gradients are cast back to each feature's dtype by autograd.
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor, output_size: Tuple[int, int], *features: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(matrix)
        ctx.shapes = [f.shape for f in features]
        dense = _stacked_rows(features, matrix.dtype)
        # mm with an ``out`` buffer: torch.sparse.mm would zero-fill a result and copy it once more
        pooled = torch.mm(matrix, dense, out=dense.new_empty(matrix.shape[0], dense.shape[1]))
        channels = features[0].shape[1]
        return pooled.view(-1, *output_size, channels).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (matrix,) = ctx.saved_tensors
        grad = torch.sparse.mm(_transpose(matrix), _channels_last_rows(grad_output))
        grads = grad.split([n * h * w for n, _, h, w in ctx.shapes])
        return (None, None, *(g.view(n, h, w, c).permute(0, 3, 1, 2)
                              for g, (n, c, h, w) in zip(grads, ctx.shapes, strict=True)))


def multilevel_roi_align(features: Sequence[torch.Tensor], rois: torch.Tensor, level_of_roi: torch.Tensor,
                         output_size: Tuple[int, int], spatial_scales: Sequence[float], sampling_ratio: int,
                         aligned: bool) -> torch.Tensor:
    """:func:`roi_align` of each ROI on the feature map of its level, for all levels at once (CPU).

    Args:
        features: per level, float (N, C, H_l, W_l) on the CPU.
        rois: float (R, 5) rows ``(image index, x0, y0, x1, y1)`` in input pixels.
        level_of_roi: int64 (R,) index into ``features`` of each ROI's level.
        output_size, spatial_scales (per level), sampling_ratio, aligned: as for :func:`roi_align`.

    Returns:
        (R, C, Ph, Pw), channels-last in memory, ROIs in the order of ``rois``; float64 for float64
        features, else float32 (bfloat16/float16 features, e.g. under autocast, are pooled in float32).
    """
    rois = rois.detach().to(torch.promote_types(features[0].dtype, torch.float32))
    matrix = roi_align_matrix(rois, [(f.shape[0], f.shape[2], f.shape[3]) for f in features], output_size,
                              spatial_scales, sampling_ratio, aligned, level_of_roi)
    return _SparseRoIAlign.apply(matrix, tuple(output_size), *features)


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: Union[int, Tuple[int, int]],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """``torchvision.ops.roi_align`` with the same arguments and result.

    Args:
        features: float (N, C, H, W).
        rois: float (R, 5) rows ``(image index, x0, y0, x1, y1)`` in input pixels (XYXY absolute).
        output_size: Ph (= Pw) or (Ph, Pw).
        spatial_scale: feature pixels per input pixel.
        sampling_ratio: sampling points per bin side; <= 0 adapts it to each ROI
            (``ceil(roi side / bins)``).
        aligned: shift the box by -0.5 feature pixel (pixel-centre sampling).

    Returns:
        float (R, C, Ph, Pw), channels-last in memory on the CPU. CPU float32/float64 tensors
        use the sparse-matrix formulation; other devices call torchvision.
    """
    output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if features.device.type != "cpu" or rois.numel() == 0:
        return _torchvision_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
    return multilevel_roi_align([features], rois, torch.zeros(len(rois), dtype=torch.long), output_size,
                                [float(spatial_scale)], int(sampling_ratio), bool(aligned))


class ROIAlign(nn.Module):
    """detectron2's module form of :func:`roi_align`:
    ``ROIAlign(output_size, spatial_scale, sampling_ratio, aligned=True)(input, rois)``.

    ``input`` float (N, C, H, W); ``rois`` (R, 5) rows ``(image index, x0, y0, x1, y1)`` in input
    pixels; returns (R, C, Ph, Pw). ``aligned=True`` (the default here, as in detectron2) samples
    at pixel centres.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float, sampling_ratio: int,
                 aligned: bool = True) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"ROIAlign expects rois of shape (R, 5) (image index, x0, y0, x1, y1), got {tuple(rois.shape)}.")
        return roi_align(input, rois.to(input.dtype), self.output_size, self.spatial_scale, self.sampling_ratio,
                         self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")
