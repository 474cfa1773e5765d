"""fast_rcnn_inference_single_image when no ROI has finite boxes and scores (e.g. a random-init model whose
box deltas overflow): no detection instead of a reshape error."""
import torch

from seg_research.modeling.roi_heads.fast_rcnn import fast_rcnn_inference_single_image


def test_only_non_finite_rois_give_no_detection():
    boxes = torch.tensor([[float("nan"), 0.0, 4.0, 4.0], [0.0, 0.0, float("inf"), 4.0]])
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    result, roi_index = fast_rcnn_inference_single_image(boxes, scores, (8, 8), 0.05, 0.5, 100)
    assert len(result) == 0 and roi_index.numel() == 0 and result.pred_boxes.tensor.shape == (0, 4)


def test_finite_roi_kept():
    boxes = torch.tensor([[1.0, 1.0, 5.0, 6.0], [float("nan"), 0.0, 4.0, 4.0]])
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    result, roi_index = fast_rcnn_inference_single_image(boxes, scores, (8, 8), 0.05, 0.5, 100)
    assert result.pred_boxes.tensor.tolist() == [[1.0, 1.0, 5.0, 6.0]] and roi_index.tolist() == [0]
