"""The augmentations Mask2Former's mappers add to seg_research.data.transforms (detectron2's ResizeScale,
FixedSizeCrop and RandomCrop_CategoryAreaConstraint), by hand."""
import numpy as np
import pytest

from seg_research.data import transforms as T


def test_resize_scale_fits_the_scaled_target():
    # (480, 640) into 0.5 * (1024, 1024) = 512: scale min(512/480, 512/640) = 0.8 -> (384, 512).
    aug = T.ResizeScale(min_scale=0.5, max_scale=0.5, target_height=1024, target_width=1024)
    tfm = aug.get_transform(np.zeros((480, 640, 3), np.uint8))
    assert (tfm.new_h, tfm.new_w) == (384, 512)
    np.random.seed(3)
    s = np.random.uniform(0.1, 2.0)
    np.random.seed(3)
    tfm = T.ResizeScale(0.1, 2.0, 100, 200).get_transform(np.zeros((50, 50, 3), np.uint8))
    side = int(round(50 * min(s * 100 / 50, s * 200 / 50)))
    assert (tfm.new_h, tfm.new_w) == (side, side)
    with pytest.raises(ValueError, match="MIN_SCALE"):
        T.ResizeScale(2.0, 1.0, 10, 10)


def test_fixed_size_crop_crops_the_large_side_and_pads_the_small_one():
    image = np.arange(100 * 50 * 3, dtype=np.int64).reshape(100, 50, 3).astype(np.uint8)
    labels = np.ones((100, 50), np.int64)
    np.random.seed(7)
    u = np.random.uniform(0.0, 1.0)
    np.random.seed(7)
    aug_input = T.AugInput(image, sem_seg=labels)
    tfms = T.AugmentationList([T.FixedSizeCrop((64, 64))])(aug_input)
    y0 = int(round(u * 36))
    assert aug_input.image.shape == (64, 64, 3)
    np.testing.assert_array_equal(aug_input.image[:, :50], image[y0:y0 + 64])
    assert (aug_input.image[:, 50:] == 128).all()
    assert (aug_input.sem_seg[:, :50] == 1).all() and (aug_input.sem_seg[:, 50:] == 0).all()
    # boxes move with the crop
    np.testing.assert_allclose(tfms.apply_box(np.array([[10.0, 40.0, 20.0, 50.0]])), [[10, 40 - y0, 20, 50 - y0]])
    no_pad = T.FixedSizeCrop((64, 64), pad=False).get_transform(image)
    assert no_pad.apply_image(image).shape == (64, 50, 3)


def test_category_area_constraint_rejects_single_category_crops():
    # Left 6 columns class 0, right 2 class 1, a column of ignore (255): a 4x4 crop holds both classes only
    # when it reaches the right part.
    labels = np.zeros((8, 9), np.int64)
    labels[:, 6:8] = 1
    labels[:, 8] = 255
    aug = T.RandomCrop_CategoryAreaConstraint("absolute", (4, 4), 0.8, ignored_category=255)
    for seed in range(20):
        np.random.seed(seed)
        crop = aug.get_transform(np.zeros((8, 9, 3), np.uint8), labels)
        window = labels[crop.y0:crop.y0 + 4, crop.x0:crop.x0 + 4]
        counts = np.bincount(window[window != 255].ravel(), minlength=2)
        assert crop.x0 >= 3 and counts.max() < 0.8 * counts.sum(), seed
    # With the constraint off it draws like RandomCrop.
    np.random.seed(0)
    plain = T.RandomCrop("absolute", (4, 4)).get_transform(np.zeros((8, 9, 3), np.uint8))
    np.random.seed(0)
    same = T.RandomCrop_CategoryAreaConstraint("absolute", (4, 4), 1.0).get_transform(np.zeros((8, 9, 3)), None)
    assert (plain.x0, plain.y0) == (same.x0, same.y0)
    with pytest.raises(ValueError, match="sem_seg"):
        aug.get_transform(np.zeros((8, 9, 3)), None)
