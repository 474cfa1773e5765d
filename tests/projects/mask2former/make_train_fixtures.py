"""Reference outputs of upstream Mask2Former's training parts, for the parity tests of
``seg_research.projects.mask2former``: run once under the measurement-only environment of
``../shared/anchors/mask2former_env.sh`` (detectron2 v0.6 + upstream Mask2Former's Python code), never
by the tests and never a dependency::

    /work/d2venv/bin/python tests/projects/mask2former/make_train_fixtures.py

It writes, under ``fixtures/``:

- ``criterion_parity.npz``: upstream's ``SetCriterion`` (with its ``HungarianMatcher``) on the
  outputs and targets of :func:`criterion_case`, seeded with ``CRITERION_SEED`` right before the call:
  its losses, each layer's assignment and the gradients of the loss sum; upstream's matcher alone on
  :func:`matcher_case`; PointRend's ``get_uncertain_point_coords_with_randomness`` on
  :func:`point_case`.
- ``swin_parity.npz``: upstream's ``D2SwinTransformer`` (Swin-T) with the weights of
  :func:`generated_swin_tensor` on the image of :func:`swin_image`: its parameter names, shapes and
  outputs; and the parameter counts of Swin-T/S/B/L as built from upstream's configs.
- ``swin_optimizer.npz``: upstream ``train_net.py``'s ``Trainer.build_optimizer`` on upstream's model of
  :data:`OPTIMIZER_CONFIG`: the config (dumped) and each parameter's LR and weight decay, by name.
- ``mappers_parity.npz``: upstream's five dataset mappers on the records of
  :func:`write_mapper_dataset` with the settings of :data:`MAPPER_SETTINGS`, ``np.random`` seeded with
  ``MAPPER_SEED`` before each call (every augmentation draws from it, in the same order as ours):
  the output's keys, and every tensor (``summarize_mapper_output``).

The inputs are not stored: they are generated here and in the tests by the functions below (numpy
generators, so both sides draw the same numbers).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import types
import zlib
from typing import Dict, List, Tuple

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
#: upstream Mask2Former's git directory (its train_net.py is read from there).
MASK2FORMER_GIT = "/work/.mirror/facebookresearch+Mask2Former/repo"

# ---------------------------------------------------------------- criterion / matcher / points
NUM_CLASSES = 4
#: HungarianMatcher(cost_class, cost_mask, cost_dice) and SetCriterion's settings.
COSTS = (2.0, 5.0, 5.0)
NUM_POINTS = 64
OVERSAMPLE_RATIO = 3.0
IMPORTANCE_SAMPLE_RATIO = 0.75
EOS_COEF = 0.1
#: torch.manual_seed right before the criterion (and the matcher, and the point selection) is called:
#: both implementations then draw the same points (same torch.rand calls in the same order).
CRITERION_SEED = 1234
NUM_LAYERS = 4  # final prediction + 3 auxiliary ones
NUM_QUERIES = 10
MASK_HW = (16, 16)
#: per image: (target mask size, number of targets); the second image has none.
TARGETS = [((64, 64), 3), ((48, 56), 0), ((56, 60), 2)]


def _blob_masks(rng: np.random.Generator, num: int, hw: Tuple[int, int]) -> np.ndarray:
    """(num, H, W) uint8 masks: ellipses with random centres and radii."""
    h, w = hw
    yy, xx = np.mgrid[:h, :w]
    masks = []
    for _ in range(num):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.1, 0.35) * h, rng.uniform(0.1, 0.35) * w
        masks.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
    return np.asarray(masks, dtype=np.uint8).reshape(num, h, w)


def _informative_predictions(rng: np.random.Generator, labels: np.ndarray, masks: np.ndarray,
                             num_queries: int, mask_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Class logits (Q, K + 1) and mask logits (Q, h, w) where a random subset of queries resembles
    the targets (so that the optimal assignment is well separated from the next best), plus noise."""
    logits = rng.standard_normal((num_queries, NUM_CLASSES + 1)).astype(np.float32)
    pred = (2.0 * rng.standard_normal((num_queries,) + mask_hw)).astype(np.float32)
    queries = rng.permutation(num_queries)[: len(labels)]
    h, w = mask_hw
    for q, label, mask in zip(queries, labels, masks, strict=True):
        rows = (np.arange(h) + 0.5) * mask.shape[0] / h
        cols = (np.arange(w) + 0.5) * mask.shape[1] / w
        small = mask[rows.astype(int)[:, None], cols.astype(int)[None, :]].astype(np.float32)
        pred[q] += 5.0 * (2.0 * small - 1.0)
        logits[q, label] += 3.0
    return logits, pred


def criterion_case() -> Dict[str, object]:
    """``pred_logits`` (L, B, Q, K + 1), ``pred_masks`` (L, B, Q, 16, 16) float32 (layer 0 the final
    prediction, 1.. the auxiliary ones) and per image ``labels`` (T,) int64 / ``masks`` (T, H, W)
    uint8 targets of different sizes, one image without targets."""
    rng = np.random.default_rng(27)
    labels = [rng.integers(0, NUM_CLASSES, size=n).astype(np.int64) for _, n in TARGETS]
    masks = [_blob_masks(rng, n, hw) for hw, n in TARGETS]
    logits = np.zeros((NUM_LAYERS, len(TARGETS), NUM_QUERIES, NUM_CLASSES + 1), np.float32)
    pred = np.zeros((NUM_LAYERS, len(TARGETS), NUM_QUERIES) + MASK_HW, np.float32)
    for layer in range(NUM_LAYERS):
        for b in range(len(TARGETS)):
            logits[layer, b], pred[layer, b] = _informative_predictions(rng, labels[b], masks[b], NUM_QUERIES,
                                                                        MASK_HW)
    return {"pred_logits": logits, "pred_masks": pred, "labels": labels, "masks": masks}


def matcher_case() -> Dict[str, object]:
    """A larger matching problem: 2 images, 30 queries, 12 and 7 targets, 500 points."""
    rng = np.random.default_rng(2027)
    sizes = [((96, 80), 12), ((72, 88), 7)]
    labels = [rng.integers(0, NUM_CLASSES, size=n).astype(np.int64) for _, n in sizes]
    masks = [_blob_masks(rng, n, hw) for hw, n in sizes]
    logits, pred = zip(*[_informative_predictions(rng, lab, m, 30, (24, 20))
                         for lab, m in zip(labels, masks, strict=True)], strict=True)
    return {"pred_logits": np.stack(logits), "pred_masks": np.stack(pred), "labels": labels, "masks": masks,
            "num_points": 500}


def point_case() -> np.ndarray:
    """(5, 1, 12, 12) float32 logits for the importance sampling of points."""
    return (3.0 * np.random.default_rng(7).standard_normal((5, 1, 12, 12))).astype(np.float32)


def torch_outputs(case: Dict[str, object], layer_count: int = NUM_LAYERS) -> Dict[str, object]:
    """The criterion's ``outputs`` dict (with ``aux_outputs``) and targets from :func:`criterion_case`,
    as float32 tensors that require grad."""
    import torch

    logits = torch.tensor(case["pred_logits"], requires_grad=True)
    pred = torch.tensor(case["pred_masks"], requires_grad=True)
    outputs = {"pred_logits": logits[0], "pred_masks": pred[0],
               "aux_outputs": [{"pred_logits": logits[i], "pred_masks": pred[i]} for i in range(1, layer_count)]}
    targets = [{"labels": torch.as_tensor(lab), "masks": torch.as_tensor(m)}
               for lab, m in zip(case["labels"], case["masks"], strict=True)]
    return {"outputs": outputs, "targets": targets, "leaves": (logits, pred)}


# ---------------------------------------------------------------- Swin
#: upstream's Swin-T settings (configs/*/swin/maskformer2_swin_tiny_bs16_*.yaml).
SWIN_T = {"EMBED_DIM": 96, "DEPTHS": [2, 2, 6, 2], "NUM_HEADS": [3, 6, 12, 24], "WINDOW_SIZE": 7,
          "APE": False, "DROP_PATH_RATE": 0.3, "PATCH_NORM": True, "PRETRAIN_IMG_SIZE": 224}
#: MODEL.SWIN settings of upstream's Swin-S, B (384) and L (384) configs.
SWIN_VARIANTS = {
    "T": SWIN_T,
    "S": {**SWIN_T, "DEPTHS": [2, 2, 18, 2]},
    "B": {**SWIN_T, "EMBED_DIM": 128, "DEPTHS": [2, 2, 18, 2], "NUM_HEADS": [4, 8, 16, 32], "WINDOW_SIZE": 12,
          "PRETRAIN_IMG_SIZE": 384},
    "L": {**SWIN_T, "EMBED_DIM": 192, "DEPTHS": [2, 2, 18, 2], "NUM_HEADS": [6, 12, 24, 48], "WINDOW_SIZE": 12,
          "PRETRAIN_IMG_SIZE": 384},
}
#: not a multiple of the patch size, the windows or 32: every padding path runs.
SWIN_IMAGE_HW = (70, 102)


def swin_image() -> np.ndarray:
    """(1, 3, H, W) float32 normalized image."""
    return np.random.default_rng(96).standard_normal((1, 3) + SWIN_IMAGE_HW).astype(np.float32)


def generated_swin_tensor(name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """The value of Swin parameter ``name``, deterministic in the name: variance 1 / fan-in for linear
    and conv weights, norm scales near 1, biases and relative position biases of a size that matters
    (so that a wrong index or shift changes the outputs). Integer buffers are not generated."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    if "norm" in name.rsplit(".", 2)[-2] and name.endswith(".weight"):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if name.endswith("relative_position_bias_table"):
        return rng.standard_normal(shape).astype(np.float32)
    if len(shape) >= 2:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def generated_swin_state(keys_shapes: List[Tuple[str, Tuple[int, ...]]]) -> Dict[str, np.ndarray]:
    """Generated floating-point tensors of a Swin state_dict (``relative_position_index`` buffers,
    computed by the module, are left out)."""
    return {k: generated_swin_tensor(k, tuple(s)) for k, s in keys_shapes if not k.endswith("relative_position_index")}


# ---------------------------------------------------------------- optimizer
#: upstream config whose model's parameter groups are compared (Swin: position biases, LayerNorms,
#: embeddings and the backbone multiplier all occur).
OPTIMIZER_CONFIG = "ade20k/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_160k.yaml"


# ---------------------------------------------------------------- dataset mappers
MAPPER_SEED = 5
MAPPER_DATASET = "m2f_mapper_fixture"
#: config settings of both sides (SSD color augmentation off: upstream draws it from Python's
#: ``random`` while the transform is applied, which no seed on our side can follow).
MAPPER_SETTINGS = {
    "INPUT.MIN_SIZE_TRAIN": (48, 56, 64), "INPUT.MIN_SIZE_TRAIN_SAMPLING": "choice", "INPUT.MAX_SIZE_TRAIN": 100,
    "INPUT.CROP.ENABLED": True, "INPUT.CROP.TYPE": "absolute", "INPUT.CROP.SIZE": (40, 44),
    "INPUT.CROP.SINGLE_CATEGORY_MAX_AREA": 0.6, "INPUT.SIZE_DIVISIBILITY": 48, "INPUT.COLOR_AUG_SSD": False,
    "INPUT.IMAGE_SIZE": 64, "INPUT.MIN_SCALE": 0.5, "INPUT.MAX_SCALE": 1.5, "INPUT.RANDOM_FLIP": "horizontal",
    "DATASETS.TRAIN": (MAPPER_DATASET,),
}
#: mapper class -> record kind of :func:`write_mapper_dataset`.
MAPPERS = {
    "MaskFormerSemanticDatasetMapper": "semantic",
    "MaskFormerPanopticDatasetMapper": "panoptic",
    "MaskFormerInstanceDatasetMapper": "instance",
    "COCOInstanceNewBaselineDatasetMapper": "instance",
    "COCOPanopticNewBaselineDatasetMapper": "panoptic",
}
MAPPER_IMAGE_HW = (60, 80)


def apply_mapper_settings(cfg) -> None:
    for key, value in MAPPER_SETTINGS.items():
        node = cfg
        *parents, leaf = key.split(".")
        for name in parents:
            node = getattr(node, name)
        setattr(node, leaf, value)


def write_mapper_dataset(root: str, xywh_abs) -> Dict[str, Dict[str, object]]:
    """Write one 60x80 image with its semantic PNG (classes 0-3, a 255 ignore band), panoptic PNG (ids
    R + 256 G, 4 segments, one crowd) and instance annotations (3 polygons, one crowd RLE) under
    ``root``; return the records by kind ("semantic", "panoptic", "instance"). ``xywh_abs`` is the
    environment's ``BoxMode.XYWH_ABS``."""
    from PIL import Image
    from pycocotools import mask as mask_util

    rng = np.random.default_rng(11)
    h, w = MAPPER_IMAGE_HW
    coarse = rng.uniform(0, 255, size=(h // 10 + 1, w // 10 + 1, 3))
    image = np.kron(coarse, np.ones((10, 10, 1)))[:h, :w].astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    disk = (yy - 22) ** 2 + (xx - 25) ** 2 < 12 ** 2
    box = (yy >= 30) & (yy < 55) & (xx >= 45) & (xx < 75)
    sem = np.zeros((h, w), np.uint8)
    sem[xx >= 40] = 1
    sem[disk] = 2
    sem[box] = 3
    sem[:3] = 255
    pan = np.zeros((h, w), np.int64)
    pan[sem == 0], pan[sem == 1], pan[disk], pan[box] = 1, 2, 300, 301
    pan[(yy < 10) & (xx < 10)] = 7  # a crowd segment
    paths = {name: os.path.join(root, f"{name}.png") for name in ("image", "sem", "pan")}
    Image.fromarray(image).save(paths["image"])
    Image.fromarray(sem).save(paths["sem"])
    Image.fromarray(np.stack([pan % 256, pan // 256, np.zeros_like(pan)], -1).astype(np.uint8)).save(paths["pan"])
    base = {"file_name": paths["image"], "height": h, "width": w, "image_id": 1}
    segments = [{"id": 1, "category_id": 0, "iscrowd": 0, "isthing": False},
                {"id": 2, "category_id": 1, "iscrowd": 0, "isthing": False},
                {"id": 300, "category_id": 2, "iscrowd": 0, "isthing": True},
                {"id": 301, "category_id": 3, "iscrowd": 0, "isthing": True},
                {"id": 7, "category_id": 2, "iscrowd": 1, "isthing": True}]
    crowd = mask_util.encode(np.asfortranarray(((yy < 10) & (xx < 10)).astype(np.uint8)))
    crowd["counts"] = crowd["counts"].decode("ascii")
    annotations = [
        {"bbox": [13.0, 10.0, 24.0, 24.0], "bbox_mode": xywh_abs, "category_id": 2, "iscrowd": 0,
         "segmentation": [[25.0, 10.0, 37.0, 22.0, 25.0, 34.0, 13.0, 22.0]]},
        {"bbox": [45.0, 30.0, 30.0, 25.0], "bbox_mode": xywh_abs, "category_id": 3, "iscrowd": 0,
         "segmentation": [[45.0, 30.0, 75.0, 30.0, 75.0, 55.0, 45.0, 55.0]]},
        {"bbox": [2.0, 40.0, 10.0, 18.0], "bbox_mode": xywh_abs, "category_id": 0, "iscrowd": 0,
         "segmentation": [[2.0, 40.0, 12.0, 40.0, 7.0, 58.0]]},
        {"bbox": [0.0, 0.0, 10.0, 10.0], "bbox_mode": xywh_abs, "category_id": 1, "iscrowd": 1,
         "segmentation": crowd},
    ]
    return {"semantic": {**base, "sem_seg_file_name": paths["sem"]},
            "panoptic": {**base, "sem_seg_file_name": paths["sem"], "pan_seg_file_name": paths["pan"],
                         "segments_info": segments},
            "instance": {**base, "annotations": annotations}}


def summarize_mapper_output(output: Dict[str, object]) -> Dict[str, np.ndarray]:
    """A mapper's output as flat arrays: ``keys`` (the output's keys, sorted), ``instances`` (its
    field names, sorted), and ``<key>`` / ``instances.<field>`` for every tensor (``Boxes`` by their
    tensor)."""
    import torch

    out = {"keys": np.array(sorted(output))}
    for key, value in output.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.numpy()
        elif hasattr(value, "get_fields"):
            fields = value.get_fields()
            out["instances"] = np.array(sorted(fields))
            out["instances.image_size"] = np.array(value.image_size)
            for name, field in fields.items():
                out[f"instances.{name}"] = getattr(field, "tensor", field).numpy()
    return out


# ---------------------------------------------------------------- upstream side
def _upstream_criterion() -> Dict[str, np.ndarray]:
    import torch
    from detectron2.projects.point_rend.point_features import get_uncertain_point_coords_with_randomness
    from mask2former.modeling.criterion import SetCriterion
    from mask2former.modeling.matcher import HungarianMatcher

    out: Dict[str, np.ndarray] = {}
    case = criterion_case()
    t = torch_outputs(case)
    matcher = HungarianMatcher(*COSTS, num_points=NUM_POINTS)
    criterion = SetCriterion(NUM_CLASSES, matcher, {}, EOS_COEF, ["labels", "masks"], NUM_POINTS, OVERSAMPLE_RATIO,
                             IMPORTANCE_SAMPLE_RATIO)
    # The assignments the criterion uses: record the matcher's answers as it is called.
    assignments = []
    original = matcher.memory_efficient_forward

    def recording(outputs, targets):
        result = original(outputs, targets)
        assignments.append(result)
        return result

    matcher.memory_efficient_forward = recording
    torch.manual_seed(CRITERION_SEED)
    losses = criterion(t["outputs"], t["targets"])
    sum(losses.values()).backward()
    out["loss_names"] = np.array(sorted(losses))
    out["loss_values"] = np.array([losses[k].item() for k in sorted(losses)], np.float64)
    out["grad_logits"] = t["leaves"][0].grad.numpy()
    out["grad_masks"] = t["leaves"][1].grad.numpy()
    for layer, per_image in enumerate(assignments):
        for b, (rows, cols) in enumerate(per_image):
            out[f"indices_{layer}_{b}"] = np.stack([rows.numpy(), cols.numpy()])

    case = matcher_case()
    matcher = HungarianMatcher(*COSTS, num_points=case["num_points"])
    torch.manual_seed(CRITERION_SEED)
    result = matcher({"pred_logits": torch.tensor(case["pred_logits"]), "pred_masks": torch.tensor(case["pred_masks"])},
                     [{"labels": torch.as_tensor(lab), "masks": torch.as_tensor(m)}
                      for lab, m in zip(case["labels"], case["masks"], strict=True)])
    for b, (rows, cols) in enumerate(result):
        out[f"matcher_{b}"] = np.stack([rows.numpy(), cols.numpy()])

    torch.manual_seed(CRITERION_SEED)
    out["point_coords"] = get_uncertain_point_coords_with_randomness(
        torch.tensor(point_case()), lambda x: -x.abs(), 40, 3.0, 0.75).numpy()
    return out


def _upstream_swin_cfg(settings: Dict[str, object]):
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    for key, value in settings.items():
        setattr(cfg.MODEL.SWIN, key, value)
    return cfg


def _upstream_swin() -> Dict[str, np.ndarray]:
    import torch
    from detectron2.layers import ShapeSpec
    from mask2former.modeling.backbone.swin import D2SwinTransformer

    out: Dict[str, np.ndarray] = {}
    counts = {}
    for variant, settings in SWIN_VARIANTS.items():
        model = D2SwinTransformer(_upstream_swin_cfg(settings), ShapeSpec(channels=3))
        counts[variant] = sum(p.numel() for p in model.parameters())
        if variant == "T":
            tiny = model
    out["param_counts"] = np.array(json.dumps(counts))
    keys_shapes = [(k, tuple(v.shape)) for k, v in tiny.state_dict().items()]
    out["keys_shapes"] = np.array(json.dumps(keys_shapes))
    out["parameter_names"] = np.array(json.dumps([k for k, _ in tiny.named_parameters()]))
    state = {k: torch.as_tensor(v) for k, v in generated_swin_state(keys_shapes).items()}
    missing, unexpected = tiny.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("relative_position_index") for k in missing), (missing, unexpected)
    tiny.eval()
    with torch.no_grad():
        features = tiny(torch.as_tensor(swin_image()))
    for name, value in features.items():
        out[f"out_{name}"] = value.numpy()
    return out


def _upstream_optimizer() -> Dict[str, np.ndarray]:
    import importlib.util
    import subprocess

    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config

    venv = os.path.dirname(os.path.dirname(sys.executable))
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(os.path.join(venv, "mask2former-configs", OPTIMIZER_CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    # Upstream's train_net.py is not part of its package: load it from the mirrored repository.
    source = subprocess.run(["git", "--git-dir", MASK2FORMER_GIT, "show", "HEAD:train_net.py"], check=True,
                            capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "upstream_train_net.py")
        with open(path, "w") as f:
            f.write(source)
        spec = importlib.util.spec_from_file_location("upstream_train_net", path)
        train_net = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train_net)
    optimizer = train_net.Trainer.build_optimizer(cfg, model)
    names = {p: n for n, p in model.named_parameters()}
    groups = [[names[p], g["lr"], g["weight_decay"]] for g in optimizer.param_groups for p in g["params"]]
    return {"config": np.array(cfg.dump()), "groups": np.array(json.dumps(groups)),
            "optimizer": np.array(type(optimizer).__mro__[1].__name__)}


def _upstream_mappers(root: str) -> Dict[str, np.ndarray]:
    import random

    import mask2former
    import torch
    from detectron2.config import get_cfg
    from detectron2.data import MetadataCatalog
    from detectron2.projects.deeplab import add_deeplab_config
    from detectron2.structures import BoxMode

    # Upstream's panoptic mappers import panopticapi's rgb2id, which the reference environment lacks:
    # supply that one function (id = R + 256 G + 256**2 B, panopticapi's definition).
    panopticapi = types.ModuleType("panopticapi")
    panopticapi.utils = types.ModuleType("panopticapi.utils")
    panopticapi.utils.rgb2id = lambda rgb: (rgb[..., 0].astype(np.int64) + 256 * rgb[..., 1].astype(np.int64)
                                            + 256 * 256 * rgb[..., 2].astype(np.int64))
    sys.modules.setdefault("panopticapi", panopticapi)
    sys.modules.setdefault("panopticapi.utils", panopticapi.utils)

    cfg = get_cfg()
    add_deeplab_config(cfg)
    mask2former.add_maskformer2_config(cfg)
    apply_mapper_settings(cfg)
    MetadataCatalog.get(MAPPER_DATASET).set(ignore_label=255)
    records = write_mapper_dataset(root, BoxMode.XYWH_ABS)
    out: Dict[str, np.ndarray] = {}
    for name, kind in MAPPERS.items():
        mapper = getattr(mask2former, name)(cfg, True)
        np.random.seed(MAPPER_SEED)
        random.seed(MAPPER_SEED)
        torch.manual_seed(MAPPER_SEED)
        for key, value in summarize_mapper_output(mapper(records[kind])).items():
            out[f"{name}/{key}"] = value
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    os.makedirs(FIXTURES, exist_ok=True)
    np.savez_compressed(os.path.join(FIXTURES, "criterion_parity.npz"), **_upstream_criterion())
    np.savez_compressed(os.path.join(FIXTURES, "swin_parity.npz"), **_upstream_swin())
    with tempfile.TemporaryDirectory() as root:
        np.savez_compressed(os.path.join(FIXTURES, "mappers_parity.npz"), **_upstream_mappers(root))
    np.savez_compressed(os.path.join(FIXTURES, "swin_optimizer.npz"), **_upstream_optimizer())
    print("wrote", FIXTURES)


if __name__ == "__main__":
    main()
