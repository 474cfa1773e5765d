"""The ``mask2former`` benchmark task: Mask2Former R50 beside Panoptic FPN R50, and multi-scale deformable
attention, in one run.

- ``train`` / ``inference`` records, one per model (``model``: ``mask2former_R50`` from
  configs/coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml, ``panoptic_fpn_R50`` from
  configs/COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml), random weights, on the same synthetic
  square images of side :data:`IMAGE_SIZE` (``--num-images`` per training batch), alternating the two models
  step by step: seconds per training iteration (forward + backward + optimizer step, each model with its
  config's optimizer) and per image at inference with post-processing (Mask2Former: its panoptic, instance
  and semantic outputs, as its config asks).
- ``msdeformattn`` records: forward + backward of ``ms_deform_attn`` (ours) and of the reference formula on
  the deformable encoder's inputs of R50 at :data:`IMAGE_SIZE` (levels 1/8, 1/16, 1/32; 8 heads x 32
  channels, 4 points; gradients of the values, sampling locations and attention weights), alternating. The
  reference is upstream's ``ms_deform_attn_core_pytorch`` when upstream Mask2Former is installed (the
  reference environment), else :func:`grid_sample_reference`, the same ``grid_sample``-per-level formula
  written here (``reference``: which one). ``max_abs_diff``: the outputs' largest difference.
"""
from __future__ import annotations

import copy
import os
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

from seg_research.config import CfgNode, get_cfg
from seg_research.modeling import build_model
from seg_research.projects.deeplab import add_deeplab_config
from seg_research.projects.mask2former import add_maskformer2_config
from seg_research.projects.mask2former.modeling.pixel_decoder.ops import ms_deform_attn
from seg_research.projects.mask2former.solver import build_optimizer as build_mask2former_optimizer
from seg_research.solver import build_optimizer

from .inputs import ours_input, synthetic_samples
from .records import Timer, base_record

__all__ = ["IMAGE_SIZE", "bench_mask2former", "grid_sample_reference"]

#: Side of the square images of every record (COCO's images are about 640 x 480).
IMAGE_SIZE = 512
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIGS = {
    "mask2former_R50": "configs/coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml",
    "panoptic_fpn_R50": "configs/COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml",
}


def _config(name: str) -> CfgNode:
    cfg = get_cfg()
    if name.startswith("mask2former"):
        add_deeplab_config(cfg)
        add_maskformer2_config(cfg)
    cfg.merge_from_file(os.path.join(_REPO, _CONFIGS[name]))
    if name.startswith("panoptic_fpn"):  # its PIXEL_STD 1 is for caffe2 weights: random ones would overflow the
        cfg.merge_from_list(["MODEL.PIXEL_STD", [57.375, 57.120, 58.395]])  # box deltas (no proposal left)
    cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "SOLVER.AMP.ENABLED", False,
                         "INPUT.MIN_SIZE_TEST", IMAGE_SIZE, "INPUT.MAX_SIZE_TEST", IMAGE_SIZE])
    cfg.freeze()
    return cfg


def grid_sample_reference(value: torch.Tensor, spatial_shapes: torch.Tensor, sampling_locations: torch.Tensor,
                          attention_weights: torch.Tensor) -> torch.Tensor:
    """Multi-scale deformable attention as the formula of upstream's PyTorch path: each level's value map
    sampled by ``F.grid_sample`` (bilinear, zero padding, ``align_corners=False``) at the locations mapped
    to [-1, 1], weighted and summed. Shapes as :func:`ms_deform_attn`; returns (N, Lq, M * D)."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    spatial_shapes = [(int(h), int(w)) for h, w in spatial_shapes]
    grids = 2 * sampling_locations - 1
    samples = []
    for level, value_l in enumerate(value.split([h * w for h, w in spatial_shapes], dim=1)):
        h, w = spatial_shapes[level]
        image = value_l.permute(0, 2, 3, 1).reshape(n * m, d, h, w)  # (N*M, D, H, W)
        grid = grids[:, :, :, level].transpose(1, 2).reshape(n * m, lq, num_points, 2)
        samples.append(F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    stacked = torch.stack(samples, dim=-2).flatten(-2)  # (N*M, D, Lq, L*P)
    weights = attention_weights.transpose(1, 2).reshape(n * m, 1, lq, num_levels * num_points)
    return (stacked * weights).sum(-1).view(n, m * d, lq).transpose(1, 2).contiguous()


def _reference() -> Tuple[str, Callable]:
    try:  # upstream's module imports only where its package is installed (the reference environment)
        from mask2former.modeling.pixel_decoder.ops.functions.ms_deform_attn_func import ms_deform_attn_core_pytorch
    except ImportError:
        return "grid_sample_reference (benchmarks/mask2former.py)", grid_sample_reference
    return "upstream ms_deform_attn_core_pytorch", ms_deform_attn_core_pytorch


def _bench_msdeformattn(args, timer: Timer) -> List[Dict[str, Any]]:
    shapes = [(IMAGE_SIZE // s, IMAGE_SIZE // s) for s in (8, 16, 32)]
    heads, channels, points = 8, 32, 4
    g = torch.Generator().manual_seed(args.seed)
    tokens = sum(h * w for h, w in shapes)
    value = torch.randn(1, tokens, heads, channels, generator=g)
    locations = torch.rand(1, tokens, heads, len(shapes), points, 2, generator=g)
    weights = torch.rand(1, tokens, heads, len(shapes) * points, generator=g).softmax(-1).view(
        1, tokens, heads, len(shapes), points)
    reference_name, reference = _reference()
    functions = {"seg_research": ms_deform_attn, "reference": reference}
    outputs = {}

    def forward_backward(fn: Callable) -> Callable[[], None]:
        def run() -> None:
            inputs = [t.clone().requires_grad_() for t in (value, locations, weights)]
            out = fn(inputs[0], torch.tensor(shapes), *inputs[1:])
            out.backward(torch.ones_like(out))
            outputs[fn] = out.detach()
        return run

    for i in range(args.warmup + args.iters):
        for impl, fn in functions.items():
            timer(f"msdeformattn/{impl}", forward_backward(fn), record=i >= args.warmup)
    diff = float((outputs[ms_deform_attn] - outputs[reference]).abs().max())
    return [{**base_record(args, None, impl), **timer.summary(f"msdeformattn/{impl}"), "unit": "s/forward+backward",
             "part": "msdeformattn", "reference": reference_name, "spatial_shapes": shapes, "queries": tokens,
             "heads": heads, "channels": channels, "points": points, "max_abs_diff": diff} for impl in functions]


def bench_mask2former(args, cfg, timer: Timer) -> List[Dict[str, Any]]:
    """Records of the module doc: train and inference of both models, then MSDeformAttn."""
    configs = {name: _config(name) for name in _CONFIGS}
    batch_size, total = args.num_images, args.warmup + args.iters
    samples = synthetic_samples(total * batch_size, IMAGE_SIZE, args.instances, 80, 54, 3, args.seed)
    batches = [samples[i * batch_size:(i + 1) * batch_size] for i in range(total)]
    torch.manual_seed(args.seed)
    models = {name: build_model(c) for name, c in configs.items()}
    # The model's panoptic and instance outputs need the thing classes, which the training set's metadata
    # reads from its json (absent here): COCO panoptic's 80 things come first among its 133 classes.
    models["mask2former_R50"].metadata = SimpleNamespace(thing_dataset_id_to_contiguous_id={k: k for k in range(80)})
    weights = {name: copy.deepcopy(model.state_dict()) for name, model in models.items()}
    builders = {"mask2former_R50": build_mask2former_optimizer, "panoptic_fpn_R50": build_optimizer}
    optimizers = {name: builders[name](configs[name], model) for name, model in models.items()}

    def train_step(name: str, batch: List[dict]) -> Callable[[], None]:
        def run() -> None:
            losses = models[name]([ours_input(s, True) for s in batch])
            optimizers[name].zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizers[name].step()
        return run

    for i in range(total):
        for name, model in models.items():
            model.train()
            timer(f"train/{name}", train_step(name, batches[i]), record=i >= args.warmup)
    with torch.no_grad():
        for name, model in models.items():
            model.load_state_dict(weights[name])  # inference from the initial weights, as after no training
            model.eval()
        for i in range(total):
            for name, model in models.items():
                inputs = [{"image": samples[i]["image"]}]
                timer(f"inference/{name}", lambda m=model, x=inputs: m(x), record=i >= args.warmup)
    records = []
    for part, unit in (("train", "s/iter"), ("inference", "s/image")):
        for name in models:
            records.append({**base_record(args, None, "seg_research"), **timer.summary(f"{part}/{name}"),
                            "unit": unit, "part": part, "model": name, "config": _CONFIGS[name],
                            "image_size": [IMAGE_SIZE, IMAGE_SIZE],
                            **({"batch_size": batch_size, "instances_per_image": args.instances}
                               if part == "train" else {})})
    return records + _bench_msdeformattn(args, timer)
