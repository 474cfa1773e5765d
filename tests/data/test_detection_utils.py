import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from seg_research.config import get_cfg
from seg_research.data import DataError
from seg_research.data import detection_utils as utils
from seg_research.data import transforms as T
from seg_research.structures import BitMasks, BoxMode, PolygonMasks


def _rle(mask):
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


# ---------------------------------------------------------------- read_image
def test_read_image_formats(tmp_path):
    pixels = np.array([[[10, 20, 30], [40, 50, 60]]], dtype=np.uint8)  # 1x2 RGB
    path = str(tmp_path / "a.png")
    Image.fromarray(pixels).save(path)
    rgb = utils.read_image(path, "RGB")
    np.testing.assert_array_equal(rgb, pixels)
    bgr = utils.read_image(path, "BGR")
    np.testing.assert_array_equal(bgr, [[[30, 20, 10], [60, 50, 40]]])
    assert bgr.flags["C_CONTIGUOUS"] and bgr.dtype == np.uint8
    gray = utils.read_image(path, "L")
    assert gray.shape == (1, 2, 1)
    # ITU-R 601-2 luma: (10*299 + 20*587 + 30*114) / 1000 = 18.09 -> 18
    assert gray[0, 0, 0] == 18
    with pytest.raises(ValueError, match="INPUT.FORMAT"):
        utils.read_image(path, "HSV")


@pytest.mark.parametrize("orientation", [6, 8])
def test_read_image_applies_exif_orientation(tmp_path, orientation):
    stored = np.zeros((40, 60, 3), dtype=np.uint8)  # 40 high, 60 wide
    stored[:, :30] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = str(tmp_path / "rotated.jpg")
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    image = utils.read_image(path, "BGR")
    assert image.shape == (60, 40, 3)
    # 6: rotate 90 degrees clockwise to display, the left half goes to the top;
    # 8: 90 degrees counter-clockwise, it goes to the bottom.
    top, bottom = image[:25].mean(), image[35:].mean()
    assert (top > 200 and bottom < 50) if orientation == 6 else (top < 50 and bottom > 200)


def test_read_image_missing_empty_corrupt_truncated(tmp_path):
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(DataError, match="does not exist.*SEG_DATASETS") as e:
        utils.read_image(missing)
    assert e.value.file_name == missing and "nope.jpg" in str(e.value)

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty \(0 bytes\).*Re-download") as e:
        utils.read_image(str(empty))
    assert "empty.jpg" in str(e.value)

    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not an image")
    with pytest.raises(DataError, match="cannot be decoded.*corrupt") as e:
        utils.read_image(str(corrupt))
    assert "corrupt.jpg" in str(e.value)

    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[:400])
    with pytest.raises(DataError, match="cannot be decoded.*truncated"):
        utils.read_image(str(truncated))


def test_read_sem_seg_rejects_color_png(tmp_path):
    path = str(tmp_path / "seg.png")
    Image.fromarray(np.array([[0, 1], [255, 2]], dtype=np.uint8)).save(path)
    np.testing.assert_array_equal(utils.read_sem_seg(path), [[0, 1], [255, 2]])
    color = str(tmp_path / "color.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(color)
    with pytest.raises(DataError, match="single-channel.*shape \\(2, 2, 3\\)"):
        utils.read_sem_seg(color)


# ---------------------------------------------------------------- check_image_size
def test_check_image_size_fills_and_reports():
    image = np.zeros((4, 6, 3), np.uint8)
    record = {"file_name": "x.jpg", "image_id": 7}
    utils.check_image_size(record, image)
    assert (record["height"], record["width"]) == (4, 6)

    swapped = {"file_name": "x.jpg", "image_id": 7, "height": 6, "width": 4}
    with pytest.raises(DataError) as e:
        utils.check_image_size(swapped, image)
    text = str(e.value)
    assert "(height, width) = (6, 4)" in text and "read is (4, 6)" in text
    assert "EXIF orientation" in text and "'x.jpg'" in text and "record 7" in text

    other = {"file_name": "y.jpg", "image_id": 8, "height": 5, "width": 6}
    with pytest.raises(DataError, match=r"\(5, 6\).*\(4, 6\).*Fix the record") as e:
        utils.check_image_size(other, image)
    assert "EXIF" not in str(e.value)


# ---------------------------------------------------------------- transform_instance_annotations
def test_transform_annotation_box_polygon_and_rle():
    h, w = 6, 8
    mask = np.zeros((h, w), dtype=bool)
    mask[2:5, 5:7] = True
    anno = {"bbox": [5, 2, 4, 3], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1,
            "segmentation": [[1.0, 1.0, 4.0, 1.0, 4.0, 3.0]]}
    flip = T.HFlipTransform(w)
    out = utils.transform_instance_annotations(anno, [flip], (h, w))
    # XYXY [5, 2, 9, 5] -> flipped [-1, 2, 3, 5] -> clipped [0, 2, 3, 5]
    np.testing.assert_array_equal(out["bbox"], [0.0, 2.0, 3.0, 5.0])
    assert out["bbox_mode"] == BoxMode.XYXY_ABS
    np.testing.assert_array_equal(out["segmentation"][0], [7.0, 1.0, 4.0, 1.0, 4.0, 3.0])
    assert anno["bbox"] == [5, 2, 4, 3] and anno["segmentation"][0][0] == 1.0  # input untouched

    rle_anno = dict(anno, segmentation=_rle(mask))
    out = utils.transform_instance_annotations(rle_anno, flip, (h, w))
    assert out["segmentation"].dtype == bool
    np.testing.assert_array_equal(out["segmentation"], mask[:, ::-1])

    with pytest.raises(DataError, match=r"shape \(6, 8\).*\(height, width\) = \(3, 4\)"):
        utils.transform_instance_annotations(rle_anno, [], (3, 4))
    with pytest.raises(DataError, match=r"\(3 points\); got 3.*record 9"):
        utils.transform_instance_annotations(dict(anno, segmentation=[[1.0, 2.0, 3.0]], id=9), [], (h, w))


# ---------------------------------------------------------------- annotations_to_instances
def _annos():
    mask = np.zeros((6, 8), dtype=bool)
    mask[2:5, 5:7] = True
    return [
        {"bbox": [1.0, 1.0, 4.0, 3.0], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0,
         "segmentation": [[1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0]]},
        {"bbox": [5.0, 2.0, 2.0, 3.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": np.int64(2),
         "segmentation": _rle(mask)},
    ]


def test_annotations_to_instances_bitmask():
    inst = utils.annotations_to_instances(_annos(), (6, 8), mask_format="bitmask")
    assert len(inst) == 2 and inst.image_size == (6, 8)
    torch.testing.assert_close(inst.gt_boxes.tensor, torch.tensor([[1.0, 1.0, 4.0, 3.0], [5.0, 2.0, 7.0, 5.0]]))
    assert inst.gt_classes.dtype == torch.int64 and inst.gt_classes.tolist() == [0, 2]
    assert isinstance(inst.gt_masks, BitMasks)
    expected = torch.zeros(2, 6, 8, dtype=torch.bool)
    expected[0, 1:3, 1:4] = True  # polygon [1,4]x[1,3] covers rows 1..2, cols 1..3
    expected[1, 2:5, 5:7] = True
    assert torch.equal(inst.gt_masks.tensor, expected)


def test_annotations_to_instances_polygon_and_errors():
    annos = _annos()[:1]
    inst = utils.annotations_to_instances(annos, (6, 8))
    assert isinstance(inst.gt_masks, PolygonMasks)
    np.testing.assert_array_equal(inst.gt_masks.polygons[0][0], [1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0])

    with pytest.raises(DataError, match="MASK_FORMAT to 'bitmask'"):
        utils.annotations_to_instances(_annos(), (6, 8), mask_format="polygon")
    with pytest.raises(DataError, match=r"shape \(6, 8\).*\(height, width\) = \(6, 9\)"):
        utils.annotations_to_instances(_annos(), (6, 9), mask_format="bitmask")
    for fmt in ("polygon", "bitmask"):
        with pytest.raises(DataError, match=r"Invalid polygon.*got 5.*record 11"):
            utils.annotations_to_instances([dict(annos[0], segmentation=[[1, 2, 3, 4, 5]], id=11)], (6, 8), fmt)
    for bad in (-1, 1.0, "cat", None):
        with pytest.raises(DataError, match="category_id must be an int >= 0"):
            utils.annotations_to_instances([dict(annos[0], category_id=bad, id=11)], (6, 8))
    empty = utils.annotations_to_instances([], (6, 8), mask_format="bitmask")
    assert len(empty) == 0 and empty.gt_boxes.tensor.shape == (0, 4) and not empty.has("gt_masks")


def test_annotations_to_instances_clips_boxes_and_accepts_arrays():
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = True
    anno = {"bbox": [-2.0, 1.0, 9.0, 3.0], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "segmentation": mask}
    inst = utils.annotations_to_instances([anno], (4, 4), mask_format="bitmask")
    assert inst.gt_boxes.tensor.tolist() == [[0.0, 1.0, 4.0, 3.0]]
    assert inst.gt_masks.tensor.sum().item() == 1


def test_filter_empty_instances():
    annos = _annos()
    annos[0]["bbox"] = [1.0, 1.0, 1.0, 3.0]  # zero width
    inst = utils.annotations_to_instances(annos, (6, 8), mask_format="bitmask")
    assert utils.filter_empty_instances(inst).gt_classes.tolist() == [2]
    assert len(utils.filter_empty_instances(inst, by_box=False)) == 2
    inst.gt_masks.tensor[1] = False
    assert len(utils.filter_empty_instances(inst)) == 0
    assert utils.filter_empty_instances(inst, by_mask=False).gt_classes.tolist() == [2]


# ---------------------------------------------------------------- build_augmentation
def test_build_augmentation_order_and_test_time():
    cfg = get_cfg()
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = [64, 64]
    cfg.INPUT.MIN_SIZE_TRAIN = (100, 200)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "range"
    cfg.INPUT.RANDOM_FLIP = "vertical"
    cfg.INPUT.BRIGHTNESS = (0.9, 1.1)
    cfg.INPUT.CONTRAST = (0.8, 1.2)
    augs = utils.build_augmentation(cfg, is_train=True)
    assert [type(a).__name__ for a in augs] == [
        "RandomCrop", "ResizeShortestEdge", "RandomFlip", "RandomBrightness", "RandomContrast"]
    assert augs[0].crop_size == (64, 64) and augs[1].short_edge_length == (100, 200)
    assert augs[2].vertical and not augs[2].horizontal

    defaults = utils.build_augmentation(get_cfg(), is_train=True)
    assert [type(a).__name__ for a in defaults] == ["ResizeShortestEdge", "RandomFlip"]
    (test_resize,) = utils.build_augmentation(cfg, is_train=False)
    assert test_resize.short_edge_length == (800,) * 2 and test_resize.max_size == 1333
    cfg.INPUT.MIN_SIZE_TEST = 0
    assert utils.build_augmentation(cfg, is_train=False) == []
    cfg.INPUT.RANDOM_FLIP = "diagonal"
    with pytest.raises(ValueError, match="RANDOM_FLIP"):
        utils.build_augmentation(cfg, is_train=True)


def test_read_panoptic_ids_decodes_every_byte_and_any_mode(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 256**3, (7, 5))
    ids[0, 0], ids[0, 1] = 0, 256**3 - 1
    utils.write_panoptic_ids(str(tmp_path / "ids.png"), ids)
    read = utils.read_panoptic_ids(str(tmp_path / "ids.png"))
    assert read.dtype == np.int64 and read.shape == (7, 5)
    np.testing.assert_array_equal(read, ids)
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    alpha = np.dstack([rgb, np.full((4, 6), 7, np.uint8)])
    Image.fromarray(alpha, "RGBA").save(tmp_path / "rgba.png")  # alpha ignored, as by convert("RGB")
    expected = rgb[..., 0] + 256 * rgb[..., 1].astype(np.int64) + 256**2 * rgb[..., 2].astype(np.int64)
    np.testing.assert_array_equal(utils.read_panoptic_ids(str(tmp_path / "rgba.png")), expected)
    Image.fromarray(rgb[..., 0], "L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(utils.read_panoptic_ids(str(tmp_path / "gray.png")),
                                  rgb[..., 0].astype(np.int64) * (1 + 256 + 256**2))
