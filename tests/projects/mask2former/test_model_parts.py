"""Mask2Former's model parts on tiny models: config keys as upstream's, the position encoding, both
checkpoint layouts, semantic / panoptic / instance inference on hand-made queries, training losses and
the pixel decoder's float32 under autocast. Expected values are computed by hand here."""
import json
import math
import os
import pickle

import pytest
import torch

from seg_research.checkpoint import DetectionCheckpointer
from seg_research.config import get_cfg
from seg_research.modeling import SEM_SEG_HEADS_REGISTRY, build_model
from seg_research.projects.mask2former import MaskFormer, add_maskformer2_config
from seg_research.projects.mask2former.modeling import TRANSFORMER_DECODER_REGISTRY
from seg_research.projects.mask2former.modeling.transformer_decoder import PositionEmbeddingSine
from seg_research.structures import BitMasks, Instances

HERE = os.path.dirname(os.path.abspath(__file__))


def tiny_cfg(pixel_decoder="MSDeformAttnPixelDecoder"):
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.META_ARCHITECTURE = "MaskFormer"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    head = cfg.MODEL.SEM_SEG_HEAD
    head.NAME = "MaskFormerHead"
    head.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    head.NUM_CLASSES = 3
    head.CONVS_DIM = head.MASK_DIM = 32
    head.NORM = "GN"
    head.PIXEL_DECODER_NAME = pixel_decoder
    head.TRANSFORMER_ENC_LAYERS = 1
    mf = cfg.MODEL.MASK_FORMER
    mf.TRANSFORMER_IN_FEATURE = "multi_scale_pixel_decoder"
    mf.HIDDEN_DIM = 32
    mf.NUM_OBJECT_QUERIES = 5
    mf.NHEADS = 4
    mf.DIM_FEEDFORWARD = 64
    mf.DEC_LAYERS = 4
    mf.TRAIN_NUM_POINTS = 64
    return cfg


def test_config_keys_are_upstreams():
    with open(os.path.join(HERE, "fixtures", "maskformer2_config.json")) as f:
        upstream = json.load(f)
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    for key, default in upstream.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert (list(node) if isinstance(node, tuple) else node) == default, key


def test_registered_under_upstreams_names():
    assert {"MaskFormerHead", "MSDeformAttnPixelDecoder", "BasePixelDecoder"} <= {k for k, _ in SEM_SEG_HEADS_REGISTRY}
    assert "MultiScaleMaskedTransformerDecoder" in TRANSFORMER_DECODER_REGISTRY


def test_position_embedding_sine_by_hand():
    pos = PositionEmbeddingSine(num_pos_feats=4, normalize=True)(torch.zeros(1, 7, 2, 3))
    assert pos.shape == (1, 8, 2, 3) and pos.dtype == torch.float32
    for r in range(2):
        for c in range(3):
            y = (r + 1) / (2 + 1e-6) * 2 * math.pi
            x = (c + 1) / (3 + 1e-6) * 2 * math.pi
            expected = [math.sin(y), math.cos(y), math.sin(y / 100), math.cos(y / 100),
                        math.sin(x), math.cos(x), math.sin(x / 100), math.cos(x / 100)]
            torch.testing.assert_close(pos[0, :, r, c], torch.tensor(expected), atol=1e-6, rtol=0)


def _tiny_model(**test_on):
    cfg = tiny_cfg()
    for key, value in test_on.items():
        setattr(cfg.MODEL.MASK_FORMER.TEST, key, value)
    torch.manual_seed(0)
    return build_model(cfg)


def _old_layout(state):
    return {k.replace("sem_seg_head.pixel_decoder.", "sem_seg_head.", 1): v for k, v in state.items()}


def test_both_checkpoint_layouts_load_and_nothing_is_renamed_twice(tmp_path):
    source = _tiny_model()
    state = {k: v.clone() for k, v in source.state_dict().items()}
    old = _old_layout(state)
    assert "sem_seg_head.transformer.level_embed" in old and "sem_seg_head.mask_features.weight" in old

    for variant in (old, dict(state)):  # dict(): a new-layout dict without version metadata
        torch.manual_seed(1)
        target = build_model(tiny_cfg())
        target.load_state_dict(dict(variant), strict=True)
        for key, value in target.state_dict().items():
            assert torch.equal(value, state[key]), key

    # the official zoo file: a plain {"model": numpy arrays} .pkl in the old layout, through the checkpointer
    path = tmp_path / "model.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in old.items()}, "__author__": "test"}, f)
    torch.manual_seed(2)
    target = build_model(tiny_cfg())
    DetectionCheckpointer(target).load(str(path))
    for key, value in target.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_static_query_is_query_feat():
    source = _tiny_model()
    state = dict(source.state_dict())
    state["sem_seg_head.predictor.static_query.weight"] = state.pop("sem_seg_head.predictor.query_feat.weight")
    torch.manual_seed(1)
    target = build_model(tiny_cfg())
    target.load_state_dict(state, strict=True)
    assert torch.equal(target.sem_seg_head.predictor.query_feat.weight, source.sem_seg_head.predictor.query_feat.weight)


def _probs_to_logits(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float32))


def _logit(p):
    return math.log(p / (1 - p))


class _Meta:
    thing_dataset_id_to_contiguous_id = {10: 0, 11: 1}  # classes 0 and 1 are things, 2 is stuff


def test_semantic_inference_by_hand():
    model = _tiny_model()
    mask_cls = _probs_to_logits([[0.6, 0.3, 0.05, 0.05], [0.2, 0.2, 0.5, 0.1]])
    mask_pred = torch.tensor([[[0.0, _logit(0.75)]], [[_logit(0.9), _logit(0.2)]]])  # (Q=2, 1, 2)
    sem = model.semantic_inference(mask_cls, mask_pred)
    m = [[0.5, 0.75], [0.9, 0.2]]
    p = [[0.6, 0.3, 0.05], [0.2, 0.2, 0.5]]
    expected = torch.tensor([[[p[0][c] * m[0][x] + p[1][c] * m[1][x] for x in range(2)]] for c in range(3)])
    torch.testing.assert_close(sem, expected, atol=1e-6, rtol=0)


def test_panoptic_inference_by_hand():
    model = _tiny_model(PANOPTIC_ON=True, SEMANTIC_ON=True)
    model.metadata = _Meta()
    model.object_mask_threshold, model.overlap_threshold = 0.5, 0.4
    hi, lo = _logit(0.99), _logit(0.01)
    mask_pred = torch.full((5, 4, 4), lo)
    mask_pred[0, :, :2] = hi                  # q0: thing class 0, left half
    mask_pred[1, :, 2:] = _logit(0.6)         # q1: stuff class 2, right half (weakly)
    mask_pred[2, 2:, 2:] = hi                 # q2: stuff class 2, bottom-right: owns it (0.7 * 0.99 > 0.8 * 0.6)
    mask_pred[3, :2, :] = hi                  # q3: best class is "no object": dropped
    mask_pred[4, :, :] = hi                   # q4: thing class 1 at 0.4 <= threshold: dropped
    mask_cls = _probs_to_logits([[0.9, 0.04, 0.03, 0.03], [0.05, 0.05, 0.8, 0.1], [0.1, 0.1, 0.7, 0.1],
                                 [0.1, 0.1, 0.1, 0.7], [0.3, 0.4, 0.2, 0.1]])
    ids, segments = model.panoptic_inference(mask_cls, mask_pred)
    # q1 keeps 4 of its 8 confident pixels (0.5 >= 0.4); q2's pixels join q1's segment (same stuff class)
    expected = torch.zeros(4, 4, dtype=torch.int32)
    expected[:, :2] = 1
    expected[:, 2:] = 2
    assert torch.equal(ids, expected)
    assert segments == [{"id": 1, "isthing": True, "category_id": 0}, {"id": 2, "isthing": False, "category_id": 2}]

    # with an overlap threshold of 0.6, q1 (0.5) is dropped: q2 alone is segment 2, the top-right is unassigned
    model.overlap_threshold = 0.6
    ids, segments = model.panoptic_inference(mask_cls, mask_pred)
    expected[:2, 2:] = 0
    assert torch.equal(ids, expected)
    assert segments == [{"id": 1, "isthing": True, "category_id": 0}, {"id": 2, "isthing": False, "category_id": 2}]


def test_instance_inference_by_hand():
    model = _tiny_model(INSTANCE_ON=True, SEMANTIC_ON=False)
    model.test_topk_per_image = 3
    model.metadata = _Meta()
    mask_cls = _probs_to_logits([[0.5, 0.1, 0.3, 0.1], [0.05, 0.7, 0.05, 0.2]] + [[0.01, 0.01, 0.01, 0.97]] * 3)
    mask_pred = torch.full((5, 3, 4), -5.0)
    mask_pred[0, :2, :2] = _logit(0.8)
    mask_pred[1, 1:, 1:] = _logit(0.6)
    inst = model.instance_inference(mask_cls, mask_pred)
    # the 3 best (query, class) pairs: (1, 1) 0.7, (0, 0) 0.5, (0, 2) 0.3
    torch.testing.assert_close(inst.scores, torch.tensor([0.7 * 0.6, 0.5 * 0.8, 0.3 * 0.8]), atol=1e-5, rtol=0)
    assert inst.pred_classes.tolist() == [1, 0, 2]
    assert inst.pred_masks.dtype == torch.bool and inst.pred_masks.sum((1, 2)).tolist() == [6, 4, 4]
    assert inst.pred_boxes.tensor.tolist() == [[1, 1, 4, 3], [0, 0, 2, 2], [0, 0, 2, 2]]

    model.panoptic_on = True  # then instances are things only: class 2 (stuff) goes
    inst = model.instance_inference(mask_cls, mask_pred)
    assert inst.pred_classes.tolist() == [1, 0]


def test_inference_outputs_and_sizes():
    model = _tiny_model(PANOPTIC_ON=True, INSTANCE_ON=True).eval()
    model.metadata = _Meta()
    inputs = [{"image": torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8), "height": 25, "width": 35},
              {"image": torch.randint(0, 256, (3, 64, 40), dtype=torch.uint8)}]
    with torch.no_grad():
        outputs = model(inputs)
    assert outputs[0]["sem_seg"].shape == (3, 25, 35) and outputs[1]["sem_seg"].shape == (3, 64, 40)
    assert outputs[0]["panoptic_seg"][0].shape == (25, 35) and outputs[0]["instances"].image_size == (25, 35)


def test_panoptic_needs_thing_metadata():
    model = _tiny_model(PANOPTIC_ON=True)
    model.metadata = None
    with pytest.raises(Exception, match="thing_dataset_id_to_contiguous_id"):
        model.panoptic_inference(torch.zeros(5, 4), torch.zeros(5, 2, 2))


def test_training_losses_are_weighted_for_every_layer():
    model = _tiny_model().train()
    masks = torch.zeros(2, 48, 64, dtype=torch.bool)
    masks[0, 5:30, 5:40] = True
    masks[1, 30:, 30:] = True
    inst = Instances((48, 64), gt_classes=torch.tensor([0, 2]), gt_masks=BitMasks(masks))
    batch = [{"image": torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8), "instances": inst}]
    torch.manual_seed(3)
    losses = model(batch)
    layers = [""] + [f"_{i}" for i in range(3)]  # DEC_LAYERS 4: final + 3 auxiliary predictions
    assert sorted(losses) == sorted(f"{n}{s}" for n in ("loss_ce", "loss_mask", "loss_dice") for s in layers)

    # the same outputs through the criterion alone, unweighted: the model multiplies by CLASS/MASK/DICE_WEIGHT
    images = model.preprocess_image(batch)
    torch.manual_seed(3)
    outputs = model.sem_seg_head(model.backbone(images.tensor))
    raw = model.criterion(outputs, model.prepare_targets([inst], images.tensor.shape[-2:]))
    mf = tiny_cfg().MODEL.MASK_FORMER
    weights = {"loss_ce": mf.CLASS_WEIGHT, "loss_mask": mf.MASK_WEIGHT, "loss_dice": mf.DICE_WEIGHT}
    for name, value in losses.items():
        torch.testing.assert_close(value, raw[name] * weights[name.split("_")[0] + "_" + name.split("_")[1]])
    sum(losses.values()).backward()
    assert model.sem_seg_head.pixel_decoder.transformer.level_embed.grad is not None
    assert model.sem_seg_head.predictor.query_feat.weight.grad is not None


def test_training_needs_instances():
    model = _tiny_model().train()
    with pytest.raises(ValueError, match="instances"):
        model([{"image": torch.zeros(3, 32, 32, dtype=torch.uint8)}])


def test_pixel_decoder_is_float32_under_autocast():
    model = _tiny_model().eval()
    features = model.backbone(torch.randn(1, 3, 64, 64))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mask_features, encoder, multi_scale = model.sem_seg_head.pixel_decoder.forward_features(features)
    assert mask_features.dtype == torch.float32 and all(f.dtype == torch.float32 for f in multi_scale)
    assert mask_features.shape == (1, 32, 16, 16) and [f.shape[-1] for f in multi_scale] == [2, 4, 8]


def test_base_pixel_decoder():
    torch.manual_seed(0)
    model = build_model(tiny_cfg("BasePixelDecoder")).eval()
    decoder = model.sem_seg_head.pixel_decoder
    names = {n.split(".")[0] for n, _ in decoder.named_parameters()}
    assert names == {"adapter_1", "adapter_2", "adapter_3", "layer_1", "layer_2", "layer_3", "layer_4", "mask_features"}
    mask_features, encoder, multi_scale = decoder.forward_features(model.backbone(torch.randn(2, 3, 64, 96)))
    assert encoder is None and mask_features.shape == (2, 32, 16, 24)
    assert [tuple(f.shape[-2:]) for f in multi_scale] == [(2, 3), (4, 6), (8, 12)]
    assert isinstance(model, MaskFormer)


def test_bad_pixel_decoder_name_is_named():
    cfg = tiny_cfg("NoSuchDecoder")
    with pytest.raises(Exception, match="PIXEL_DECODER_NAME 'NoSuchDecoder'"):
        build_model(cfg)


def test_upstream_import_paths():
    from seg_research.projects.mask2former.modeling.pixel_decoder.ops.functions import ms_deform_attn_core_pytorch
    from seg_research.projects.mask2former.modeling.pixel_decoder.ops.modules import MSDeformAttn

    assert callable(ms_deform_attn_core_pytorch) and MSDeformAttn(32, 3, 4, 4).n_points == 4


def test_semantic_tta_averages_the_scores_as_they_are():
    from seg_research.data import transforms as T
    from seg_research.modeling import build_tta_model
    from seg_research.projects.mask2former import SemanticSegmentorWithTTA

    model = _tiny_model().eval()
    image = torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8)
    flipped = image.flip(dims=[2])

    def two_copies(inputs):  # the original and its mirror image
        return [{"image": image, "height": 40, "width": 56, "transforms": T.TransformList([])},
                {"image": flipped, "height": 40, "width": 56,
                 "transforms": T.TransformList([T.HFlipTransform(56)])}]

    tta = SemanticSegmentorWithTTA(tiny_cfg(), model, tta_mapper=two_copies)
    with torch.no_grad():
        out = tta([{"image": image, "height": 40, "width": 56}])[0]["sem_seg"]
        plain = model([{"image": image}])[0]["sem_seg"]
        mirrored = model([{"image": flipped}])[0]["sem_seg"].flip(dims=[2])
    torch.testing.assert_close(out, (plain + mirrored) / 2)  # no softmax: MaskFormer's scores are averaged
    assert isinstance(build_tta_model(tiny_cfg(), model), SemanticSegmentorWithTTA)
