import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from seg_research.structures import BitMasks, PolygonMasks, bitmask_to_rle, polygons_to_bitmask, rle_to_bitmask


def _square(x0, y0, side):
    return [x0, y0, x0 + side, y0, x0 + side, y0 + side, x0, y0 + side]


def _circle(cx, cy, radius, points=64):
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1).reshape(-1)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


# ---------------------------------------------------------------- rasterization helpers
def test_polygons_to_bitmask_matches_hand_made_mask():
    # An L: 4x2 bar on top, 2x2 block below its left half. Pixel (i, j) covers [j, j+1) x [i, i+1).
    l_shape = np.array([0, 0, 4, 0, 4, 2, 2, 2, 2, 4, 0, 4], dtype=np.float64)
    expected = np.array(
        [
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    mask = polygons_to_bitmask([l_shape], 5, 5)
    assert mask.dtype == bool and mask.shape == (5, 5)
    np.testing.assert_array_equal(mask, expected)


def test_polygons_to_bitmask_union_and_empty():
    mask = polygons_to_bitmask([_square(0, 0, 1), _square(2, 1, 2)], 3, 4)
    expected = np.array([[1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)
    assert not polygons_to_bitmask([], 3, 4).any()


def test_rle_roundtrip_compressed():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 5)) > 0.5
    rle = bitmask_to_rle(mask)
    assert rle["size"] == [7, 5] and isinstance(rle["counts"], str)
    restored = rle_to_bitmask(json.loads(json.dumps(rle)))
    np.testing.assert_array_equal(restored, mask)
    bytes_rle = {"size": rle["size"], "counts": rle["counts"].encode("utf-8")}
    np.testing.assert_array_equal(rle_to_bitmask(bytes_rle), mask)
    np.testing.assert_array_equal(bitmask_to_rle(torch.from_numpy(mask))["counts"], rle["counts"])


def test_rle_uncompressed_counts():
    # Column-major runs: 2 zeros, 3 ones, 4 zeros over a 3x3 image.
    mask = rle_to_bitmask({"size": [3, 3], "counts": [2, 3, 4]})
    expected = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(mask_util.decode(bitmask_to_rle(mask)).astype(bool), expected)


def test_rle_errors():
    with pytest.raises(ValueError, match="sum to 8 but size 3x3 has 9 pixels"):
        rle_to_bitmask({"size": [3, 3], "counts": [2, 3, 3]})
    with pytest.raises(ValueError, match="'size'"):
        rle_to_bitmask({"counts": "abc"})
    with pytest.raises(ValueError, match=r"\(2, 3, 3\)"):
        bitmask_to_rle(np.zeros((2, 3, 3)))


# ---------------------------------------------------------------- PolygonMasks
def test_polygon_validation_names_instance_and_polygon():
    with pytest.raises(ValueError, match="instance 1, polygon 0.*got 5"):
        PolygonMasks([[_square(0, 0, 1)], [[0, 0, 1, 1, 2]]])
    with pytest.raises(ValueError, match="instance 0, polygon 1.*got 4"):
        PolygonMasks([[_square(0, 0, 1), [0, 0, 1, 1]]])
    with pytest.raises(ValueError, match="instance 0 is a flat list of numbers"):
        PolygonMasks([_square(0, 0, 1)])
    with pytest.raises(ValueError, match="instance 0 must be a list of polygons"):
        PolygonMasks([np.array(_square(0, 0, 1))])


def test_polygon_area_of_square_is_side_squared():
    masks = PolygonMasks([[_square(3, 2, 5)], [_square(-2, -2, 3)], [_square(0, 0, 2), _square(1, 1, 2)], []])
    # Third instance: two overlapping 2x2 squares, union 4 + 4 - 1 = 7. Fourth: no polygon.
    assert masks.area().tolist() == [25, 9, 7, 0]
    assert masks.nonempty().tolist() == [True, True, True, False]


def test_polygon_bounding_boxes():
    masks = PolygonMasks([[_square(3, 2, 5), [10, 1, 12, 1, 11, 4]], []])
    assert masks.get_bounding_boxes().tensor.tolist() == [[3, 1, 12, 7], [0, 0, 0, 0]]


def test_polygon_crop_and_resize_full_and_half_box():
    masks = PolygonMasks([[_square(2, 2, 4)], [_square(2, 2, 4)]])
    boxes = torch.tensor([[2.0, 2.0, 6.0, 6.0], [2.0, 2.0, 10.0, 6.0]])
    out = masks.crop_and_resize(boxes, 4)
    assert out.shape == (2, 4, 4) and out.dtype == torch.float32
    assert (out[0] == 1).all()
    assert (out[1, :, :2] == 1).all() and (out[1, :, 2:] == 0).all()
    with pytest.raises(ValueError, match="1 boxes for 2 instances"):
        masks.crop_and_resize(boxes[:1], 4)


def test_polygon_indexing_and_cat():
    masks = PolygonMasks([[_square(0, 0, 1)], [_square(0, 0, 2)], [_square(0, 0, 3)]])
    assert masks[1].area().tolist() == [4]
    assert masks[1:].area().tolist() == [4, 9]
    assert masks[[2, 0]].area().tolist() == [9, 1]
    assert masks[torch.tensor([True, False, True])].area().tolist() == [1, 9]
    assert masks[np.array([1])].area().tolist() == [4]
    with pytest.raises(IndexError, match=r"shape \(3,\)"):
        masks[torch.tensor([True, False])]
    joined = PolygonMasks.cat([masks, masks[0]])
    assert len(joined) == 4 and joined.area().tolist() == [1, 4, 9, 1]
    assert masks.polygons[0][0].dtype == np.float64


# ---------------------------------------------------------------- BitMasks
def test_bitmasks_from_polygons_area_boxes():
    polygons = PolygonMasks([[_square(1, 2, 3)], []])
    bitmasks = BitMasks.from_polygon_masks(polygons, 6, 7)
    assert bitmasks.tensor.shape == (2, 6, 7) and bitmasks.tensor.dtype == torch.bool
    np.testing.assert_array_equal(bitmasks.tensor[0].numpy(), polygons_to_bitmask(polygons.polygons[0], 6, 7))
    assert bitmasks.area().tolist() == [9, 0]
    assert bitmasks.nonempty().tolist() == [True, False]
    assert bitmasks.get_bounding_boxes().tensor.tolist() == [[1, 2, 4, 5], [0, 0, 0, 0]]
    assert BitMasks.from_polygon_masks([[_square(0, 0, 1)]], 2, 2).area().tolist() == [1]


def test_bitmask_single_pixel_box():
    mask = torch.zeros(1, 5, 6, dtype=torch.uint8)
    mask[0, 2, 3] = 255
    assert BitMasks(mask).get_bounding_boxes().tensor.tolist() == [[3, 2, 4, 3]]


def test_bitmasks_crop_and_resize_full_and_half_box():
    tensor = torch.zeros(2, 8, 12, dtype=torch.bool)
    tensor[:, 2:6, 2:6] = True
    masks = BitMasks(tensor)
    boxes = torch.tensor([[2.0, 2.0, 6.0, 6.0], [2.0, 2.0, 10.0, 6.0]])
    out = masks.crop_and_resize(boxes, 4)
    assert out.shape == (2, 4, 4) and out.dtype == torch.float32
    assert (out[0] == 1).all()
    assert (out[1, :, :2] == 1).all() and (out[1, :, 2:] == 0).all()


def test_bitmasks_and_polygons_crop_and_resize_agree():
    polygons = PolygonMasks([[_circle(20, 14, 9)], [_circle(10, 10, 6), _square(18, 20, 8)]])
    bitmasks = BitMasks.from_polygon_masks(polygons, 32, 36)
    boxes = polygons.get_bounding_boxes().tensor
    from_bits = bitmasks.crop_and_resize(boxes, 28) >= 0.5
    from_polys = polygons.crop_and_resize(boxes, 28) == 1
    for i in range(2):
        assert _iou(from_bits[i].numpy(), from_polys[i].numpy()) > 0.9


def test_bitmasks_validation_indexing_cat():
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        BitMasks(torch.zeros(4, 4))
    tensor = torch.zeros(3, 4, 4, dtype=torch.bool)
    tensor[1, 0, 0] = True
    tensor[2] = True
    masks = BitMasks(tensor)
    assert masks[1].tensor.shape == (1, 4, 4)
    assert masks[masks.nonempty()].area().tolist() == [1, 16]
    assert masks[torch.tensor([2, 0])].area().tolist() == [16, 0]
    assert BitMasks.cat([masks, masks[2]]).area().tolist() == [0, 1, 16, 16]
    assert masks.image_size == (4, 4) and len(masks) == 3
    assert masks.to("cpu").tensor.dtype == torch.bool
