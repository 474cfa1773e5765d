import numpy as np
import pytest
from PIL import Image

from seg_research.data import transforms as T


def _coded_image(h, w):
    """uint8 HxWx3 image whose pixel (i, j) is (i, j, i * w + j) (unique per pixel for h*w <= 256)."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([rows, cols, rows * w + cols], axis=-1).astype(np.uint8)


# ---------------------------------------------------------------- resize
def test_resize_shortest_edge_caps_long_side_480x640():
    # short edge 240: scale 0.5 -> (240, 320); long side 320 > 300: scale 300/320 -> (225, 300).
    assert T.ResizeShortestEdge.get_output_shape(480, 640, 240, 300) == (225, 300)
    aug = T.ResizeShortestEdge(240, 300, sample_style="choice")
    inputs = T.AugInput(np.zeros((480, 640, 3), np.uint8), sem_seg=np.zeros((480, 640), np.uint8),
                        boxes=np.array([[64.0, 48.0, 640.0, 480.0]]))
    tfms = T.apply_augmentations([aug], inputs)
    assert isinstance(tfms, T.TransformList) and isinstance(tfms[0], T.ResizeTransform)
    assert inputs.image.shape == (225, 300, 3) and inputs.image.dtype == np.uint8
    assert inputs.sem_seg.shape == (225, 300)
    # both axes scale by 300/640 = 225/480 = 0.46875
    np.testing.assert_allclose(inputs.boxes, [[30.0, 22.5, 300.0, 225.0]])


def test_resize_without_cap_and_rounding_half_up():
    # 480x640, short 300, no cap: scale 0.625 -> (300, 400)
    assert T.ResizeShortestEdge.get_output_shape(480, 640, 300, 10_000) == (300, 400)
    # 3x5 to short 2: 5 * 2/3 = 3.333 -> 3
    assert T.ResizeShortestEdge.get_output_shape(3, 5, 2, 100) == (2, 3)
    # 2x3 to short 3: 3 * 1.5 = 4.5 rounds half up -> 5
    assert T.ResizeShortestEdge.get_output_shape(2, 3, 3, 100) == (3, 5)


def test_resize_range_sampling_and_zero_is_noop():
    np.random.seed(0)
    aug = T.ResizeShortestEdge((100, 102), max_size=1000, sample_style="range")
    shorts = {aug.get_transform(np.zeros((200, 300, 3), np.uint8)).new_h for _ in range(60)}
    assert shorts == {100, 101, 102}
    assert isinstance(T.ResizeShortestEdge(0, 100).get_transform(np.zeros((4, 4, 3), np.uint8)), T.NoOpTransform)
    with pytest.raises(ValueError, match="sample_style='choice'"):
        T.ResizeShortestEdge((100, 200, 300), sample_style="range")


def test_resize_segmentation_is_nearest_at_pixel_centres():
    seg = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint8)
    down = T.ResizeTransform(2, 4, 1, 2).apply_segmentation(seg)
    # output pixel j samples source column floor((j + 0.5) * 2) = 1, 3 ; row floor(0.5 * 2) = 1
    np.testing.assert_array_equal(down, [[5, 7]])
    up = T.ResizeTransform(2, 2, 4, 4).apply_segmentation(np.array([[1, 2], [3, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(up, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 255, 255], [3, 3, 255, 255]])
    # same as Pillow's NEAREST; bool masks keep their dtype
    big = np.arange(35 * 23, dtype=np.uint8).reshape(35, 23)
    ours = T.ResizeTransform(35, 23, 17, 40).apply_segmentation(big)
    np.testing.assert_array_equal(ours, np.asarray(Image.fromarray(big).resize((40, 17), Image.Resampling.NEAREST)))
    mask = T.ResizeTransform(2, 2, 4, 4).apply_segmentation(np.array([[True, False], [False, False]]))
    assert mask.dtype == bool and mask.sum() == 4


def test_resize_image_is_bilinear_and_keeps_dtype_and_channels():
    img = np.array([[0, 100], [100, 200]], dtype=np.uint8)
    tfm = T.ResizeTransform(2, 2, 4, 4)
    out = tfm.apply_image(np.repeat(img[:, :, None], 3, axis=2))
    expected = np.asarray(Image.fromarray(img).resize((4, 4), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[:, :, 0], expected)
    assert len(np.unique(out[:, :, 0])) > 3  # interpolated values appear
    gray = tfm.apply_image(img[:, :, None])
    assert gray.shape == (4, 4, 1) and gray.dtype == np.uint8
    np.testing.assert_allclose(gray[:, :, 0], expected, atol=1)
    with pytest.raises(ValueError, match=r"\(h, w\) = \(2, 2\)"):
        tfm.apply_image(np.zeros((3, 3), np.uint8))
    assert tfm.inverse().apply_image(out).shape == (2, 2, 3)


# ---------------------------------------------------------------- flip
def test_horizontal_flip_box_polygon_and_masks():
    image = _coded_image(4, 10)
    tfm = T.RandomFlip(prob=1.0).get_transform(image)
    assert isinstance(tfm, T.HFlipTransform) and tfm.width == 10
    np.testing.assert_array_equal(tfm.apply_box(np.array([[1.0, 2.0, 4.0, 3.0]])), [[6.0, 2.0, 9.0, 3.0]])
    polygon = np.array([[1.0, 1.0], [4.0, 1.0], [4.0, 3.0]])
    (flipped,) = tfm.apply_polygons([polygon.copy()])
    np.testing.assert_array_equal(flipped, [[9.0, 1.0], [6.0, 1.0], [6.0, 3.0]])
    np.testing.assert_array_equal(tfm.apply_image(image)[:, :, 1], 9 - image[:, :, 1])
    np.testing.assert_array_equal(tfm.apply_segmentation(image[:, :, 2]), image[:, ::-1, 2])


def test_vertical_flip_and_probability():
    image = _coded_image(4, 10)
    tfm = T.RandomFlip(prob=1.0, horizontal=False, vertical=True).get_transform(image)
    assert isinstance(tfm, T.VFlipTransform)
    np.testing.assert_array_equal(tfm.apply_box(np.array([[1.0, 0.0, 4.0, 3.0]])), [[1.0, 1.0, 4.0, 4.0]])
    assert isinstance(T.RandomFlip(prob=0.0).get_transform(image), T.NoOpTransform)
    with pytest.raises(ValueError, match="exactly one axis"):
        T.RandomFlip(horizontal=True, vertical=True)


# ---------------------------------------------------------------- crop
def test_crop_image_bitmask_and_sem_seg_stay_aligned():
    np.random.seed(3)
    image = _coded_image(6, 8)
    sem_seg = image[:, :, 2].copy()
    bitmask = np.zeros((6, 8), dtype=bool)
    bitmask[2:5, 3:7] = True
    inputs = T.AugInput(image, sem_seg=sem_seg)
    (crop,) = T.apply_augmentations([T.RandomCrop("absolute", (3, 4))], inputs)
    assert isinstance(crop, T.CropTransform) and (crop.h, crop.w) == (3, 4)
    y0, x0 = crop.y0, crop.x0
    assert 0 <= y0 <= 3 and 0 <= x0 <= 4
    np.testing.assert_array_equal(inputs.image[:, :, 0], np.arange(y0, y0 + 3)[:, None].repeat(4, axis=1))
    np.testing.assert_array_equal(inputs.image[:, :, 1], np.arange(x0, x0 + 4)[None, :].repeat(3, axis=0))
    np.testing.assert_array_equal(inputs.sem_seg, inputs.image[:, :, 2])
    np.testing.assert_array_equal(crop.apply_segmentation(bitmask), bitmask[y0:y0 + 3, x0:x0 + 4])


def test_crop_clips_polygons_without_shapely():
    crop = T.CropTransform(x0=2, y0=1, w=4, h=2)
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    (clipped,) = crop.apply_polygons([square])
    # square [0,4]^2 within window x in [2,6], y in [1,3] is [2,4]x[1,3]; shifted by (-2,-1): [0,2]x[0,2]
    assert sorted(map(tuple, clipped.tolist())) == [(0.0, 0.0), (0.0, 2.0), (2.0, 0.0), (2.0, 2.0)]
    triangle_outside = np.array([[7.0, 0.0], [9.0, 0.0], [8.0, 5.0]])
    assert crop.apply_polygons([triangle_outside]) == []
    # a polygon crossing the window edge gets the intersection point (x=6 on the edge 4->8 at y=2)
    (partial,) = crop.apply_polygons([np.array([[4.0, 1.0], [8.0, 1.0], [8.0, 3.0], [4.0, 3.0]])])
    assert sorted(map(tuple, partial.tolist())) == [(2.0, 0.0), (2.0, 2.0), (4.0, 0.0), (4.0, 2.0)]


def test_crop_sizes_for_each_type():
    assert T.RandomCrop("relative", (0.5, 0.25)).get_crop_size((480, 640)) == (240, 160)
    assert T.RandomCrop("absolute", (1000, 100)).get_crop_size((480, 640)) == (480, 100)
    np.random.seed(0)
    for _ in range(20):
        h, w = T.RandomCrop("relative_range", (0.5, 0.5)).get_crop_size((100, 200))
        assert 50 <= h <= 100 and 100 <= w <= 200
        h, w = T.RandomCrop("absolute_range", (30, 150)).get_crop_size((100, 200))
        assert 30 <= h <= 100 and 30 <= w <= 150
    with pytest.raises(ValueError, match="crop_type must be one of"):
        T.RandomCrop("percent", (0.5, 0.5))


# ---------------------------------------------------------------- photometric
def test_brightness_multiplies_and_clips():
    image = np.array([[[10, 100, 200]]], dtype=np.uint8)
    tfm = T.RandomBrightness(1.5, 1.5).get_transform(image)
    out = tfm.apply_image(image)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[15, 150, 255]]])  # 300 clipped to 255
    np.testing.assert_array_equal(T.RandomBrightness(0.5, 0.5).get_transform(image).apply_image(image),
                                  [[[5, 50, 100]]])
    coords = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(tfm.apply_coords(coords.copy()), coords)
    seg = np.array([[1, 2]], dtype=np.uint8)
    np.testing.assert_array_equal(tfm.apply_segmentation(seg), seg)


def test_contrast_scales_around_mean():
    image = np.array([[10, 20, 30, 40]], dtype=np.uint8)  # mean 25
    out = T.RandomContrast(2.0, 2.0).get_transform(image).apply_image(image)
    # 2 * x - 25: -5 -> 0 (clipped), 15, 35, 55
    np.testing.assert_array_equal(out, [[0, 15, 35, 55]])
    assert out.dtype == np.uint8


# ---------------------------------------------------------------- composition
def test_augmentation_list_applies_in_order_and_accepts_transforms():
    image = _coded_image(4, 6)
    boxes = np.array([[0.0, 0.0, 2.0, 1.0]])
    inputs = T.AugInput(image, boxes=boxes)
    tfms = T.apply_augmentations([T.HFlipTransform(6), T.ResizeShortestEdge(8, sample_style="choice")], inputs)
    assert [type(t).__name__ for t in tfms] == ["HFlipTransform", "ResizeTransform"]
    # flip -> [4, 0, 6, 1], then x2 scale -> [8, 0, 12, 2]
    np.testing.assert_array_equal(inputs.boxes, [[8.0, 0.0, 12.0, 2.0]])
    assert inputs.image.shape == (8, 12, 3)
    np.testing.assert_array_equal(tfms.apply_box(boxes), inputs.boxes)
    with pytest.raises(TypeError, match="AugInput"):
        T.apply_augmentations([], image)
    with pytest.raises(ValueError, match="does not match"):
        T.AugInput(image, sem_seg=np.zeros((3, 6), np.uint8))
