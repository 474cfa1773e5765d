import copy

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from seg_research.config import get_cfg
from seg_research.data import DataError
from seg_research.data import transforms as T
from seg_research.data.mapper import DatasetMapper
from seg_research.structures import BitMasks, BoxMode, PolygonMasks

H, W = 6, 8


def _rle(rows, cols):
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[rows, cols] = 1
    rle = mask_util.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")  # as stored in COCO json
    return rle


@pytest.fixture
def record(tmp_path):
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = np.arange(W)[None, :] * 10  # R encodes the column
    rgb[..., 1] = np.arange(H)[:, None] * 10  # G encodes the row
    rgb[..., 2] = 200
    Image.fromarray(rgb).save(tmp_path / "img.png")
    sem_seg = np.zeros((H, W), dtype=np.uint8)
    sem_seg[:, :2] = 1
    sem_seg[0, 7] = 255
    Image.fromarray(sem_seg).save(tmp_path / "seg.png")
    return {
        "file_name": str(tmp_path / "img.png"),
        "sem_seg_file_name": str(tmp_path / "seg.png"),
        "height": H, "width": W, "image_id": 3,
        "annotations": [
            {"id": 1, "bbox": [1, 1, 3, 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0,
             "segmentation": [[1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0]]},
            {"id": 2, "bbox": [5, 2, 2, 3], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1, "iscrowd": 0,
             "segmentation": _rle(slice(2, 5), slice(5, 7))},
            {"id": 3, "bbox": [0, 4, 3, 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2, "iscrowd": 1,
             "segmentation": _rle(slice(4, 6), slice(0, 3))},
        ],
    }


def _mapper(is_train=True, **kwargs):
    args = dict(augmentations=[T.RandomFlip(prob=1.0)], image_format="BGR", use_instance_mask=True,
                instance_mask_format="bitmask")
    args.update(kwargs)
    return DatasetMapper(is_train, **args)


def test_train_mapper_flips_everything_consistently(record):
    original = copy.deepcopy(record)
    out = _mapper()(record)
    assert record["annotations"][0]["bbox"] == original["annotations"][0]["bbox"]  # input untouched

    image = out["image"]
    assert image.dtype == torch.uint8 and image.shape == (3, H, W) and image.is_contiguous()
    # BGR: channel 2 is R = 10 * column, flipped -> 10 * (7 - column); channel 0 is B = 200
    assert image[2, 0].tolist() == [70, 60, 50, 40, 30, 20, 10, 0]
    assert image[1, :, 0].tolist() == [0, 10, 20, 30, 40, 50]
    assert (image[0] == 200).all()

    expected_seg = torch.zeros(H, W, dtype=torch.int64)
    expected_seg[:, 6:] = 1
    expected_seg[0, 0] = 255
    assert out["sem_seg"].dtype == torch.int64 and torch.equal(out["sem_seg"], expected_seg)

    inst = out["instances"]
    assert inst.image_size == (H, W)
    assert inst.gt_classes.tolist() == [0, 1]  # crowd (class 2) removed
    # [1, 1, 4, 3] -> [8 - 4, 1, 8 - 1, 3]; [5, 2, 7, 5] -> [1, 2, 3, 5]
    assert inst.gt_boxes.tensor.tolist() == [[4.0, 1.0, 7.0, 3.0], [1.0, 2.0, 3.0, 5.0]]
    assert isinstance(inst.gt_masks, BitMasks)
    expected = torch.zeros(2, H, W, dtype=torch.bool)
    expected[0, 1:3, 4:7] = True
    expected[1, 2:5, 1:3] = True
    assert torch.equal(inst.gt_masks.tensor, expected)

    assert [a["iscrowd"] for a in out["annotations"]] == [0, 0, 1]  # kept, transformed, in XYXY_ABS
    assert out["annotations"][2]["bbox"].tolist() == [5.0, 4.0, 8.0, 6.0]
    assert out["annotations"][2]["bbox_mode"] == BoxMode.XYXY_ABS


def test_polygon_format_and_no_masks(record):
    record["annotations"] = record["annotations"][:1]
    out = _mapper(instance_mask_format="polygon")(record)
    masks = out["instances"].gt_masks
    assert isinstance(masks, PolygonMasks)
    np.testing.assert_array_equal(masks.polygons[0][0], [7.0, 1.0, 4.0, 1.0, 4.0, 3.0, 7.0, 3.0])

    out = _mapper(use_instance_mask=False)(record)
    assert not out["instances"].has("gt_masks")
    assert "segmentation" not in out["annotations"][0]
    assert out["instances"].gt_boxes.tensor.tolist() == [[4.0, 1.0, 7.0, 3.0]]


def test_test_mapper_drops_annotations_and_keeps_panoptic(record):
    record["pan_seg_file_name"] = "pan.png"
    record["segments_info"] = [{"id": 5, "category_id": 0, "iscrowd": 0, "isthing": True, "area": 4, "bbox": [0, 0, 2, 2]}]
    out = _mapper(is_train=False, augmentations=[])(record)
    assert "annotations" not in out and "instances" not in out
    assert out["pan_seg_file_name"] == "pan.png" and out["segments_info"] == record["segments_info"]
    assert out["sem_seg"][0, 7].item() == 255 and out["sem_seg"][0, 0].item() == 1
    assert (out["height"], out["width"]) == (H, W)


def test_ignore_label_and_recompute_boxes(record):
    out = _mapper(ignore_label=-1, recompute_boxes=True)(record)
    assert out["sem_seg"][0, 0].item() == -1 and (out["sem_seg"] == 255).sum() == 0
    # boxes from the flipped masks: pixels rows 1..2, cols 4..6 -> [4, 1, 7, 3]
    assert out["instances"].gt_boxes.tensor.tolist() == [[4.0, 1.0, 7.0, 3.0], [1.0, 2.0, 3.0, 5.0]]
    with pytest.raises(ValueError, match="use_instance_mask"):
        _mapper(use_instance_mask=False, recompute_boxes=True)


def test_errors_name_the_file(record, tmp_path):
    small = tmp_path / "small_seg.png"
    Image.fromarray(np.zeros((H, W - 1), np.uint8)).save(small)
    with pytest.raises(DataError, match=r"\(6, 7\).*img.png.*\(6, 8\)") as e:
        _mapper()(dict(record, sem_seg_file_name=str(small)))
    assert e.value.file_name == str(small)
    with pytest.raises(DataError, match=r"\(height, width\) = \(8, 6\).*EXIF"):
        _mapper()(dict(record, height=W, width=H))


def test_from_config(record):
    cfg = get_cfg()
    cfg.MODEL.MASK_ON = True
    cfg.INPUT.MASK_FORMAT = "bitmask"
    cfg.INPUT.MIN_SIZE_TRAIN = (12,)
    cfg.INPUT.RANDOM_FLIP = "none"
    cfg.INPUT.FORMAT = "RGB"
    mapper = DatasetMapper(cfg, is_train=True)
    assert mapper.use_instance_mask and mapper.instance_mask_format == "bitmask" and not mapper.recompute_boxes
    assert mapper.ignore_label == 255 and mapper.image_format == "RGB"
    out = mapper(record)
    # short edge 6 -> 12: x2 on both axes
    assert out["image"].shape == (3, 12, 16) and out["sem_seg"].shape == (12, 16)
    assert out["instances"].gt_boxes.tensor.tolist() == [[2.0, 2.0, 8.0, 6.0], [10.0, 4.0, 14.0, 10.0]]
    assert out["instances"].gt_masks.tensor.shape == (2, 12, 16)
    assert out["instances"].gt_masks.tensor[1].sum().item() == 4 * 6 * 1
    cfg.INPUT.CROP.ENABLED = True
    assert DatasetMapper(cfg, is_train=True).recompute_boxes


def test_crop_drops_instances_outside_and_recomputes_boxes(record):
    record["annotations"] = [
        record["annotations"][0],  # polygon [1, 4] x [1, 3]: left of the crop
        {"id": 4, "bbox": [5, 2, 2, 3], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 3, "iscrowd": 0,
         "segmentation": [[5.0, 2.0, 7.0, 2.0, 7.0, 5.0, 5.0, 5.0]]},
    ]
    crop = T.CropTransform(x0=4, y0=0, w=4, h=6)
    out = _mapper(augmentations=[crop], instance_mask_format="polygon", recompute_boxes=True)(record)
    assert out["image"].shape == (3, 6, 4)
    assert out["sem_seg"][0].tolist() == [0, 0, 0, 255]
    inst = out["instances"]
    assert inst.gt_classes.tolist() == [3]
    assert inst.gt_boxes.tensor.tolist() == [[1.0, 2.0, 3.0, 5.0]]
    np.testing.assert_array_equal(inst.gt_masks.polygons[0][0], [1.0, 2.0, 3.0, 2.0, 3.0, 5.0, 1.0, 5.0])
    assert out["annotations"][0]["segmentation"] == []  # the left polygon was cropped away
