"""Meta-architectures defined above seg_research.export: the projects' semantic models (U-Net, FCN,
DeepLabV3+: SemanticSegmentor with their own backbone / head) export through the generic path, and
Mask2Former's MaskFormer through the architecture it registers (graphs.register_architecture). The
model is the reference: its own forward for the graph's outputs, its own semantic / panoptic /
instance inference for the runtime's numpy post-processing."""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import get_cfg
from seg_research.export import TracingAdapter, export_inference, script_model
from seg_research.export.graphs import _REGISTERED, register_architecture, supported_architectures
from seg_research.export.runtime import mask_classification_outputs
from seg_research.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _project in ("UNet", "FCN", "DeepLabV3Plus"):  # the projects' packages, as projects/conftest.py puts them
    if os.path.join(REPO, "projects", _project) not in sys.path:
        sys.path.insert(0, os.path.join(REPO, "projects", _project))

#: Mask2Former at the tests' 64 px (tests/projects/mask2former/test_shapes_mask2former.py's sizes); every
#: query whose class beats "no object" by 0.1 is a panoptic candidate, so that a random model has segments
M2F_TINY = ["INPUT.MIN_SIZE_TEST", 64, "INPUT.MAX_SIZE_TEST", 100, "MODEL.SEM_SEG_HEAD.CONVS_DIM", 32,
            "MODEL.SEM_SEG_HEAD.MASK_DIM", 32, "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", 1,
            "MODEL.MASK_FORMER.HIDDEN_DIM", 32, "MODEL.MASK_FORMER.DIM_FEEDFORWARD", 64,
            "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", 8, "MODEL.MASK_FORMER.DEC_LAYERS", 4,
            "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", 0.1, "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", 0.3]
#: name -> (config under the repository, function adding its keys (module, name), overrides)
MODELS = {
    "unet": ("projects/UNet/configs/Shapes/unet_instant_test.yaml", ("unet", "add_unet_config"), []),
    # PH2's single-channel binary head (NUM_CLASSES 1, BCE + Dice): its inference gives 2 channels
    "unet_binary": ("projects/UNet/configs/Shapes/unet_instant_test.yaml", ("unet", "add_unet_config"), [
        "MODEL.SEM_SEG_HEAD.NUM_CLASSES", 1, "MODEL.SEM_SEG_HEAD.LOSS_TYPES", ("bce_dice",),
        "MODEL.SEM_SEG_HEAD.LOSS_WEIGHTS", (1.0,)]),
    "fcn": ("projects/FCN/configs/Shapes/fcn8s_R_18_instant_test.yaml", ("fcn", "add_fcn_config"), []),
    "deeplab": ("projects/DeepLabV3Plus/configs/Shapes/deeplab_v3plus_R_18_instant_test.yaml",
                ("deeplab", "add_deeplab_config"), []),
    "mask2former": ("configs/Shapes/mask2former_R18_bs4_demo.yaml", None, M2F_TINY),
}


def config(name, *extra):
    import importlib

    path, add, opts = MODELS[name]
    cfg = get_cfg()
    if add is None:
        from seg_research.projects.deeplab import add_deeplab_config
        from seg_research.projects.mask2former import add_maskformer2_config

        add_deeplab_config(cfg)
        add_maskformer2_config(cfg)
    else:
        getattr(importlib.import_module(add[0]), add[1])(cfg)
    cfg.merge_from_file(os.path.join(REPO, path))
    cfg.merge_from_list([*opts, "MODEL.DEVICE", "cpu", *extra])
    return cfg


def build(name):
    cfg = config(name)
    torch.manual_seed(0)
    return build_model(cfg).eval()


def image(height, width, seed=0):
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed)) * 255


def head_outputs(model, img):
    """MaskFormer's class logits and mask logits at the unpadded input, as its forward computes them."""
    images = model.preprocess_image([{"image": img}])
    outputs = model.sem_seg_head(model.backbone(images.tensor))
    masks = F.interpolate(outputs["pred_masks"], size=images.tensor.shape[-2:], mode="bilinear", align_corners=False)
    return outputs["pred_logits"][0], masks[0, :, : img.shape[1], : img.shape[2]]


def check(name, model, outputs, img):
    with torch.no_grad():
        if name == "mask2former":
            logits, masks = head_outputs(model, img)
            torch.testing.assert_close(outputs["pred_logits"], logits, atol=1e-4, rtol=0)
            torch.testing.assert_close(outputs["pred_masks"], masks, atol=1e-3, rtol=0)
        else:
            expected = model([{"image": img}])[0]["sem_seg"]
            torch.testing.assert_close(outputs["sem_seg"], expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_inference_gives_the_models_outputs(name):
    model = build(name)
    assert isinstance(model, supported_architectures())
    for size in [(64, 96), (100, 70)]:
        img = image(*size)
        with torch.no_grad():
            check(name, model, export_inference(model, [{"image": img}]), img)


def test_unet_binary_head_gives_two_channels():
    model = build("unet_binary")
    with torch.no_grad():
        outputs = export_inference(model, [{"image": image(64, 96)}])
    assert outputs["sem_seg"].shape == (2, 64, 96)


@pytest.mark.parametrize("name", ["unet", "mask2former"])
def test_trace_and_script_serve_other_sizes(name):
    model = build(name)
    adapter = TracingAdapter(model, [{"image": image(64, 96)}], export_inference)
    scripted = script_model(model, image(64, 96))
    assert isinstance(scripted, torch.jit.ScriptModule)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
        for size in [(100, 70), (48, 150)]:
            img = image(*size, seed=1)
            check(name, model, adapter.outputs_schema(traced(img)), img)
            named = scripted(img)
            check(name, model, {k: named[k] for k in named}, img)


@pytest.mark.parametrize("panoptic_on", [True, False])
def test_mask_classification_runtime_gives_maskformers_inference(panoptic_on):
    """runtime.mask_classification_outputs (numpy) against MaskFormer's semantic_inference,
    panoptic_inference and instance_inference on the same logits; masks sharpened so that queries
    own segments and some overlap. Without the panoptic output, instances of every class."""
    model = build("mask2former")
    model.panoptic_on = panoptic_on
    generator = torch.Generator().manual_seed(3)
    num_classes = model.sem_seg_head.num_classes
    class_logits = torch.randn(8, num_classes + 1, generator=generator) * 3
    mask_logits = torch.randn(8, 1, 6, 7, generator=generator) * 4
    mask_logits = F.interpolate(mask_logits, size=(30, 35), mode="bilinear", align_corners=False)[:, 0]
    options = {**_metadata(model)["mask_classification"]}
    got = mask_classification_outputs(class_logits.numpy(), mask_logits.numpy(), options)
    with torch.no_grad():
        sem_seg = model.semantic_inference(class_logits, mask_logits)
        panoptic, segments = model.panoptic_inference(class_logits, mask_logits)
        instances = model.instance_inference(class_logits, mask_logits)
    np.testing.assert_allclose(got["sem_seg"], sem_seg.numpy(), atol=1e-5, rtol=0)
    if panoptic_on:
        assert len(segments) >= 2
        assert got["panoptic_seg"][1] == segments
        np.testing.assert_array_equal(got["panoptic_seg"][0], panoptic.numpy())
    else:
        assert "panoptic_seg" not in got and len(instances) == 8 * num_classes
    ours = got["instances"]
    assert ours["classes"].tolist() == instances.pred_classes.tolist()
    np.testing.assert_allclose(ours["scores"], instances.scores.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(ours["masks"], instances.pred_masks.numpy())
    np.testing.assert_array_equal(ours["boxes"], instances.pred_boxes.tensor.numpy())


def _metadata(model):
    from seg_research.projects.mask2former.export import maskformer_runtime_metadata

    return maskformer_runtime_metadata(model)


def test_mask_classification_semantic_only_combines_before_the_resize():
    """A semantic-only MaskFormer (SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE False) combines the
    masks at the input size and resizes the class scores; runtime.json says so."""
    cfg = config("mask2former", "MODEL.MASK_FORMER.TEST.PANOPTIC_ON", False, "MODEL.MASK_FORMER.TEST.INSTANCE_ON",
                 False, "MODEL.MASK_FORMER.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE", False)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert _metadata(model)["mask_classification"]["resize_masks_first"] is False
    from seg_research.export.runtime import postprocess

    img = image(64, 96)
    with torch.no_grad():
        raw = {k: v.numpy() for k, v in export_inference(model, [{"image": img}]).items()}
        expected = model([{"image": img, "height": 80, "width": 120}])[0]["sem_seg"]
    got = postprocess(raw, _metadata(model), (64, 96), 80, 120)
    assert set(got) == {"sem_seg"}
    np.testing.assert_allclose(got["sem_seg"], expected.numpy(), atol=1e-4, rtol=0)


class _Doubler(nn.Module):
    """A meta-architecture the library does not know."""

    def forward(self, batched_inputs):
        return [{"double": x["image"] * 2} for x in batched_inputs]


def test_register_architecture_dispatches_and_unknown_models_say_how():
    with pytest.raises(NotImplementedError, match="register_architecture"):
        export_inference(_Doubler(), [{"image": image(8, 8)}])
    register_architecture(_Doubler, lambda model, img: {"double": img * 2}, lambda model: {"factor": 2})
    try:
        img = image(8, 8)
        torch.testing.assert_close(export_inference(_Doubler(), [{"image": img}])["double"], img * 2)
        from seg_research.export.api import runtime_metadata

        cfg = get_cfg()
        cfg.merge_from_list(["DATASETS.TEST", ()])
        assert runtime_metadata(cfg, _Doubler(), ["double"], "model.onnx")["factor"] == 2
    finally:
        del _REGISTERED[_Doubler]


class _SizeAsNumber(nn.Module):
    """An architecture whose inference loops over the image height in Python."""

    padding_constraints = {"size_divisibility": 0}

    def forward(self, batched_inputs):
        raise NotImplementedError


def _loop_over_rows(model, img):
    for _ in range(img.shape[1] // 16):  # a Python loop over a size: its count is fixed at the sample's
        img = img + 1
    return {"rows": img}


def test_onnx_export_refuses_a_graph_fixed_to_the_sample_size(tmp_path):
    """torch.export specializes a size that the code makes a Python number, silently; export_onnx
    says so instead of writing a graph that serves the sample's size only."""
    from seg_research.export import export_onnx

    register_architecture(_SizeAsNumber, _loop_over_rows)
    try:
        with pytest.raises(NotImplementedError, match="fixes the image height"):
            export_onnx(_SizeAsNumber(), image(32, 40), str(tmp_path / "model.onnx"))
        assert not (tmp_path / "model.onnx").exists()
    finally:
        del _REGISTERED[_SizeAsNumber]
