"""Visualizer parity with detectron2's: every mask format it accepts draws the same pixels,
its method signatures, the colormap names, VisImage and the primitive drawing methods."""
import inspect
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from seg_research.data.catalog import Metadata
from seg_research.structures import BitMasks, Boxes, BoxMode, Instances, PolygonMasks, bitmask_to_rle
from seg_research.utils.colormap import colormap, random_color, to_rgb255
from seg_research.utils.visualizer import ColorMode, GenericMask, VisImage, Visualizer

H, W = 48, 64
GRAY = 100
RED, BLUE = (255, 0, 0), (0, 0, 255)
SQUARE = [[8, 8, 28, 8, 28, 28, 8, 28]]  # polygon covering pixels 8..27 x 8..27
RECT = [[36, 20, 60, 20, 60, 44, 36, 44]]


def _meta():
    return Metadata(name="test_vis_formats", thing_classes=["a", "b"], thing_colors=[RED, BLUE],
                    thing_dataset_id_to_contiguous_id={1: 0, 2: 1}, stuff_classes=["a", "b", "sky"])


def _image():
    return np.full((H, W, 3), GRAY, dtype=np.uint8)


def _bitmaps():
    masks = np.zeros((2, H, W), dtype=bool)
    masks[0, 8:28, 8:28] = True
    masks[1, 20:44, 36:60] = True
    return masks


def _uncompressed(mask):
    """COCO's uncompressed RLE: run lengths (column-major, starting with zeros) as a list."""
    flat = mask.T.reshape(-1).astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": [H, W], "counts": np.diff(np.concatenate([[0], change])).tolist()}


def _formats():
    masks = _bitmaps()
    compressed = [mask_util.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]  # counts: bytes
    return {
        "bool tensor": torch.from_numpy(masks),
        "float probabilities": torch.from_numpy(masks.astype(np.float32) * 0.9),
        "uint8 array": masks.astype(np.uint8),
        "list of bitmaps": list(masks),
        "RLE counts str": [bitmask_to_rle(m) for m in masks],
        "RLE counts bytes": compressed,
        "uncompressed RLE": [_uncompressed(m) for m in masks],
        "polygons": [SQUARE, RECT],
        "PolygonMasks": PolygonMasks([SQUARE, RECT]),
        "BitMasks": BitMasks(torch.from_numpy(masks)),
        "GenericMask": [GenericMask(m, H, W) for m in masks],
    }


def test_uncompressed_rle_helper_is_coco_rle():
    mask = _bitmaps()[1]
    rle = mask_util.frPyObjects(_uncompressed(mask), H, W)
    np.testing.assert_array_equal(mask_util.decode(rle).astype(bool), mask)


def test_every_mask_format_draws_the_same_predictions():
    boxes = Boxes(torch.tensor([[8, 8, 28, 28], [36, 20, 60, 44]], dtype=torch.float32))
    drawings = {}
    for name, masks in _formats().items():
        inst = Instances((H, W), pred_boxes=boxes, scores=torch.tensor([0.9, 0.8]),
                         pred_classes=torch.tensor([0, 1]), pred_masks=masks)
        drawings[name] = Visualizer(_image(), _meta()).draw_instance_predictions(inst).get_image()
    reference = drawings.pop("bool tensor")
    assert tuple(reference[15, 15]) == (178, 50, 50)  # red at 50% over gray 100
    for name, drawing in drawings.items():
        np.testing.assert_array_equal(drawing, reference, err_msg=name)


def test_every_mask_format_draws_the_same_overlay_and_dataset_dict():
    reference = Visualizer(_image(), _meta()).overlay_instances(
        masks=_bitmaps(), assigned_colors=[RED, BLUE]).get_image()
    for name, masks in _formats().items():
        if name == "float probabilities":
            continue
        out = Visualizer(_image(), _meta()).overlay_instances(masks=masks, assigned_colors=[RED, BLUE])
        np.testing.assert_array_equal(out.get_image(), reference, err_msg=name)

    def record(segmentations):
        return {"height": H, "width": W, "annotations": [
            {"bbox": [8, 8, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "segmentation": segmentations[0]},
            {"bbox": [36, 20, 60, 44], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 1, "iscrowd": 1,
             "segmentation": segmentations[1]}]}

    formats = _formats()
    drawn = {name: Visualizer(_image(), _meta()).draw_dataset_dict(record(formats[name])).get_image()
             for name in ("polygons", "RLE counts str", "RLE counts bytes", "uncompressed RLE", "list of bitmaps")}
    reference = drawn.pop("polygons")
    assert tuple(reference[15, 15]) == (178, 50, 50) and tuple(reference[40, 50]) == (50, 50, 178)
    for name, drawing in drawn.items():
        np.testing.assert_array_equal(drawing, reference, err_msg=name)


def test_json_results_as_visualize_json_results_builds_them(tmp_path):
    """detectron2's tools/visualize_json_results.py: Instances from coco_instances_results.json
    with numpy scores/classes, Boxes of a numpy array and pred_masks a list of RLE dicts."""
    masks = _bitmaps()
    results = [{"image_id": 1, "category_id": cid, "bbox": bbox, "score": score, "segmentation": bitmask_to_rle(m)}
               for m, cid, bbox, score in zip(masks, [1, 2], [[8, 8, 20, 20], [36, 20, 24, 24]], [0.9, 0.4],
                                              strict=True)]
    path = tmp_path / "coco_instances_results.json"
    path.write_text(json.dumps(results))
    predictions = json.loads(path.read_text())
    id_map = _meta().thing_dataset_id_to_contiguous_id
    chosen = [p for p in predictions if p["score"] > 0.5]
    inst = Instances((H, W))
    inst.scores = np.asarray([p["score"] for p in chosen])
    inst.pred_boxes = Boxes(BoxMode.convert(np.asarray([p["bbox"] for p in chosen]).reshape(-1, 4),
                                            BoxMode.XYWH_ABS, BoxMode.XYXY_ABS))
    inst.pred_classes = np.asarray([id_map[p["category_id"]] for p in chosen])
    inst.pred_masks = [p["segmentation"] for p in chosen]
    out = Visualizer(_image(), _meta()).draw_instance_predictions(inst).get_image()
    expected = Visualizer(_image(), _meta()).draw_instance_predictions(Instances(
        (H, W), scores=torch.tensor([0.9]), pred_boxes=Boxes(torch.tensor([[8.0, 8.0, 28.0, 28.0]])),
        pred_classes=torch.tensor([0]), pred_masks=torch.from_numpy(masks[:1]))).get_image()
    np.testing.assert_array_equal(out, expected)
    assert tuple(out[40, 50]) == (GRAY,) * 3  # the 0.4 instance is not drawn


def test_mask_size_errors_name_the_sizes():
    wrong = bitmask_to_rle(np.zeros((10, 10), dtype=bool))
    with pytest.raises(ValueError, match=r"\(10, 10\).*\(48, 64\)"):
        Visualizer(_image()).overlay_instances(masks=[wrong])
    with pytest.raises(ValueError, match="Cannot draw a mask given as str"):
        GenericMask("not a mask", H, W)


def test_generic_mask_area_bbox_polygons():
    m = GenericMask(bitmask_to_rle(_bitmaps()[0]), H, W)
    assert m.area() == 400 and m.bbox() == (8.0, 8.0, 28.0, 28.0) and not m.has_holes
    poly = GenericMask(SQUARE, H, W)
    assert poly.area() == 400 and len(m.polygons) == 1
    ring = np.zeros((H, W), dtype=np.uint8)
    ring[5:25, 5:25] = 1
    ring[10:20, 10:20] = 0
    assert GenericMask(ring, H, W).has_holes and GenericMask(ring, H, W).area() == 300


def _params(fn):
    """The parameters of ``fn`` as written in its ``def`` ("*" before keyword-only ones)."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.KEYWORD_ONLY and "*" not in out:
            out.append("*")
        if p.default is p.empty:
            out.append(p.name)
        elif isinstance(p.default, ColorMode):
            out.append(f"{p.name}=ColorMode.{p.default.name}")
        else:
            out.append(f"{p.name}={p.default!r}")
    return out


def test_signatures_are_detectron2s():
    """Parameter names and defaults of detectron2 v0.6's Visualizer API (extra trailing options allowed)."""
    expected = {
        Visualizer.__init__: ["self", "img_rgb", "metadata=None", "scale=1.0", "instance_mode=ColorMode.IMAGE"],
        Visualizer.draw_instance_predictions: ["self", "predictions"],
        Visualizer.draw_sem_seg: ["self", "sem_seg", "area_threshold=None", "alpha=0.8"],
        Visualizer.draw_panoptic_seg: ["self", "panoptic_seg", "segments_info", "area_threshold=None", "alpha=0.7"],
        Visualizer.draw_dataset_dict: ["self", "dic"],
        Visualizer.overlay_instances: ["self", "*", "boxes=None", "labels=None", "masks=None", "keypoints=None",
                                       "assigned_colors=None", "alpha=0.5"],
        Visualizer.draw_text: ["self", "text", "position", "*", "font_size=None", "color='g'",
                               "horizontal_alignment='center'", "rotation=0"],
        Visualizer.draw_box: ["self", "box_coord", "alpha=0.5", "edge_color='g'", "line_style='-'"],
        Visualizer.draw_binary_mask: ["self", "binary_mask", "color=None", "*", "edge_color=None", "text=None",
                                      "alpha=0.5", "area_threshold=0"],
        Visualizer.draw_polygon: ["self", "segment", "color", "edge_color=None", "alpha=0.5"],
        Visualizer.draw_line: ["self", "x_data", "y_data", "color", "linestyle='-'", "linewidth=None"],
        Visualizer.draw_circle: ["self", "circle_coord", "color", "radius=3"],
        VisImage.__init__: ["self", "img", "scale=1.0"],
        VisImage.save: ["self", "filepath"],
        colormap: ["rgb=False", "maximum=255"],
        random_color: ["rgb=False", "maximum=255"],
    }
    for fn, params in expected.items():
        got = _params(fn)
        assert got[:len(params)] == params, fn.__qualname__
    assert [m.name for m in ColorMode] == ["IMAGE", "SEGMENTATION", "IMAGE_BW"] and ColorMode.IMAGE_BW.value == 2


def test_colormap_random_color_and_colour_parsing():
    rgb = colormap(rgb=True)
    assert rgb.dtype == np.float32 and rgb.shape[1] == 3 and rgb.max() <= 255 and rgb.min() >= 0
    np.testing.assert_array_equal(colormap(), rgb[:, ::-1])
    np.testing.assert_allclose(colormap(rgb=True, maximum=1) * 255, rgb, rtol=1e-6)
    assert len({tuple(c) for c in rgb.round().astype(int).tolist()}) == len(rgb)  # all distinct
    np.random.seed(0)
    c = random_color(rgb=True, maximum=1)
    assert c.shape == (3,) and any(np.allclose(c * 255, row) for row in rgb)
    with pytest.raises(ValueError, match="maximum"):
        colormap(maximum=100)
    assert to_rgb255("g") == (0, 128, 0) and to_rgb255("#ff8800") == (255, 136, 0)
    assert to_rgb255((1.0, 0, 0)) == (255, 0, 0) and to_rgb255((200, 10, 10)) == (200, 10, 10)
    assert to_rgb255(np.array([0.0, 0.5, 1.0], dtype=np.float32)) == (0, 128, 255)


def test_vis_image_scale_keeps_image_coordinates(tmp_path):
    vis = Visualizer(_image(), _meta(), scale=2.0)
    assert (vis.output.height, vis.output.width, vis.output.scale) == (H, W, 2.0)
    out = vis.draw_box((8, 8, 28, 28), alpha=1.0, edge_color=(0.0, 0.0, 1.0)).get_image()
    assert out.shape == (2 * H, 2 * W, 3)
    assert tuple(out[16, 30]) == BLUE and tuple(out[30, 30]) == (GRAY,) * 3  # outline at y=8 -> 16
    vis.output.save(str(tmp_path / "x.png"))
    vis.output.reset_image(_image())
    assert (vis.get_output().get_image() == GRAY).all()


def test_primitives_draw_where_asked():
    vis = Visualizer(_image(), _meta())
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[10:30, 10:30] = 1
    mask[40:42, 50:52] = 1  # 4-pixel speck, under area_threshold
    out = vis.draw_binary_mask(mask, color=RED, alpha=0.5, area_threshold=10).get_image()
    assert tuple(out[20, 12]) == (178, 50, 50) and tuple(out[41, 51]) == (GRAY,) * 3
    out = Visualizer(_image()).draw_polygon(np.array(RECT[0]).reshape(-1, 2), "b", alpha=1.0).get_image()
    assert tuple(out[30, 45]) == BLUE and tuple(out[10, 10]) == (GRAY,) * 3
    out = Visualizer(_image()).draw_line([2, 60], [45, 45], color="r", linewidth=1).get_image()
    assert out[45, 30, 0] > 200 and out[45, 30, 1:].max() < 60 and (out[:43] == GRAY).all()  # anti-aliased
    out = Visualizer(_image()).draw_circle((32, 24), color=BLUE, radius=5).get_image()
    assert tuple(out[24, 32]) == BLUE and tuple(out[24, 40]) == (GRAY,) * 3
    out = Visualizer(_image()).draw_text("hello", (32, 10), horizontal_alignment="center").get_image()
    cols = np.nonzero((out != GRAY).any(axis=2).any(axis=0))[0]
    assert abs((cols.min() + cols.max()) / 2 - 32) <= 1  # centred on x
    assert (out[:10] == GRAY).all()  # text box hangs below y=10
    with pytest.raises(ValueError, match="rotation"):
        Visualizer(_image()).draw_text("x", (1, 1), rotation=30)


def test_panoptic_ids_from_label_divisor_and_crowd_mode():
    meta = _meta()
    meta.label_divisor = 1000
    pan = np.full((H, W), -1, dtype=np.int64)
    pan[:, :32] = 2 * 1000  # stuff "sky" (category 2, not a thing)
    pan[10:30, 40:60] = 1 * 1000 + 1  # a thing of category 1
    out = Visualizer(_image(), meta, instance_mode=ColorMode.SEGMENTATION).draw_panoptic_seg(
        torch.from_numpy(pan), None).get_image()
    assert tuple(out[12, 42]) == tuple(int(np.round(GRAY * 0.3 + c * 0.7)) for c in BLUE)
    assert (out[40:, 40:] == GRAY).all()  # void
    with pytest.raises(ValueError, match="label_divisor"):
        Visualizer(_image(), _meta()).draw_panoptic_seg(pan, None)
