"""The exported files give the PyTorch model's outputs (``DefaultPredictor``, the reference) on images
of several sizes: ONNX through tools/deploy/onnx_predict.py in a fresh process that imports neither
torch nor seg_research, and TorchScript through TorchScriptPredictor. Criteria (issue 28): same
classes in the same order, boxes within 0.05 px, scores within 1e-3, mask IoU >= 0.98 per
instance; semantic labels equal on >= 99.9% of pixels; panoptic ids on >= 99.5%.

TorchScript both traced and scripted. Models: the Shapes demo Mask R-CNN, Semantic FPN and Panoptic FPN after a short training, a
ResNet-18 C4 Mask R-CNN, and R50-FPN Mask R-CNN with detectron2-layout weights (the generated
model-zoo ``.pkl`` of tests/checkpoint)."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_util

from seg_research.config import get_cfg
from seg_research.data import MetadataCatalog
from seg_research.engine import DefaultPredictor, DefaultTrainer
from seg_research.export import TorchScriptPredictor, export_model
from seg_research.export.runtime import network_input
from tests.checkpoint.detectron2_parity import CONFIGS, OPTS, generated_state_dict, make_image

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONNX_PREDICT = os.path.join(REPO, "tools", "deploy", "onnx_predict.py")
FIXTURES = os.path.join(REPO, "tests", "checkpoint", "fixtures")
SHORT_TRAINING = ["SOLVER.MAX_ITER", 10, "SOLVER.IMS_PER_BATCH", 2, "SOLVER.WARMUP_ITERS", 2,
                  "SOLVER.CHECKPOINT_PERIOD", 1000, "TEST.EVAL_PERIOD", 0, "MODEL.DEVICE", "cpu"]
C4_ON_SHAPES = ["MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "MODEL.WEIGHTS", "",
                "MODEL.MASK_ON", True, "MODEL.ROI_HEADS.NUM_CLASSES", 4, "MODEL.RPN.PRE_NMS_TOPK_TEST", 200,
                "MODEL.RPN.POST_NMS_TOPK_TEST", 50, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.01,
                "MODEL.PIXEL_STD", [57.375, 57.120, 58.395], "DATASETS.TEST", ("shapes_val",),
                "INPUT.MIN_SIZE_TEST", 128, "INPUT.MAX_SIZE_TEST", 200, "MODEL.DEVICE", "cpu"]
# (config, overrides, train briefly first)
CASES = {
    "mask_rcnn_fpn": ("Shapes/mask_rcnn_R_18_FPN_demo.yaml", SHORT_TRAINING, True),
    "semantic_fpn": ("Shapes/semantic_fpn_R_18_demo.yaml", SHORT_TRAINING, True),
    "panoptic_fpn": ("Shapes/panoptic_fpn_R_18_demo.yaml", SHORT_TRAINING, True),
    "mask_rcnn_c4": ("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml", C4_ON_SHAPES, False),
    # scores are at most 1, so none passes: every image has 0 detections
    "mask_rcnn_fpn_no_detections": ("Shapes/mask_rcnn_R_18_FPN_instant_test.yaml",
                                     ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", 1.0, "MODEL.DEVICE", "cpu"], False),
    "mask_rcnn_R_50_FPN_detectron2": (CONFIGS["mask_rcnn_R_50_FPN"], [
        *OPTS, "INPUT.MIN_SIZE_TEST", 256, "INPUT.MAX_SIZE_TEST", 400, "DATASETS.TEST", ("shapes_val",)], False),
}


def _images():
    """BGR uint8 images of several sizes: a Shapes validation image as generated, resized, and
    detectron2's parity image; none of them the size the model was traced at."""
    from seg_research.data import DatasetCatalog
    from seg_research.data.detection_utils import read_image

    val = read_image(DatasetCatalog.get("shapes_val")[0]["file_name"], format="BGR")
    wide = np.asarray(Image.fromarray(val).resize((150, 100), Image.Resampling.BILINEAR))
    return {"val": val, "wide": wide, "d2": make_image()}


def _cfg(name, tmp_path):
    config, opts, train = CASES[name]
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", config))
    cfg.merge_from_list([*opts, "OUTPUT_DIR", str(tmp_path / "train")])
    torch.manual_seed(0)
    if train:
        os.makedirs(cfg.OUTPUT_DIR)
        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
        cfg.MODEL.WEIGHTS = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    elif name.endswith("detectron2"):
        fixture = np.load(os.path.join(FIXTURES, "d2_mask_rcnn_R_50_FPN.npz"))
        stats = {k[len("stat/"):]: fixture[k] for k in fixture.files if k.startswith("stat/")}
        path = tmp_path / "model_final.pkl"
        with open(path, "wb") as f:  # the layout of detectron2's model-zoo files
            pickle.dump({"model": generated_state_dict(json.loads(str(fixture["keys_shapes"])), stats),
                         "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}, f)
        cfg.MODEL.WEIGHTS = str(path)
    else:
        from seg_research.checkpoint import Checkpointer
        from seg_research.modeling import build_model

        model = build_model(cfg)
        Checkpointer(model, str(tmp_path)).save("random")
        cfg.MODEL.WEIGHTS = str(tmp_path / "random.pth")
    return cfg


def _sample(cfg, image):
    resize = {"short_edge": cfg.INPUT.MIN_SIZE_TEST, "max_size": cfg.INPUT.MAX_SIZE_TEST}
    return torch.from_numpy(network_input(image, {"input_format": cfg.INPUT.FORMAT, "resize": resize}, "BGR"))


def _mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def _check_instances(expected, boxes_xyxy, scores, classes, masks):
    assert classes.tolist() == expected.pred_classes.tolist()
    np.testing.assert_allclose(boxes_xyxy, expected.pred_boxes.tensor.numpy(), atol=0.05, rtol=0)
    np.testing.assert_allclose(scores, expected.scores.numpy(), atol=1e-3, rtol=0)
    if masks is not None:
        ious = [_mask_iou(m, e) for m, e in zip(masks, expected.pred_masks.numpy(), strict=True)]
        assert min(ious, default=1.0) >= 0.98, ious


def _check_outputs(expected, got):
    """``got``: {"instances": (boxes, scores, classes, masks), "sem_seg": labels, "panoptic_seg": ids}."""
    if "instances" in expected:
        _check_instances(expected["instances"], *got["instances"])
    if "sem_seg" in expected and "sem_seg" in got:
        assert (got["sem_seg"] == expected["sem_seg"].argmax(0).numpy()).mean() >= 0.999
    if "panoptic_seg" in expected:
        assert (got["panoptic_seg"] == expected["panoptic_seg"][0].numpy()).mean() >= 0.995


def _run_onnx_predict(model_dir, image_paths, output):
    """tools/deploy/onnx_predict.py in a fresh interpreter; returns the top-level modules of torch
    and seg_research it imported (none expected)."""
    code = ("import json, runpy, sys\n"
            f"sys.argv = ['onnx_predict.py', '--model', {str(model_dir)!r}, '--output', {str(output)!r}, "
            f"'--threads', '1', '--input', *{[str(p) for p in image_paths]!r}]\n"
            "try:\n"
            f"    runpy.run_path({ONNX_PREDICT!r}, run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'seg_research'})))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(output.parent))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _from_results_json(entry, metadata):
    """results.json's entry back to arrays in contiguous ids (the reference's)."""
    got = {}
    if "instances" in entry:
        to_contiguous = dict(map(tuple, metadata.get("thing_dataset_id_to_contiguous_id") or []))
        records = entry["instances"]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in records)]).reshape(-1, 4)
        scores = np.array([r["score"] for r in records])
        classes = np.array([to_contiguous.get(r["category_id"], r["category_id"]) for r in records], dtype=np.int64)
        masks = [mask_util.decode({**r["segmentation"], "counts": r["segmentation"]["counts"].encode()}).astype(bool)
                 for r in records] if records and "segmentation" in records[0] else None
        got["instances"] = (boxes, scores, classes, masks)
    if "sem_seg" in entry:
        got["sem_seg"] = np.asarray(Image.open(entry["sem_seg"]))
    if "panoptic_seg" in entry:
        rgb = np.asarray(Image.open(entry["panoptic_seg"]["file_name"])).astype(np.int64)
        got["panoptic_seg"] = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    return got


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_models_give_the_pytorch_outputs(name, tmp_path):
    cfg = _cfg(name, tmp_path)
    predictor = DefaultPredictor(cfg)
    images = _images()
    image_paths = []
    for key, image in images.items():
        image_paths.append(tmp_path / f"{key}.png")
        Image.fromarray(image[:, :, ::-1]).save(image_paths[-1])
    expected = {key: predictor(image) for key, image in images.items()}
    # traced at a size none of the test images has
    sample = _sample(cfg, np.zeros((77, 91, 3), dtype=np.uint8) + 100)
    export_model(cfg, predictor.model, sample, str(tmp_path / "onnx"), "onnx")
    export_model(cfg, predictor.model, sample, str(tmp_path / "tracing"), "torchscript", "tracing")
    export_model(cfg, predictor.model, sample, str(tmp_path / "scripting"), "torchscript", "scripting")

    forbidden = _run_onnx_predict(tmp_path / "onnx", image_paths, tmp_path / "results.json")
    assert forbidden == []
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    with open(tmp_path / "onnx" / "runtime.json") as f:
        metadata = json.load(f)
    assert [os.path.basename(r["file_name"]) for r in results] == [p.name for p in image_paths]
    for entry, key in zip(results, images, strict=True):
        _check_outputs(expected[key], _from_results_json(entry, metadata))

    predictors = {method: TorchScriptPredictor(str(tmp_path / method)) for method in ("tracing", "scripting")}
    for method, key in ((m, k) for m in predictors for k in images):
        out = predictors[method](images[key])
        got = {}
        if "instances" in out:
            inst = out["instances"]
            masks = inst.pred_masks.numpy() if inst.has("pred_masks") else None
            got["instances"] = (inst.pred_boxes.tensor.numpy(), inst.scores.numpy(), inst.pred_classes.numpy(), masks)
        if "sem_seg" in out:
            got["sem_seg"] = out["sem_seg"].argmax(0).numpy()
        if "panoptic_seg" in out:
            got["panoptic_seg"] = out["panoptic_seg"][0].numpy()
        _check_outputs(expected[key], got)

    if name.endswith("no_detections"):
        assert all(len(expected[key]["instances"]) == 0 for key in images)
    elif "instances" in expected["d2"]:
        assert sum(len(expected[key]["instances"]) for key in images) > 0
    assert getattr(MetadataCatalog.get(cfg.DATASETS.TEST[0]), "thing_classes", None) == metadata["thing_classes"]
