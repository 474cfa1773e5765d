"""seg_research.layers.roi_align: the sparse-matrix RoIAlign gives torchvision's values and gradients."""
import pytest
import torch
from torchvision.ops import roi_align as torchvision_roi_align

from seg_research.layers.roi_align import roi_align, roi_align_matrix


def _rois() -> torch.Tensor:
    """(image, x0, y0, x1, y1) on an 80×64 input: inside, across the border, beyond it, degenerate."""
    return torch.tensor([
        [0, 8.0, 4.0, 40.0, 30.0],
        [1, -12.0, -6.0, 20.0, 18.0],
        [1, 60.0, 50.0, 95.0, 90.0],
        [0, 70.0, 10.0, 70.0, 10.0],
        [1, 0.0, 0.0, 80.0, 64.0],
        [0, 30.5, 21.25, 33.0, 22.0],
    ], dtype=torch.float64)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_values_and_gradients_equal_torchvision(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 16, 20, dtype=torch.float64, generator=g, requires_grad=True)
    rois = _rois()
    expected = torchvision_roi_align(features, rois, (5, 4), 0.25, sampling_ratio, aligned)
    ours = roi_align(features, rois, (5, 4), 0.25, sampling_ratio, aligned)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)
    grad_output = torch.randn(expected.shape, dtype=torch.float64, generator=g)
    (expected_grad,) = torch.autograd.grad(expected, features, grad_output)
    (grad,) = torch.autograd.grad(ours, features, grad_output)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)


def test_matrix_rows_hold_hand_computed_bilinear_weights():
    # one ROI covering feature pixels x in [1, 3], y in [0, 2] (scale 1, not aligned), 1×1 output,
    # sampling_ratio 1: a single sample at the box centre (2, 1), which lands on pixel (y=1, x=2)
    matrix = roi_align_matrix(torch.tensor([[0, 1.0, 0.0, 3.0, 2.0]]), [(1, 4, 5)], (1, 1), [1.0], 1, False).to_dense()
    assert matrix.shape == (1, 20)
    assert matrix[0].nonzero().flatten().tolist() == [1 * 5 + 2] and matrix[0, 7] == 1.0
    # 2×2 samples at x in {1.5, 2.5}, y in {0.5, 1.5}: each spreads 1/4 bilinearly over 4 pixels
    matrix = roi_align_matrix(torch.tensor([[0, 1.0, 0.0, 3.0, 2.0]]), [(1, 4, 5)], (1, 1), [1.0], 2, False).to_dense()
    expected = torch.zeros(4, 5)
    expected[0:3, 1:4] = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    torch.testing.assert_close(matrix.view(4, 5), expected)


def test_float32_output_shape_layout_and_empty_rois():
    features = torch.randn(2, 8, 16, 20)
    out = roi_align(features, _rois().float(), 7, 0.25, 0, True)
    assert out.shape == (6, 8, 7, 7) and out.dtype == torch.float32
    torch.testing.assert_close(out, torchvision_roi_align(features, _rois().float(), 7, 0.25, 0, True),
                               rtol=1e-5, atol=1e-6)
    assert roi_align(features, torch.zeros(0, 5), 7, 0.25, 0, True).shape == (0, 8, 7, 7)
