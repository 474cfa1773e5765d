import numpy as np
import pytest
import torch

from seg_research.structures import Boxes, BoxMode, pairwise_intersection, pairwise_ioa, pairwise_iou


def test_convert_list_xywh_to_xyxy_and_back():
    xyxy = BoxMode.convert([10, 20, 30, 40], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
    assert xyxy == [10, 20, 40, 60]
    assert isinstance(xyxy, list)
    assert BoxMode.convert(xyxy, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS) == [10, 20, 30, 40]


def test_convert_keeps_tuple_numpy_and_tensor_types():
    assert BoxMode.convert((1.5, 2.0, 3.0, 4.0), 1, 0) == (1.5, 2.0, 4.5, 6.0)

    array = np.array([[0, 0, 5, 5], [2, 3, 4, 1]], dtype=np.float32)
    out = BoxMode.convert(array, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 5, 5], [2, 3, 6, 4]])

    tensor = torch.tensor([5.0, 6.0, 9.0, 10.0], dtype=torch.float64)
    out = BoxMode.convert(tensor, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    assert out.dtype == torch.float64
    assert out.tolist() == [5.0, 6.0, 4.0, 4.0]


def test_convert_same_mode_returns_input():
    box = [1, 2, 3, 4]
    assert BoxMode.convert(box, BoxMode.XYXY_ABS, BoxMode.XYXY_ABS) is box


def test_convert_rejects_relative_mode_and_bad_shape():
    with pytest.raises(ValueError, match="XYXY_REL"):
        BoxMode.convert([0.1, 0.1, 0.5, 0.5], BoxMode.XYXY_REL, BoxMode.XYXY_ABS)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        BoxMode.convert([1, 2, 3], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)


def test_boxes_validation():
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        Boxes(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        Boxes([[0.0, 0.0, float("nan"), 1.0]])
    empty = Boxes([])
    assert empty.tensor.shape == (0, 4) and len(empty) == 0
    assert Boxes(np.array([[1, 2, 3, 4]])).tensor.dtype == torch.float32


def test_area_centers_nonempty_inside():
    boxes = Boxes([[0, 0, 10, 20], [5, 5, 6, 8], [3, 3, 3, 9]])
    assert boxes.area().tolist() == [200.0, 3.0, 0.0]
    assert boxes.get_centers().tolist() == [[5.0, 10.0], [5.5, 6.5], [3.0, 6.0]]
    assert boxes.nonempty().tolist() == [True, True, False]
    assert boxes.nonempty(threshold=1.0).tolist() == [True, False, False]
    assert boxes.inside_box((20, 10)).tolist() == [False, True, True]
    assert boxes.inside_box((20, 10), boundary_threshold=1).tolist() == [True, True, True]


def test_clip_and_scale_modify_boxes():
    boxes = Boxes([[-5, 2, 12, 20]])
    boxes.clip((15, 8))
    assert boxes.tensor.tolist() == [[0, 2, 8, 15]]
    boxes.scale(2.0, 0.5)
    assert boxes.tensor.tolist() == [[0, 1, 16, 7.5]]


def test_indexing_cat_iter_clone():
    boxes = Boxes([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]])
    assert boxes[1].tensor.tolist() == [[1, 1, 2, 2]]
    assert boxes[torch.tensor([True, False, True])].tensor[:, 0].tolist() == [0, 2]
    assert len(boxes[1:]) == 2
    assert [b.tolist() for b in boxes][2] == [2, 2, 3, 3]
    joined = Boxes.cat([boxes, boxes[0]])
    assert len(joined) == 4 and joined.tensor[3].tolist() == [0, 0, 1, 1]
    assert len(Boxes.cat([])) == 0
    copy = boxes.clone()
    copy.tensor[0, 0] = 9
    assert boxes.tensor[0, 0] == 0
    assert boxes.to("cpu").device == torch.device("cpu")


def test_pairwise_iou_hand_computed():
    a = Boxes([[0, 0, 4, 4]])
    b = Boxes([[2, 2, 6, 6], [10, 10, 12, 12], [0, 0, 4, 4]])
    # Overlap 2x2 = 4, union 16 + 16 - 4 = 28.
    torch.testing.assert_close(pairwise_iou(a, b), torch.tensor([[4 / 28, 0.0, 1.0]]))
    assert pairwise_intersection(a, b).tolist() == [[4.0, 0.0, 16.0]]


def test_pairwise_iou_zero_area_boxes_is_zero_not_nan():
    point = Boxes([[1, 1, 1, 1]])
    assert pairwise_iou(point, point).tolist() == [[0.0]]


def test_pairwise_ioa():
    a = Boxes([[0, 0, 4, 4]])
    b = Boxes([[2, 2, 6, 6], [1, 1, 2, 3], [3, 3, 3, 3]])
    # 4 / 16, fully inside (2 / 2), zero-area box gives 0.
    assert pairwise_ioa(a, b).tolist() == [[0.25, 1.0, 0.0]]
