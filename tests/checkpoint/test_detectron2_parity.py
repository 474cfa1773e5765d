"""A detectron2 v0.6 model saved as a model-zoo ``.pkl`` loads into our model built from the
config of the same name and gives detectron2's outputs (fixtures: make_detectron2_fixtures.py)."""
import json
import logging
import os
import pickle

import numpy as np
import pytest
import torch

from seg_research.checkpoint import Checkpointer
from seg_research.config import get_cfg
from seg_research.modeling import build_model
from seg_research.structures import Boxes, pairwise_iou

from .detectron2_parity import CONFIGS, NUM_MASKS, OPTS, SEM_STRIDE, generated_state_dict, make_image

# ResNet-50 models end to end: not in `make test-fast`.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
#: the config files the models are built from: our configs/ copies (keys and values equal to
#: detectron2's, tests/config/test_detectron2_configs.py), or, to check detectron2's own files
#: unmodified, SEG_RESEARCH_D2_CONFIGS=<detectron2>/configs (or .../detectron2/model_zoo/configs).
CONFIG_ROOT = os.environ.get("SEG_RESEARCH_D2_CONFIGS", os.path.join(REPO, "configs"))


def _load_into_our_model(name, tmp_path, caplog):
    fixture = np.load(os.path.join(FIXTURES, f"d2_{name}.npz"))
    keys_shapes = json.loads(str(fixture["keys_shapes"]))
    stats = {k[len("stat/"):]: fixture[k] for k in fixture.files if k.startswith("stat/")}
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:  # the layout of detectron2's model-zoo files
        pickle.dump({"model": generated_state_dict(keys_shapes, stats), "__author__": "Detectron2 Model Zoo",
                     "matching_heuristics": True}, f)
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(CONFIG_ROOT, CONFIGS[name]))
    cfg.merge_from_list(OPTS)
    model = build_model(cfg).eval()
    assert sum(p.numel() for p in model.parameters()) == int(fixture["num_params"])
    with caplog.at_level(logging.INFO, logger="seg_research.checkpoint.checkpointer"):
        Checkpointer(model).load(str(path))
    num = len(keys_shapes)
    assert f"Loaded {num} of {num} model tensors from the checkpoint; 0 skipped (shape mismatch), 0 missing, " \
           "0 checkpoint entries unused." in caplog.text
    assert "is a detectron2 state_dict" in caplog.text
    image = make_image()
    with torch.no_grad():
        out = model([{"image": torch.as_tensor(image.transpose(2, 0, 1).copy()).float(),
                      "height": image.shape[0], "width": image.shape[1]}])[0]
    return fixture, out


def _check_instances(fixture, instances):
    boxes, scores = instances.pred_boxes.tensor.numpy(), instances.scores.numpy()
    classes = instances.pred_classes.numpy()
    assert len(scores) == len(fixture["scores"])
    iou = pairwise_iou(Boxes(torch.as_tensor(fixture["boxes"])), instances.pred_boxes).numpy()
    iou[fixture["classes"][:, None] != classes[None, :]] = -1
    match = iou.argmax(axis=1)
    assert len(set(match.tolist())) == len(match)  # one to one
    np.testing.assert_allclose(boxes[match], fixture["boxes"], atol=1e-2)
    np.testing.assert_allclose(scores[match], fixture["scores"], atol=1e-4)
    expected = np.unpackbits(fixture["masks"], axis=-1, count=instances.image_size[1]).astype(bool)
    ours = instances.pred_masks[torch.as_tensor(match[:NUM_MASKS])].numpy()
    for e, o in zip(expected, ours, strict=True):  # IoU >= 0.99; a mask under 100 pixels may differ in one pixel
        assert (e ^ o).sum() <= max(1, 0.01 * (e | o).sum())


@pytest.mark.parametrize("name", [
    "mask_rcnn_R_50_FPN", "mask_rcnn_R_50_C4", "mask_rcnn_R_50_DC5"])
def test_mask_rcnn_zoo_pkl_gives_detectron2s_detections(name, tmp_path, caplog):
    fixture, out = _load_into_our_model(name, tmp_path, caplog)
    _check_instances(fixture, out["instances"])


def _check_sem_seg(fixture, sem_seg):
    np.testing.assert_allclose(sem_seg[:, ::SEM_STRIDE, ::SEM_STRIDE].numpy(), fixture["sem_seg_logits"], atol=1e-3)
    assert (sem_seg.argmax(0).numpy() == fixture["sem_seg_argmax"]).mean() >= 0.999


def test_semantic_fpn_zoo_pkl_gives_detectron2s_logits(tmp_path, caplog):
    fixture, out = _load_into_our_model("semantic_R_50_FPN", tmp_path, caplog)
    _check_sem_seg(fixture, out["sem_seg"])


def test_panoptic_fpn_zoo_pkl_gives_detectron2s_segmentation(tmp_path, caplog):
    fixture, out = _load_into_our_model("panoptic_fpn_R_50", tmp_path, caplog)
    _check_instances(fixture, out["instances"])
    _check_sem_seg(fixture, out["sem_seg"])

    def labels(seg, info):
        lut = {0: (-1, -1), **{int(i): (int(c), int(t)) for i, c, t in info}}
        return np.array([lut[int(s)] for s in seg.ravel()])

    seg, info = out["panoptic_seg"]
    ours = labels(seg.numpy(), [(s["id"], s["category_id"], s["isthing"]) for s in info])
    expected = labels(fixture["panoptic_seg"], fixture["panoptic_info"])
    assert (ours == expected).all(axis=1).mean() >= 0.99
