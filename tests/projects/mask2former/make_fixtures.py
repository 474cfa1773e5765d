"""Reference outputs of upstream Mask2Former's inference, for ``test_parity_models.py``: run once under the
measurement-only environment of ``../shared/anchors/mask2former_env.sh`` (detectron2 v0.6 + upstream
Mask2Former's Python code, its MSDeformAttn on its own ``grid_sample`` path), never by the tests::

    /work/d2venv/bin/python tests/projects/mask2former/make_fixtures.py

``fixtures/maskformer2_config.json`` lists the keys and defaults of upstream's ``add_maskformer2_config``.
For each config of :data:`CONFIGS` (upstream's own YAML, with the test thresholds of
:data:`TEST_OVERRIDES`), it builds upstream's model on the CPU and gives it the weights of
:func:`generated_tensor` (seeded by name, so the tests regenerate them instead of committing 44M
numbers), except the FrozenBN statistics of the ResNet, which it calibrates on the images (each norm's
running mean / variance set from its own input, in one forward pass) and stores, as it stores Swin's
relative position indices (:data:`STORED`). It checks that the
official checkpoint layout (a plain ``{"model": numpy arrays}`` ``.pkl`` with the pixel decoder's weights
directly under ``sem_seg_head.``) loads into upstream's model as these weights, then writes
``fixtures/parity_<name>.npz`` with upstream's parameter names and shapes, its parameter count, the
config values, the calibrated statistics and its outputs on the images of :func:`parity_images`:

- ``sem_seg``: per image the argmax map and the scores of all classes at :data:`NUM_SAMPLED_PIXELS`
  seeded pixels (the full (K, H, W) maps would weigh megabytes);
- ``panoptic_seg``: the segment-id map and ``segments_info`` as (id, category_id, isthing) rows;
- ``instances``: the :data:`TOP_INSTANCES` best by score (scores, classes, bit-packed masks);
- ``losses`` (:data:`LOSS_CONFIGS`): the weighted training losses of every decoder layer on the targets
  of :func:`parity_targets`, seeded with :data:`LOSS_SEED`.

detectron2's FrozenBN is run with torchvision's formula (:func:`_frozen_bn_as_torchvision`). The random
heads are sharpened (class logits x4: see :func:`generated_tensor`) so that queries have
distinct classes and masks and the panoptic and instance outputs are not empty.
"""
from __future__ import annotations

import json
import math
import os
import zlib
from typing import Dict, List, Sequence, Tuple

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
UPSTREAM_CONFIGS = "/work/d2venv/mask2former-configs"

#: fixture name -> upstream config, relative to Mask2Former's configs/.
CONFIGS = {
    "coco_panoptic_R50": "coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml",
    "coco_instance_R50": "coco/instance-segmentation/maskformer2_R50_bs16_50ep.yaml",
    "ade20k_semantic_R50": "ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml",
    "coco_panoptic_SwinT": "coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml",
}
#: Tensors that are not drawn but stored in the fixture: the calibrated FrozenBN statistics and Swin's
#: relative position index (a constant of the architecture, but a buffer in the official files).
STORED = ("running_mean", "running_var", "relative_position_index")
#: Lower than the configs' 0.8: random heads rarely give a query 0.8 of the class probability, and their
#: queries' masks overlap much more than trained ones (the per-pixel argmax leaves each a small part).
TEST_OVERRIDES = {"MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD": 0.3,
                  "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD": 0.1}
#: (image height, image width, requested output (height, width) or None for the image's own size).
IMAGES: List[Tuple[int, int, object]] = [(160, 224, (120, 168)), (192, 160, None)]
NUM_SAMPLED_PIXELS = 512
TOP_INSTANCES = 20
#: Configs whose training losses are stored too, and the torch seed set right before the training forward
#: pass (the criterion's point sampling draws the same torch.rand numbers on both sides).
LOSS_CONFIGS = ("coco_panoptic_R50",)
LOSS_SEED = 2027
#: The parts of upstream's config copied into ours by the tests.
CONFIG_SECTIONS = ("MODEL.", "INPUT.FORMAT", "TEST.DETECTIONS_PER_IMAGE")


def parity_images() -> List[np.ndarray]:
    """(H, W, 3) uint8 RGB images of :data:`IMAGES`: a smooth colour gradient with a few filled ellipses
    and rectangles (structure for the features to respond to)."""
    rng = np.random.default_rng(27)
    images = []
    for h, w, _ in IMAGES:
        yy, xx = np.mgrid[:h, :w].astype(np.float64)
        image = np.stack([80 + 100 * yy / h, 60 + 120 * xx / w, 140 - 60 * (yy + xx) / (h + w)], axis=-1)
        for _ in range(5):
            color = rng.uniform(0, 255, size=3)
            cy, cx, ry, rx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, rng.uniform(0.08, 0.25) * h, \
                rng.uniform(0.08, 0.25) * w
            if rng.uniform() < 0.5:
                inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            else:
                inside = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
            image[inside] = color
        image += rng.normal(0, 4, size=image.shape)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images


def parity_inputs() -> List[dict]:
    """The model inputs: :func:`parity_images` as (3, H, W) uint8 tensors, with ``height``/``width`` where
    :data:`IMAGES` requests another output size."""
    import torch

    inputs = []
    for image, (_, _, out) in zip(parity_images(), IMAGES, strict=True):
        item = {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))}
        if out is not None:
            item["height"], item["width"] = out
        inputs.append(item)
    return inputs


def parity_targets(num_classes: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per image of :data:`IMAGES`, (classes (T,) int64, masks (T, H, W) uint8): 3 ellipses and rectangles
    at the image's size, seeded."""
    rng = np.random.default_rng(2027)
    targets = []
    for h, w, _ in IMAGES:
        yy, xx = np.mgrid[:h, :w]
        masks = []
        for j in range(3):
            cy, cx, ry, rx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w, rng.uniform(0.1, 0.3) * h, \
                rng.uniform(0.1, 0.3) * w
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1 if j % 2 == 0 else \
                (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
            masks.append(inside)
        targets.append((rng.integers(0, num_classes, size=3), np.asarray(masks, dtype=np.uint8)))
    return targets


def generated_tensor(name: str, shape: Sequence[int]):
    """The parity weights: a tensor of ``shape`` drawn from ``torch.randn`` seeded by crc32 of its
    (upstream, new-layout) ``name``, scaled by its role:

    - matrices and conv kernels: 1 / sqrt(fan_in) (x4 for ``class_embed`` and the mask embedding's last layer,
      to sharpen the class scores and the masks: fewer mask logits near 0, where float32 rounding could
      flip a pixel of the decoder's attention masks between implementations;
      x0.2 for the transformer decoder's attention output and second feed-forward projections, so that
      the random layers do not wash out the queries' differences: distinct classes and masks per query);
      embeddings (``query_feat``, ``query_embed``, ``level_embed``): 1;
    - 1-D ``weight`` (norm scales): 1 + 0.1 N; biases: 0.1 N (``sampling_offsets.bias``: 2 N, pixels);
    - FrozenBN ``running_mean`` / ``running_var``: 0 / 1 (replaced by calibrated statistics);
    - ``criterion.empty_weight``: ones, the no-object class 0.1 (the configs' NO_OBJECT_WEIGHT).
    """
    import torch

    shape = tuple(int(s) for s in shape)
    if name.endswith("running_mean"):
        return torch.zeros(shape)
    if name.endswith("running_var"):
        return torch.ones(shape)
    if name.endswith("empty_weight"):
        value = torch.ones(shape)
        value[-1] = 0.1
        return value
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(zlib.crc32(name.encode())))
    if any(part in name for part in ("query_feat", "query_embed", "level_embed")):
        return noise
    if len(shape) >= 2:
        scale = 1.0 / math.sqrt(math.prod(shape[1:]))
        if "class_embed" in name or name.endswith("mask_embed.layers.2.weight"):
            scale *= 4
        elif name.startswith("sem_seg_head.predictor.") and name.endswith(("out_proj.weight", "linear2.weight")):
            scale *= 0.2  # small residual branches: queries keep apart instead of converging to one class
        return noise * scale
    if name.endswith("sampling_offsets.bias"):
        return noise * 2.0
    if name.endswith("weight"):
        return 1.0 + 0.1 * noise
    return 0.1 * noise


def official_layout(name: str) -> str:
    """A (new-layout) parameter name as the official ``.pkl`` files spell it: the pixel decoder's
    weights directly under ``sem_seg_head.``."""
    return name.replace("sem_seg_head.pixel_decoder.", "sem_seg_head.", 1)


def sampled_pixels(height: int, width: int, seed: int) -> np.ndarray:
    """:data:`NUM_SAMPLED_PIXELS` distinct flat pixel indices of an (height, width) map."""
    return np.sort(np.random.default_rng(seed).choice(height * width, NUM_SAMPLED_PIXELS, replace=False))


def _flat_config(cfg) -> Dict[str, object]:
    flat: Dict[str, object] = {}

    def walk(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if hasattr(value, "items"):
                walk(value, name + ".")
            elif name.startswith(CONFIG_SECTIONS):
                flat[name] = list(value) if isinstance(value, tuple) else value
    walk(cfg, "")
    return flat


def _frozen_bn_as_torchvision(self, x):
    """detectron2's FrozenBatchNorm2d, always on its own gradient path (``x * scale + bias``), which is also
    torchvision's formula: without gradients detectron2 calls the fused ``F.batch_norm`` instead, whose
    float32 rounding differs by ~1e-7 per layer, and random (untrained) decoder heads amplify such
    differences into flipped attention masks (1e-2 in the outputs). Same function, same rounding as ours."""
    scale = self.weight * (self.running_var + self.eps).rsqrt()
    bias = self.bias - self.running_mean * scale
    return x * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


def _make(name: str, config: str) -> None:
    import pickle
    import tempfile

    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.data import MetadataCatalog
    from detectron2.layers import FrozenBatchNorm2d
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config

    FrozenBatchNorm2d.forward = _frozen_bn_as_torchvision
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(os.path.join(UPSTREAM_CONFIGS, config))
    cfg.merge_from_list([str(v) for item in TEST_OVERRIDES.items() for v in item])
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    state = model.state_dict()
    names = list(state)
    with torch.no_grad():
        for key, value in state.items():
            if not key.endswith("relative_position_index"):
                value.copy_(generated_tensor(key, value.shape))

    inputs = parity_inputs()

    # calibrate the FrozenBN statistics: each from its own input, in forward order
    def calibrate(module, args):
        x = args[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)))
    hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    with torch.no_grad():
        model(inputs)
    for hook in hooks:
        hook.remove()
    stats = {k: v.numpy().copy() for k, v in model.state_dict().items() if k.endswith(STORED)}

    # the official layout loads into upstream's model as these weights
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pkl")
        with open(path, "wb") as f:
            pickle.dump({"model": {official_layout(k): v.numpy() for k, v in model.state_dict().items()},
                         "__author__": "seg_research parity fixture"}, f)
        fresh = build_model(cfg).eval()
        DetectionCheckpointer(fresh).load(path)
        for key, value in fresh.state_dict().items():
            assert torch.equal(value, model.state_dict()[key]), key

    with torch.no_grad():
        outputs = model(inputs)
    losses = {}
    if name in LOSS_CONFIGS:
        from detectron2.structures import Instances

        model.train()
        for item, (classes, masks), (h, w, _) in zip(inputs, parity_targets(cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES),
                                                     IMAGES, strict=True):
            item["instances"] = Instances((h, w), gt_classes=torch.from_numpy(classes),
                                          gt_masks=torch.from_numpy(masks).bool())
        torch.manual_seed(LOSS_SEED)
        losses = {k: v.item() for k, v in model(inputs).items()}
        model.eval()

    data: Dict[str, np.ndarray] = {
        "names": np.array(names),
        "shapes": np.array(json.dumps([list(state[k].shape) for k in names])),
        "num_parameters": np.array(sum(p.numel() for p in model.parameters())),
        "config": np.array(json.dumps(_flat_config(cfg))),
    }
    meta = MetadataCatalog.get(cfg.DATASETS.TRAIN[0])
    data["thing_classes"] = np.array(sorted(getattr(meta, "thing_dataset_id_to_contiguous_id", {}).values()),
                                     dtype=np.int64)
    for key, value in stats.items():
        data[f"stat/{key}"] = value
    for i, out in enumerate(outputs):
        if "sem_seg" in out:
            sem_seg = out["sem_seg"].numpy()
            k, h, w = sem_seg.shape
            pixels = sampled_pixels(h, w, seed=i)
            data[f"image{i}/sem_seg_argmax"] = sem_seg.argmax(0).astype(np.int16)
            data[f"image{i}/sem_seg_sampled"] = sem_seg.reshape(k, -1)[:, pixels].astype(np.float32)
        if "panoptic_seg" in out:
            ids, segments = out["panoptic_seg"]
            data[f"image{i}/panoptic_ids"] = ids.numpy().astype(np.int32)
            data[f"image{i}/panoptic_segments"] = np.array(
                [[s["id"], s["category_id"], int(s["isthing"])] for s in segments], dtype=np.int64).reshape(-1, 3)
        if "instances" in out:
            inst = out["instances"]
            order = inst.scores.argsort(descending=True)[:TOP_INSTANCES]
            data[f"image{i}/instance_scores"] = inst.scores[order].numpy()
            data[f"image{i}/instance_classes"] = inst.pred_classes[order].numpy()
            masks = inst.pred_masks[order].numpy() > 0
            data[f"image{i}/instance_masks"] = np.packbits(masks, axis=-1)
            data[f"image{i}/instance_mask_shape"] = np.array(masks.shape)
    if losses:
        data["losses"] = np.array(json.dumps(losses))
    path = os.path.join(FIXTURES, f"parity_{name}.npz")
    np.savez_compressed(path, **data)
    print(f"{path}: {data['num_parameters']} parameters, {os.path.getsize(path) / 1e6:.2f} MB, outputs "
          f"{[sorted(o) for o in outputs]}")


def _config_keys() -> None:
    """``fixtures/maskformer2_config.json``: every key upstream's ``add_maskformer2_config`` adds to (or
    changes in) detectron2's config, with its default."""
    from detectron2.config import get_cfg
    from mask2former import add_maskformer2_config

    def flat(node, prefix=""):
        out = {}
        for key, value in node.items():
            if hasattr(value, "items"):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
        return out

    before = flat(get_cfg())
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    after = flat(cfg)
    keys = {k: v for k, v in after.items() if k not in before or before[k] != v}
    with open(os.path.join(FIXTURES, "maskformer2_config.json"), "w") as f:
        json.dump(keys, f, indent=1, sort_keys=True)
    print(f"maskformer2_config.json: {len(keys)} keys")


def main() -> None:
    import torch

    torch.set_num_threads(1)
    os.makedirs(FIXTURES, exist_ok=True)
    _config_keys()
    for name, config in CONFIGS.items():
        _make(name, config)


if __name__ == "__main__":
    main()
