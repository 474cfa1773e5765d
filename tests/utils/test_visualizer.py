"""Visualizer: each kind of drawing changes exactly the pixels it should, with the expected colours."""
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from seg_research.data.catalog import Metadata
from seg_research.structures import BitMasks, Boxes, BoxMode, Instances, PolygonMasks, bitmask_to_rle
from seg_research.utils.visualizer import (
    ColorMode,
    VisImage,
    VisImageWriter,
    Visualizer,
    class_color,
    read_panoptic_ids,
    shade_color,
)

GRAY = 100
RED, BLUE, GREEN, YELLOW = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)
LABEL_BACKGROUND = round(GRAY * 0.4)  # a label box darkens the image by 60%


def _meta(**kwargs):
    return Metadata(name="test_vis", thing_classes=["a", "b"], thing_colors=[RED, BLUE],
                    stuff_classes=["sky", "land", "sea"], stuff_colors=[GREEN, YELLOW, BLUE], **kwargs)


def _image(h, w):
    return np.full((h, w, 3), GRAY, dtype=np.uint8)


def _blend(color, alpha):
    """What a fill of ``color`` at opacity ``alpha`` makes of a GRAY pixel (rounded half to even, as np.round)."""
    return tuple(int(np.round(GRAY * (1 - alpha) + c * alpha)) for c in color)


def _changed(out, h, w):
    return (out != _image(h, w)).any(axis=2)


def _near(mask, margin):
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)


def _box_outline(h, w, box):
    outline = np.zeros((h, w), dtype=bool)
    x0, y0, x1, y1 = box
    outline[y0:y1, x0:x1] = True
    outline[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = False
    return outline


def _interior(mask, margin):
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)


def test_instance_predictions_fill_masks_draw_boxes_and_labels_nowhere_else():
    h, w = 120, 160
    square = np.zeros((h, w), dtype=bool)
    square[40:80, 20:60] = True
    disk = np.zeros((h, w), dtype=np.uint8)
    cv2.circle(disk, (115, 80), 20, 1, -1)
    disk = disk.astype(bool)
    boxes = [[20, 40, 60, 80], [95, 60, 136, 101]]
    inst = Instances((h, w), pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                     scores=torch.tensor([0.9, 0.75]), pred_classes=torch.tensor([0, 1]),
                     pred_masks=torch.from_numpy(np.stack([square, disk])))
    vis = Visualizer(_image(h, w), _meta())
    out = vis.draw_instance_predictions(inst).get_image()

    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    # mask interiors: the class colour at 50% (first instance of each class: the class colour itself)
    assert (out[_interior(square, 3)] == _blend(RED, 0.5)).all()
    assert (out[_interior(disk, 3)] == _blend(BLUE, 0.5)).all()
    # labels sit above each box's top-left corner, on a darkened box
    for (x0, y0, _, _), text in zip(boxes, ["a 90%", "b 75%"], strict=True):
        band = out[y0 - 2 * vis.font_size:y0, x0:x0 + len(text) * vis.font_size]
        assert (band == LABEL_BACKGROUND).all(axis=2).sum() > 20
        assert (band > LABEL_BACKGROUND + 60).any()  # the text is light
    # nothing changed beyond the masks, box outlines (with the line width) and label bands
    allowed = _near(square | disk | _box_outline(h, w, boxes[0]) | _box_outline(h, w, boxes[1]), 2)
    for x0, y0, _, _ in boxes:
        allowed[max(y0 - 2 * vis.font_size, 0):y0, x0:x0 + 6 * vis.font_size] = True
    assert not (_changed(out, h, w) & ~allowed).any()
    assert _changed(out, h, w)[square | disk].all()


def test_segmentation_mode_uses_exact_class_colour_image_mode_shades_instances():
    h, w = 40, 80
    masks = np.zeros((2, h, w), dtype=bool)
    masks[0, 5:35, 5:35] = True
    masks[1, 5:35, 45:75] = True
    inst = Instances((h, w), pred_classes=torch.tensor([0, 0]), pred_masks=torch.from_numpy(masks))
    same = Visualizer(_image(h, w), _meta(), instance_mode=ColorMode.SEGMENTATION)
    same = same.draw_instance_predictions(inst).get_image()
    assert tuple(same[8, 8]) == tuple(same[8, 48]) == _blend(RED, 0.65)
    shaded = Visualizer(_image(h, w), _meta()).draw_instance_predictions(inst).get_image()
    assert tuple(shaded[8, 8]) == _blend(RED, 0.5)
    assert tuple(shaded[8, 48]) == _blend(shade_color(RED, 1), 0.5) != _blend(RED, 0.5)
    # IMAGE_BW grays the image outside the masks (an already gray image stays as it is)
    colourful = _image(h, w)
    colourful[:, :, 0] = 200
    bw = Visualizer(colourful, _meta(), instance_mode=ColorMode.IMAGE_BW).draw_instance_predictions(inst).get_image()
    assert tuple(bw[38, 40]) == (130, 130, 130)  # OpenCV's luma of (200, 100, 100)
    assert tuple(bw[8, 8]) == (228, 50, 50)  # masks keep the image's colours under the fill


def test_sem_seg_colours_each_class_skips_ignore_and_small_classes():
    h, w = 64, 96
    sem = np.zeros((h, w), dtype=np.int64)  # sky
    sem[:, 48:] = 2  # sea
    sem[40:, 60:] = 255  # ignore
    sem[2:4, 2:4] = 1  # 4 pixels of land
    out = Visualizer(_image(h, w), _meta()).draw_sem_seg(sem, area_threshold=10).get_image()
    assert tuple(out[58, 10]) == _blend(GREEN, 0.8)  # detectron2's default alpha 0.8
    assert tuple(out[5, 90]) == _blend(BLUE, 0.8)
    ignore = sem == 255
    assert not _changed(out, h, w)[_interior(ignore, 2)].any()
    land = sem == 1  # under area_threshold: drawn as sky's hole, no colour of its own
    assert not (out[land] == _blend(YELLOW, 0.8)).all(axis=1).any()
    # the label of each class is at the centre of its region, on the fill darkened by 60%
    for color, rows, cols in ((GREEN, slice(20, 44), slice(0, 48)), (BLUE, slice(10, 30), slice(48, 96))):
        label_background = tuple(int(np.round(c * 0.4)) for c in _blend(color, 0.8))
        assert (out[rows, cols] == label_background).all(axis=2).sum() > 20


def test_sem_seg_legend_lists_drawn_classes_top_right():
    h, w = 64, 160
    sem = np.zeros((h, w), dtype=np.int64)
    sem[:, 80:] = 1
    plain = Visualizer(_image(h, w), _meta()).draw_sem_seg(sem).get_image()
    vis = Visualizer(_image(h, w), _meta())
    legend = vis.draw_sem_seg(sem, legend=True).get_image()
    diff = (plain != legend).any(axis=2)
    assert diff.any()
    rows, cols = np.nonzero(diff)
    assert rows.max() < 2 * 2 * vis.font_size and cols.min() >= w // 2
    for color in (GREEN, YELLOW):  # solid swatches
        assert (legend[diff] == color).all(axis=1).any()


def test_panoptic_things_in_shades_stuff_in_class_colour_void_untouched():
    h, w = 80, 120
    pan = np.zeros((h, w), dtype=np.int64)
    pan[40:, :] = 7  # stuff "sea"
    pan[5:30, 5:35] = 1001  # two things of class 0
    pan[5:30, 80:110] = 1002
    segments = [{"id": 7, "category_id": 2, "isthing": False},
                {"id": 1001, "category_id": 0, "isthing": True},
                {"id": 1002, "category_id": 0, "isthing": True, "score": 0.8}]
    out = Visualizer(_image(h, w), _meta()).draw_panoptic_seg(torch.from_numpy(pan), segments).get_image()
    assert tuple(out[75, 5]) == _blend(BLUE, 0.7)  # detectron2's default alpha 0.7
    assert tuple(out[7, 7]) == _blend(RED, 0.7)
    assert tuple(out[7, 82]) == _blend(shade_color(RED, 1), 0.7)
    void = pan == 0
    assert not _changed(out, h, w)[_interior(void, 2)].any()
    # no pixel changed outside the segments (void gap rows 31..38 stay, away from contours)
    assert not _changed(out, h, w)[33:37].any()


def _write_png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_dataset_dict_draws_polygons_rle_crowd_sem_seg_and_panoptic_files(tmp_path):
    h, w = 80, 100
    rle_mask = np.zeros((h, w), dtype=bool)
    rle_mask[50:70, 60:90] = True
    annos = [
        {"bbox": [10, 10, 30, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0,
         "segmentation": [[10, 10, 40, 10, 40, 40, 10, 40]]},
        {"bbox": [60, 50, 90, 70], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 1, "iscrowd": 1,
         "segmentation": bitmask_to_rle(rle_mask)},
    ]
    vis = Visualizer(_image(h, w), _meta())
    out = vis.draw_dataset_dict({"annotations": annos, "height": h, "width": w}).get_image()
    polygon_mask = np.zeros((h, w), dtype=bool)
    polygon_mask[10:40, 10:40] = True
    assert (out[_interior(polygon_mask, 3)] == _blend(RED, 0.5)).all()
    assert (out[_interior(rle_mask, 3)] == _blend(BLUE, 0.5)).all()
    untouched = ~_near(polygon_mask | rle_mask, 2)
    untouched[:50] = False  # label bands above the boxes
    assert not _changed(out, h, w)[untouched].any()

    sem = np.full((h, w), 255, dtype=np.uint8)
    sem[:, :50] = 1
    pan_ids = np.zeros((h, w), dtype=np.int64)
    pan_ids[20:60, 60:90] = 1001  # R=233, G=3
    rgb = np.stack([pan_ids % 256, pan_ids // 256 % 256, pan_ids // 256 ** 2], axis=-1).astype(np.uint8)
    record = {"sem_seg_file_name": _write_png(tmp_path / "sem.png", sem),
              "pan_seg_file_name": _write_png(tmp_path / "pan.png", rgb),
              "segments_info": [{"id": 1001, "category_id": 1, "isthing": True}]}
    np.testing.assert_array_equal(read_panoptic_ids(record["pan_seg_file_name"]), pan_ids)
    out = Visualizer(_image(h, w), _meta()).draw_dataset_dict(record).get_image()
    assert tuple(out[75, 5]) == _blend(YELLOW, 0.5)  # sem_seg "land"
    assert tuple(out[22, 62]) == _blend(BLUE, 0.5)  # the panoptic thing of class "b"
    assert not _changed(out, h, w)[70:, 55:].any()  # ignore and void


def test_labels_stay_inside_the_image():
    h, w = 60, 200
    corner = np.zeros((1, h, w), dtype=bool)
    corner[0, 0:3, w - 3:] = True
    middle = np.zeros((1, h, w), dtype=bool)
    middle[0, 29:32, 99:102] = True
    extents = []
    for mask in (corner, middle):
        out = Visualizer(_image(h, w), _meta()).overlay_instances(masks=mask, labels=["a long label"],
                                                                 assigned_colors=[RED]).get_image()
        rows, cols = np.nonzero((out == LABEL_BACKGROUND).all(axis=2))
        extents.append((rows.max() - rows.min(), cols.max() - cols.min()))
    assert extents[0] == extents[1]  # the corner label is shifted inside the image, not cut
    assert extents[1][1] > 50


def test_scale_font_and_line_width_grow_with_image_size():
    small = Visualizer(_image(64, 64))
    large = Visualizer(_image(1200, 1600))
    assert (small.font_size, small.line_width) == (9, 1)
    assert (large.font_size, large.line_width) == (35, 4)
    mask = np.zeros((1, 20, 20), dtype=bool)
    mask[0, 5:15, 5:15] = True
    vis = Visualizer(_image(20, 20), scale=3.0)
    out = vis.overlay_instances(masks=mask, assigned_colors=[RED]).get_image()
    assert out.shape == (60, 60, 3)
    assert tuple(out[30, 30]) == _blend(RED, 0.5) and tuple(out[5, 5]) == (GRAY,) * 3


def test_gt_instances_with_polygon_masks_match_bitmask_drawing():
    h, w = 50, 50
    poly = PolygonMasks([[[5, 5, 30, 5, 30, 30, 5, 30]]])
    boxes = Boxes(torch.tensor([[5.0, 5.0, 30.0, 30.0]]))
    a = Visualizer(_image(h, w), _meta()).draw_gt_instances(
        Instances((h, w), gt_boxes=boxes, gt_classes=torch.tensor([1]), gt_masks=poly)).get_image()
    b = Visualizer(_image(h, w), _meta()).draw_gt_instances(
        Instances((h, w), gt_boxes=boxes, gt_classes=torch.tensor([1]),
                  gt_masks=BitMasks.from_polygon_masks(poly, h, w))).get_image()
    np.testing.assert_array_equal(a, b)
    assert tuple(a[20, 20]) == _blend(BLUE, 0.5)


def test_input_checks_and_colours_without_metadata():
    with pytest.raises(ValueError, match="permute"):
        Visualizer(np.zeros((3, 4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="argmax"):
        Visualizer(_image(4, 5)).draw_sem_seg(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="different numbers"):
        Visualizer(_image(4, 5)).overlay_instances(boxes=[[0, 0, 1, 1]], labels=["x", "y"])
    gray = Visualizer(np.full((4, 5), 7, dtype=np.uint8)).output.get_image()
    assert gray.shape == (4, 5, 3) and (gray == 7).all()
    empty = Metadata(name="no_colours")
    assert class_color(empty, 3) == class_color(empty, 3) != class_color(empty, 4)
    assert class_color(_meta(), 1) == BLUE and class_color(_meta(), 0, thing=False) == GREEN


def test_save_writes_the_drawing_losslessly(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    writer = VisImageWriter(str(tmp_path))
    first = writer.write(VisImage(img), "/data/a/x.jpg")
    second = writer.write(img, "/data/b/x.jpg")
    assert (first, second) == (str(tmp_path / "x.png"), str(tmp_path / "x_1.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(first)), img)
    np.testing.assert_array_equal(np.asarray(Image.open(second)), img)


def _predictions(h, w, n, *, boxes=True, masks=True, scores=True, classes=True, mask_type="tensor"):
    inst = Instances((h, w))
    if boxes:
        inst.pred_boxes = Boxes(torch.tensor([[4.0, 4.0, 56.0, 56.0]] * n).reshape(-1, 4))
    if scores:
        inst.scores = torch.full((n,), 0.9)
    if classes:
        inst.pred_classes = torch.zeros(n, dtype=torch.long)
    if masks:
        bitmaps = torch.zeros(n, h, w, dtype=torch.bool)
        bitmaps[:, 6:40, 6:40] = True
        inst.pred_masks = {"tensor": bitmaps, "list": [bitmask_to_rle(m.numpy()) for m in bitmaps],
                           "bitmasks": BitMasks(bitmaps)}[mask_type]
    return inst


@pytest.mark.parametrize("mode", [ColorMode.IMAGE, ColorMode.SEGMENTATION])
@pytest.mark.parametrize("fields", [
    {}, {"masks": False}, {"boxes": False}, {"boxes": False, "masks": False}, {"scores": False, "classes": False},
    {"mask_type": "list"}, {"mask_type": "bitmasks"}, {"boxes": False, "mask_type": "list"},
])
def test_no_instances_leave_the_image_as_it_is(mode, fields):
    """0 predictions (an image the model found nothing in, as visualize_json_results makes them:
    empty RLE list, (0, 4) boxes) draw nothing, whatever fields are set."""
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    out = Visualizer(image.copy(), _meta(), instance_mode=mode).draw_instance_predictions(
        _predictions(32, 40, 0, **fields)).get_image()
    np.testing.assert_array_equal(out, image)
    empty = Visualizer(image.copy(), _meta())
    for kwargs in ({}, {"boxes": np.zeros((0, 4))}, {"masks": []}, {"labels": []},
                   {"boxes": [], "labels": [], "masks": np.zeros((0, 32, 40)), "assigned_colors": []}):
        np.testing.assert_array_equal(empty.overlay_instances(**kwargs).get_image(), image)
    assert np.array_equal(Visualizer(image.copy()).draw_dataset_dict({"annotations": []}).get_image(), image)


@pytest.mark.parametrize("fields,box_drawn,mask_drawn", [
    ({"masks": False}, True, False),                     # only boxes (+ scores, classes)
    ({"boxes": False}, False, True),                     # only masks: label at the mask's centre
    ({"boxes": False, "mask_type": "list"}, False, True),
    ({"masks": False, "scores": False, "classes": False}, True, False),  # bare boxes, no label
])
def test_instances_with_only_boxes_or_only_masks(fields, box_drawn, mask_drawn):
    out = Visualizer(_image(64, 80), _meta()).draw_instance_predictions(_predictions(64, 80, 1, **fields)).get_image()
    changed = _changed(out, 64, 80)
    mask, box = np.zeros((64, 80), dtype=bool), np.zeros((64, 80), dtype=bool)
    mask[6:40, 6:40] = True
    box[4:57, 4:57] = True
    outline = _box_outline(64, 80, (4, 4, 57, 57))
    assert changed[45:, :][outline[45:, :]].any() == box_drawn  # the box's lower part: far from mask and label
    assert (tuple(out[10, 10]) == _blend(RED, 0.5)) == mask_drawn  # inside the mask, off contour and label
    assert not changed[~_near(box if box_drawn else mask, 2)].any()


def test_image_bw_without_instances_grays_the_whole_image():
    """As detectron2: IMAGE_BW keeps colour only under the predicted masks; none -> all gray."""
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[..., 0] = 200
    out = Visualizer(image, _meta(), instance_mode=ColorMode.IMAGE_BW).draw_instance_predictions(
        _predictions(8, 8, 0)).get_image()
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
