"""D2SwinTransformer against upstream Mask2Former's (fixture: make_train_fixtures.py): parameter names,
shapes and counts (T/S/B/L), and Swin-T's outputs for the same generated weights."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from seg_research.checkpoint import Checkpointer
from seg_research.config import get_cfg
from seg_research.layers import ShapeSpec
from seg_research.modeling import build_backbone
from seg_research.projects.mask2former import add_maskformer2_config
from seg_research.projects.mask2former.modeling.backbone.swin import D2SwinTransformer, window_partition

from .make_train_fixtures import FIXTURES, SWIN_VARIANTS, generated_swin_state, swin_image


@pytest.fixture(scope="module")
def upstream():
    return np.load(os.path.join(FIXTURES, "swin_parity.npz"))


def _cfg(variant: str):
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    for key, value in SWIN_VARIANTS[variant].items():
        setattr(cfg.MODEL.SWIN, key, value)
    cfg.MODEL.BACKBONE.NAME = "D2SwinTransformer"
    return cfg


def test_parameter_names_and_shapes_equal_upstreams(upstream):
    model = build_backbone(_cfg("T"))
    assert isinstance(model, D2SwinTransformer)
    keys_shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert keys_shapes == [(k, tuple(s)) for k, s in json.loads(str(upstream["keys_shapes"]))]
    assert [k for k, _ in model.named_parameters()] == json.loads(str(upstream["parameter_names"]))


@pytest.mark.parametrize("variant", ["T", "S", "B", "L"])
def test_parameter_counts_equal_upstreams(variant, upstream):
    with torch.device("meta"):
        model = build_backbone(_cfg(variant))
    assert sum(p.numel() for p in model.parameters()) == json.loads(str(upstream["param_counts"]))[variant]


def test_swin_t_outputs_equal_upstreams(upstream):
    model = build_backbone(_cfg("T")).eval()
    keys_shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    missing, unexpected = model.load_state_dict(
        {k: torch.as_tensor(v) for k, v in generated_swin_state(keys_shapes).items()}, strict=False)
    assert not unexpected and all(k.endswith("relative_position_index") for k in missing)
    assert model.output_shape() == {
        "res2": ShapeSpec(channels=96, stride=4), "res3": ShapeSpec(channels=192, stride=8),
        "res4": ShapeSpec(channels=384, stride=16), "res5": ShapeSpec(channels=768, stride=32)}
    with torch.no_grad():
        features = model(torch.as_tensor(swin_image()))
    assert sorted(features) == ["res2", "res3", "res4", "res5"]
    for name, value in features.items():
        np.testing.assert_allclose(value.numpy(), upstream[f"out_{name}"], rtol=0, atol=1e-4, err_msg=name)


def _tiny(**kwargs):
    torch.manual_seed(0)
    return D2SwinTransformer(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=3, **kwargs)


def test_out_features_ape_and_drop_path():
    model = _tiny(out_features=("res3", "res5"), ape=True, pretrain_img_size=32, drop_path_rate=0.5)
    out = model.eval()(torch.randn(2, 3, 40, 36))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"res3": (2, 16, 5, 5), "res5": (2, 64, 2, 2)}
    rates = [getattr(b.drop_path, "p", 0.0) for layer in model.layers for b in layer.blocks]
    np.testing.assert_allclose(rates, np.linspace(0, 0.5, 8), atol=1e-7)
    # Stochastic depth drops whole samples' branches only in training.
    model.train()
    torch.manual_seed(1)
    a = model(torch.ones(2, 3, 40, 36))["res5"]
    torch.manual_seed(2)
    b = model(torch.ones(2, 3, 40, 36))["res5"]
    assert not torch.equal(a, b)


def test_activation_checkpointing_gives_the_same_gradients():
    x = torch.randn(1, 3, 32, 32)
    grads = []
    for use_checkpoint in (False, True):
        model = _tiny(use_checkpoint=use_checkpoint, drop_path_rate=0.0)
        sum(v.square().sum() for v in model(x).values()).backward()
        grads.append(model.layers[1].blocks[1].attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_window_partition_order():
    x = torch.arange(16.0).view(1, 4, 4, 1)
    # 2x2 windows, row-major windows and tokens.
    assert window_partition(x, 2)[..., 0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13],
                                                        [10, 11, 14, 15]]


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="OUT_FEATURES"):
        D2SwinTransformer(out_features=("res6",))
    with pytest.raises(ValueError, match="DEPTHS"):
        D2SwinTransformer(depths=(2, 2, 6))


def test_imagenet_swin_pkl_loads_into_the_backbone(tmp_path):
    # An ImageNet Swin as upstream's conversion script writes it: Swin's names at the top level, with the
    # classifier head, its final norm and attention-mask buffers, under "model" with detectron2's tags.
    source = _tiny()
    state = {k: v.numpy() for k, v in source.state_dict().items() if not k.startswith("norm")}
    state.update({"norm.weight": np.full(64, 3.0, np.float32), "norm.bias": np.zeros(64, np.float32),
                  "head.weight": np.zeros((10, 64), np.float32), "head.bias": np.zeros(10, np.float32),
                  "layers.0.blocks.1.attn_mask": np.zeros((4, 9, 9), np.float32)})
    path = tmp_path / "swin_imagenet.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": state, "__author__": "third_party", "matching_heuristics": True}, f)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.backbone = D2SwinTransformer(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=3)
            self.head = torch.nn.Linear(2, 2)

    # ... and the released .pth: torch.save of {"model": tensors}.
    pth = tmp_path / "swin_imagenet.pth"
    torch.save({"model": {k: torch.as_tensor(v) for k, v in state.items()}}, pth)
    for weights in (path, pth):
        model = Model()
        Checkpointer(model).load(str(weights))
        loaded = model.backbone.state_dict()
        for key, value in source.state_dict().items():
            if key.startswith("norm"):
                # upstream's name matching leaves the output norms as initialized (ones / zeros)
                expected = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
                assert torch.equal(loaded[key], expected), key
            else:
                assert torch.equal(loaded[key], value), key
