"""Property tests of the mask structures on hostile input: every call returns a correct result
or raises ValueError; pycocotools never gets input that crashes the process or runs unbounded."""
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seg_research.structures import BitMasks, PolygonMasks, check_rle, polygons_to_bitmask, rle_to_bitmask

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

coordinates = st.one_of(
    st.floats(-20, 40),
    st.floats(allow_nan=True, allow_infinity=True),  # NaN, inf, 1e308
    st.sampled_from([1e9, -1e9, 1e12, 1e20]),  # pycocotools segfaults on these unless clipped
    st.integers(-10**12, 10**12),
)
polygons = st.one_of(
    st.lists(coordinates, min_size=0, max_size=12),  # any length: < 3 points, odd
    st.lists(st.tuples(coordinates, coordinates), min_size=3, max_size=6).map(lambda pts: [v for p in pts for v in p]),
)
sizes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@SETTINGS
@given(polygon_list=st.lists(polygons, max_size=3), size=sizes)
def test_polygons_to_bitmask_is_exact_or_refuses(polygon_list, size, outcomes):
    height, width = size
    try:
        mask = polygons_to_bitmask(polygon_list, height, width)
    except ValueError as e:
        outcomes.record("polygons_to_bitmask", e)
        bad = [p for p in polygon_list if len(p) < 6 or len(p) % 2 or not all(math.isfinite(v) for v in p)]
        assert bad, f"refused valid polygons: {e}"
        return
    outcomes.record("polygons_to_bitmask")
    assert mask.shape == (height, width) and mask.dtype == bool
    near = [p for p in polygon_list if all(-width <= x <= 2 * width for x in p[0::2])
            and all(-height <= y <= 2 * height for y in p[1::2])]
    if len(near) == len(polygon_list) and polygon_list:  # not clipped: exactly pycocotools' rasterization
        expected = mask_util.decode(mask_util.merge(mask_util.frPyObjects(
            [np.asarray(p, dtype=np.float64) for p in polygon_list], height, width))).astype(bool)
        np.testing.assert_array_equal(mask, expected)


def test_huge_polygons_are_clipped_not_crashing():
    # pycocotools alone segfaults (>= 1e9) or runs for minutes (1e8) on these
    square = [-1e12, -1e12, 1e12, -1e12, 1e12, 1e12, -1e12, 1e12]
    assert polygons_to_bitmask([square], 5, 7).all()
    # a triangle whose right-angle corner is the pixel grid origin: covers the pixels under x + y <= 4
    triangle = [0, 0, 1e9, 0, 0, 1e9]
    mask = polygons_to_bitmask([triangle], 4, 4)
    assert mask.all()
    far_away = [1e9, 1e9, 2e9, 1e9, 2e9, 2e9]
    assert not polygons_to_bitmask([far_away], 4, 4).any()


rle_counts = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=20),
    st.text(alphabet="0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmno", max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(-5, 200), max_size=8),
    st.lists(st.integers(0, 20), min_size=1, max_size=8),
    st.lists(st.one_of(st.floats(), st.text(max_size=2), st.booleans()), min_size=1, max_size=3),
    st.none(), st.integers(),
)
rle_sizes = st.one_of(st.lists(st.integers(0, 12), min_size=2, max_size=2),
                      st.lists(st.integers(-2, 12), min_size=0, max_size=3), st.text(max_size=3), st.none(),
                      st.tuples(st.floats(0, 10), st.floats(0, 10)))


@SETTINGS
@given(size=rle_sizes, counts=rle_counts, drop=st.sampled_from([None, "size", "counts"]))
def test_rle_to_bitmask_decodes_or_refuses(size, counts, drop, outcomes):
    rle = {"size": size, "counts": counts}
    if drop:
        del rle[drop]
    try:
        mask = rle_to_bitmask(rle)
    except ValueError as e:
        outcomes.record("rle_to_bitmask (garbage)", e)
        return
    outcomes.record("rle_to_bitmask (garbage)")
    assert mask.shape == tuple(size) and mask.dtype == bool


@SETTINGS
@given(mask=st.integers(1, 10).flatmap(lambda h: st.integers(1, 10).flatmap(
    lambda w: st.lists(st.booleans(), min_size=h * w, max_size=h * w).map(lambda v: np.array(v).reshape(h, w)))),
    cut=st.integers(0, 30), wrong=st.integers(-3, 3))
def test_valid_rle_round_trips_and_damaged_rle_is_refused(mask, cut, wrong, outcomes):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    np.testing.assert_array_equal(rle_to_bitmask(rle), mask)
    np.testing.assert_array_equal(rle_to_bitmask({"size": rle["size"], "counts": rle["counts"].decode()}), mask)
    damaged = {"size": [rle["size"][0] + wrong, rle["size"][1]], "counts": rle["counts"][: len(rle["counts"]) - cut]}
    try:
        decoded = rle_to_bitmask(damaged)
    except ValueError as e:
        outcomes.record("rle_to_bitmask (damaged)", e)
        assert wrong != 0 or cut > 0
        return
    outcomes.record("rle_to_bitmask (damaged)")
    assert decoded.shape == tuple(damaged["size"])  # e.g. cutting only a trailing run of zeros


def test_check_rle_messages():
    assert check_rle({"size": [2, 3], "counts": [1, 5]}) == (2, 3)
    with pytest.raises(ValueError, match="sum to 5 but size 2x3 has 6 pixels"):
        check_rle({"size": [2, 3], "counts": [1, 4]})
    with pytest.raises(ValueError, match="negative run length"):
        check_rle({"size": [2, 3], "counts": [7, -1]})
    with pytest.raises(ValueError, match="outside the RLE alphabet"):
        check_rle({"size": [2, 3], "counts": "6~"})
    with pytest.raises(ValueError, match="truncated"):
        check_rle({"size": [2, 3], "counts": "6P"})  # 'P' = 0x20 + 48: a value continues after it
    with pytest.raises(ValueError, match=r"'size' must be \[height, width\]"):
        check_rle({"size": [2.0, 3], "counts": [6]})


instances = st.lists(st.one_of(polygons, st.lists(polygons, max_size=2), st.text(max_size=3), st.integers()),
                     max_size=3)


@SETTINGS
@given(raw=st.one_of(instances, st.text(max_size=3), st.none()), boxes=st.lists(
    st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(0, 0.2), st.floats(0, 60)), min_size=3, max_size=3))
def test_polygon_masks_build_and_crop_or_refuse(raw, boxes, outcomes):
    try:
        masks = PolygonMasks(raw)
    except ValueError as e:
        outcomes.record("PolygonMasks", e)
        return
    outcomes.record("PolygonMasks")
    box_tensor = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes[: len(masks)]], dtype=torch.float32)
    crops = masks.crop_and_resize(box_tensor.reshape(-1, 4), 7)
    assert crops.shape == (len(masks), 7, 7) and set(crops.unique().tolist()) <= {0.0, 1.0}
    try:
        boxes = masks.get_bounding_boxes()  # coordinates beyond float32 (3.4e38) give no box
        areas = masks.area()  # an instance too large to rasterize gives no area
    except ValueError as e:
        outcomes.record("PolygonMasks", e)
        return
    assert boxes.tensor.shape == (len(masks), 4) and (areas >= 0).all()


@SETTINGS
@given(shape=st.lists(st.integers(0, 4), max_size=5))
def test_bitmasks_shape_checked(shape, outcomes):
    try:
        masks = BitMasks(torch.zeros(shape))
    except ValueError as e:
        outcomes.record("BitMasks", e)
        assert len(shape) != 3
        return
    outcomes.record("BitMasks")
    assert len(masks) == shape[0] and masks.get_bounding_boxes().tensor.shape == (shape[0], 4)


@settings(max_examples=300, deadline=None)
@given(size=st.tuples(st.integers(0, 12), st.integers(0, 12)),
       counts=st.text(alphabet=[chr(c) for c in range(48, 112)], max_size=12))
def test_compressed_rle_strings_never_crash_pycocotools(size, counts, outcomes):
    # pycocotools' decode writes out of bounds ("munmap_chunk(): invalid pointer") on most of these
    try:
        mask = rle_to_bitmask({"size": list(size), "counts": counts})
    except ValueError as e:
        outcomes.record("rle_to_bitmask (compressed strings)", e)
        return
    outcomes.record("rle_to_bitmask (compressed strings)")
    assert mask.shape == size
    assert mask.sum() == mask_util.area({"size": list(size), "counts": counts.encode()})
