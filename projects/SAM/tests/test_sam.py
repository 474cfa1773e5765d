"""The SAM project on a tiny SAM built from segment-anything's own modules (random weights, 64 px
encoder): prompts -> Instances, the checkpoint error, sam_annotate.py's json round trip (a new
json, the input untouched) and the refine evaluation."""
import copy
import hashlib
import json
import os
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image
from segment_anything import sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

import sam
from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.data.detection_utils import annotations_to_instances
from seg_research.evaluation import COCOEvaluator
from seg_research.structures import BitMasks, Instances, rle_to_bitmask

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import sam_annotate  # noqa: E402  (projects/SAM, on sys.path through projects/conftest.py)


def tiny_sam(seed=0):
    """A SAM with SAM's architecture at toy size: 64 px ViT (patch 16, 1 block), 16-dim prompts."""
    torch.manual_seed(seed)
    dim = 16
    model = Sam(
        image_encoder=ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2,
                                      out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                      use_rel_pos=True, window_size=2, global_attn_indexes=(0,)),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(4, 4), input_image_size=(64, 64),
                                     mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
            depth=1, embedding_dim=dim, mlp_dim=32, num_heads=2), transformer_dim=dim, iou_head_depth=1,
            iou_head_hidden_dim=16),
    )
    return model.eval()


@pytest.fixture
def predictor():
    return sam.SamInstancePredictor(tiny_sam())


IMAGE = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)


def test_box_prompts_give_one_mask_per_box_at_the_image_size(predictor):
    boxes = torch.tensor([[4.0, 5.0, 30.0, 40.0], [40.0, 2.0, 79.0, 47.0]])
    out = predictor(IMAGE, boxes=boxes)
    assert isinstance(out, Instances) and out.image_size == (48, 80) and len(out) == 2
    assert out.pred_masks.shape == (2, 48, 80) and out.pred_masks.dtype == torch.bool
    assert out.scores.shape == (2,) and torch.equal(out.pred_boxes.tensor, boxes)
    again = predictor(IMAGE, boxes=boxes[1:])  # prompts are independent of each other
    assert torch.equal(again.pred_masks[0], out.pred_masks[1])


def test_point_prompts_and_points_with_boxes(predictor):
    points = torch.tensor([[[10.0, 20.0], [12.0, 22.0]], [[60.0, 30.0], [5.0, 5.0]]])
    labels = torch.tensor([[1, 1], [1, 0]])
    out = predictor(IMAGE, points=points, point_labels=labels)
    assert out.pred_masks.shape == (2, 48, 80)
    assert torch.equal(out.pred_boxes.tensor, BitMasks(out.pred_masks).get_bounding_boxes().tensor)
    both = predictor(IMAGE, boxes=torch.tensor([[0.0, 0.0, 40.0, 40.0], [40.0, 0.0, 80.0, 48.0]]), points=points,
                     point_labels=labels)
    assert both.pred_masks.shape == (2, 48, 80)
    multi = sam.SamInstancePredictor(tiny_sam(), multimask=True)(IMAGE, points=points[:, :1], point_labels=labels[:, :1])
    assert multi.pred_masks.shape == (2, 48, 80)
    assert len(predictor(IMAGE, boxes=torch.zeros(0, 4))) == 0


def test_prompt_errors(predictor):
    with pytest.raises(ValueError, match="needs box and/or point prompts"):
        predictor(IMAGE)
    with pytest.raises(ValueError, match=r"point_labels must be given with points, of shape \(N, P\)"):
        predictor(IMAGE, points=torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="2 box prompts and 1 point prompts"):
        predictor(IMAGE, boxes=torch.zeros(2, 4), points=torch.zeros(1, 1, 2), point_labels=torch.ones(1, 1))


def test_missing_checkpoint_names_the_file_and_where_it_goes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path / "cache"))
    expected = str(tmp_path / "cache" / "sam" / "sam_vit_b_01ec64.pth")
    assert sam.default_sam_checkpoint("vit_b") == expected
    with pytest.raises(FileNotFoundError, match=rf"SAM checkpoint '{expected}' not found. Download "
                                                r"sam_vit_b_01ec64.pth .* put it at '" + expected):
        sam.build_sam("vit_b")
    with pytest.raises(FileNotFoundError, match=r"'/nowhere/sam_vit_h.pth' not found. Download sam_vit_h_4b8939.pth"):
        sam.build_sam("vit_h", "/nowhere/sam_vit_h.pth")
    with pytest.raises(ValueError, match="Unknown SAM model type 'vit_x'"):
        sam.build_sam("vit_x")


@pytest.fixture
def tiny_checkpoint(tmp_path, monkeypatch):
    """A 'tiny' model type (registered for the test) and its checkpoint file."""
    monkeypatch.setitem(sam.SAM_CHECKPOINT_FILES, "tiny", "sam_tiny.pth")
    monkeypatch.setitem(sam_model_registry, "tiny", lambda checkpoint=None: tiny_sam(seed=5))
    path = tmp_path / "sam_tiny.pth"
    torch.save(tiny_sam(seed=1).state_dict(), path)
    return str(path)


def test_build_sam_loads_the_checkpoint_weights_only(tiny_checkpoint):
    model = sam.build_sam("tiny", tiny_checkpoint)
    reference = tiny_sam(seed=1).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())
    assert not model.training


def _write_coco(root):
    """Two images, box-only annotations plus one that already has a polygon."""
    (root / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(IMAGE).save(root / "images" / name)
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 48, "width": 80},
                   {"id": 2, "file_name": "b.png", "height": 48, "width": 80}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 5, 26, 35], "iscrowd": 0, "area": 910},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [40, 2, 39, 45], "iscrowd": 0, "area": 1755},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "iscrowd": 0, "area": 400,
             "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
        ],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }
    path = root / "boxes.json"
    path.write_text(json.dumps(data))
    return path, data


def test_sam_annotate_round_trip_writes_a_new_json(tmp_path, tiny_checkpoint, capsys):
    input_json, data = _write_coco(tmp_path)
    digest = hashlib.sha256(input_json.read_bytes()).hexdigest()
    output_json = tmp_path / "masks.json"
    stats = sam_annotate.main(["annotate", "--input-json", str(input_json), "--image-root", str(tmp_path / "images"),
                               "--output-json", str(output_json), "--model-type", "tiny", "--checkpoint",
                               tiny_checkpoint])
    assert stats == {"images": 1, "masks": 2, "kept": 1}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == stats
    assert hashlib.sha256(input_json.read_bytes()).hexdigest() == digest  # input untouched
    out = json.loads(output_json.read_text())
    assert out["images"] == data["images"] and out["categories"] == data["categories"]
    assert out["annotations"][2] == data["annotations"][2]  # had a mask: kept as it was
    expected = sam.SamInstancePredictor(tiny_sam(seed=1))(
        IMAGE, boxes=torch.tensor([[4.0, 5.0, 30.0, 40.0], [40.0, 2.0, 79.0, 47.0]])).pred_masks
    for annotation, original, mask in zip(out["annotations"][:2], data["annotations"][:2], expected, strict=True):
        assert {k: v for k, v in annotation.items() if k not in ("segmentation", "area")} == {
            k: v for k, v in original.items() if k != "area"}
        decoded = rle_to_bitmask(annotation["segmentation"])
        assert decoded.shape == (48, 80) and np.array_equal(decoded.astype(bool), mask.numpy())
        assert annotation["area"] == int(mask.sum())
    again = copy.deepcopy(out)
    sam_annotate.main(["annotate", "--input-json", str(output_json), "--image-root", str(tmp_path / "images"),
                       "--output-json", str(tmp_path / "again.json"), "--model-type", "tiny", "--checkpoint",
                       tiny_checkpoint])
    assert json.loads((tmp_path / "again.json").read_text()) == again  # nothing left to annotate


def test_sam_annotate_refuses_to_write_over_its_input(tmp_path, tiny_checkpoint):
    input_json, _ = _write_coco(tmp_path)
    before = input_json.read_bytes()
    with pytest.raises(ValueError, match="leaves the input untouched: the output .* is the input"):
        sam_annotate.main(["annotate", "--input-json", str(input_json), "--image-root", str(tmp_path / "images"),
                           "--output-json", str(input_json), "--model-type", "tiny", "--checkpoint", tiny_checkpoint])
    assert input_json.read_bytes() == before


def test_refined_evaluator_scores_sam_masks_prompted_with_the_boxes(predictor):
    """Detections = the ground truth (boxes and masks): mask AP 100 before; after, SAM's masks."""
    records = DatasetCatalog.get("shapes_val")[:3]
    evaluator = COCOEvaluator("shapes_val", tasks=("segm",), distributed=False)
    refined = sam.SamRefinedEvaluator(COCOEvaluator("shapes_val", tasks=("segm",), distributed=False), predictor)
    for e in (evaluator, refined):
        e.reset()
    for record in records:
        gt = annotations_to_instances(record["annotations"], (record["height"], record["width"]), mask_format="bitmask")
        out = Instances(gt.image_size, pred_boxes=gt.gt_boxes, pred_classes=gt.gt_classes,
                        scores=torch.ones(len(gt)), pred_masks=gt.gt_masks.tensor)
        evaluator.process([record], [{"instances": out}])
        refined.process([record], [{"instances": out}])
    before = evaluator.evaluate()["segm"]["AP"]
    after = refined.evaluate()["segm"]["AP"]
    assert before == pytest.approx(100.0)
    assert 0.0 <= after < 100.0  # a random SAM does not reproduce the masks


def test_refine_command_runs_end_to_end(tmp_path, tiny_checkpoint, capsys):
    config = os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml")
    results = sam_annotate.main(["refine", "--config-file", config, "--dataset", "shapes_val", "--model-type", "tiny",
                                 "--checkpoint", tiny_checkpoint, "--output-dir", str(tmp_path),
                                 "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"])
    assert set(results) == {"before", "after"}
    assert [results[t]["bbox"]["AP50"] for t in ("before", "after")] == [results["before"]["bbox"]["AP50"]] * 2
    saved = json.loads((tmp_path / "sam_refine_results.json").read_text())
    assert saved["after"]["segm"].keys() == saved["before"]["segm"].keys() >= {"AP", "AP50", "AP75"}
    printed = capsys.readouterr().out
    assert "before: mask AP" in printed and "after: mask AP" in printed
    assert MetadataCatalog.get("shapes_val").thing_classes
