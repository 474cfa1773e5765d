"""export_inference gives the model's own inference outputs (the model is the reference), and its
TorchScript trace and script serve other image sizes and detection counts (0 included) than the
sample's."""
import os

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.export import TracingAdapter, export_inference, script_model
from seg_research.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: name -> (config, overrides): the Shapes instant-test models, and a ResNet-18 C4 Mask R-CNN
MODELS = {
    "mask_rcnn_fpn": ("Shapes/mask_rcnn_R_18_FPN_instant_test.yaml", []),
    "mask_rcnn_c4": ("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml", [
        "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "MODEL.ROI_HEADS.NUM_CLASSES", 4,
        "MODEL.WEIGHTS", "", "MODEL.RPN.PRE_NMS_TOPK_TEST", 200, "MODEL.RPN.POST_NMS_TOPK_TEST", 50,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.01]),
    "semantic_fpn": ("Shapes/semantic_fpn_R_18_instant_test.yaml", []),
    "panoptic_fpn": ("Shapes/panoptic_fpn_R_18_instant_test.yaml", []),
}


def build(name, extra=()):
    config, opts = MODELS[name]
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", config))
    cfg.merge_from_list([*opts, "MODEL.DEVICE", "cpu", *extra])
    torch.manual_seed(0)
    return build_model(cfg).eval()


def image(height, width, seed=0):
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed)) * 255


def reference(model, img):
    """The model's outputs on the network input, before the resize to the original size."""
    with torch.no_grad():
        if hasattr(model, "sem_seg_head") and hasattr(model, "roi_heads"):
            detections, sem_seg = model.inference([{"image": img}], do_postprocess=False)
            return detections[0], sem_seg[0, :, : img.shape[1], : img.shape[2]]
        if hasattr(model, "roi_heads"):
            return model.inference([{"image": img}], do_postprocess=False)[0], None
        return None, model([{"image": img}])[0]["sem_seg"]


def check(model, outputs, img):
    instances, sem_seg = reference(model, img)
    if sem_seg is not None:
        torch.testing.assert_close(outputs["sem_seg"], sem_seg, atol=1e-4, rtol=0)
    if instances is not None:
        ours = outputs["instances"]
        assert ours["pred_classes"].tolist() == instances.pred_classes.tolist()
        torch.testing.assert_close(ours["pred_boxes"], instances.pred_boxes.tensor, atol=1e-3, rtol=0)
        torch.testing.assert_close(ours["scores"], instances.scores, atol=1e-5, rtol=0)
        # the model's fused class-logits path and the unfused layers differ by float summation order
        torch.testing.assert_close(ours["pred_masks"], instances.pred_masks[:, 0], atol=1e-4, rtol=0)
        return len(instances)
    return None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_inference_gives_the_models_outputs(name):
    model = build(name)
    for size in [(64, 96), (100, 70)]:
        img = image(*size)
        with torch.no_grad():
            outputs = export_inference(model, [{"image": img}])
        num = check(model, outputs, img)
        assert num is None or num > 0  # detections exist to compare (score thresholds as configured)


@pytest.mark.parametrize("name", ["mask_rcnn_fpn", "panoptic_fpn", "semantic_fpn"])
def test_trace_serves_other_sizes_and_detection_counts(name):
    model = build(name)
    adapter = TracingAdapter(model, [{"image": image(64, 96)}], export_inference)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
        for size in [(100, 70), (48, 150)]:
            img = image(*size, seed=1)
            check(model, adapter.outputs_schema(traced(img)), img)


def _unflatten(outputs):
    """A scripted module's named outputs as export_inference's structure."""
    result = {"sem_seg": outputs["sem_seg"]} if "sem_seg" in outputs else {}
    if "instances.scores" in outputs:
        result["instances"] = {k.split(".", 1)[1]: v for k, v in outputs.items() if k.startswith("instances.")}
    return result


@pytest.mark.parametrize("name", sorted(MODELS))
def test_script_serves_other_sizes_and_detection_counts(name):
    model = build(name)
    scripted = script_model(model, image(64, 96))
    assert isinstance(scripted, torch.jit.ScriptModule)
    with torch.no_grad():
        for size in [(100, 70), (48, 150)]:
            img = image(*size, seed=1)
            check(model, _unflatten(scripted(img)), img)


def test_trace_and_script_run_an_image_without_detections():
    # the background logit raised far above the others: no class passes the score threshold
    model = build("mask_rcnn_fpn")
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[-1] = 100.0
    adapter = TracingAdapter(model, [{"image": image(64, 96)}], export_inference)
    scripted = script_model(model, image(64, 96))
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
        for outputs in (adapter.outputs_schema(traced(image(80, 80, seed=2)))["instances"],
                        _unflatten(scripted(image(80, 80, seed=2)))["instances"]):
            assert outputs["pred_boxes"].shape == (0, 4) and outputs["pred_masks"].shape == (0, 28, 28)
            assert outputs["scores"].shape == (0,) and outputs["pred_classes"].shape == (0,)


def test_export_inference_refuses_batches():
    model = build("semantic_fpn")
    with pytest.raises(ValueError, match="one image"):
        export_inference(model, [{"image": image(64, 64)}] * 2)
