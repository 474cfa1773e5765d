"""Inputs of the train/inference benchmarks: synthetic images or train-loader batches, converted for
our model and for torchvision's."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch

from seg_research.config import CfgNode
from seg_research.data.build import build_detection_train_loader
from seg_research.structures import BitMasks, Boxes, Instances

#: One image's inputs, converted for each implementation: see :func:`synthetic_samples`.
Sample = Dict[str, Any]


def synthetic_image_size(cfg: CfgNode, train: bool) -> int:
    """Side of the square synthetic images: the configured shortest side, capped by the longest."""
    if train:
        return int(min(max(cfg.INPUT.MIN_SIZE_TRAIN), cfg.INPUT.MAX_SIZE_TRAIN))
    return int(min(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST))


def synthetic_samples(num_images: int, size: int, num_instances: int, num_classes: int, num_stuff: int,
                      channels: int, seed: int) -> List[Sample]:
    """Deterministic random inputs.

    Returns:
        per image ``{"image": uint8 (channels, size, size), "boxes": float32 (n, 4) XYXY absolute
        pixels, "classes": int64 (n,) in 0..num_classes-1, "masks": bool (n, size, size),
        "sem_seg": int64 (size, size)}``: each instance is the ellipse inscribed in its box, box
        sides uniform in [size/8, size/2]; ``sem_seg`` is 0 on instances ("things", the
        ``_separated`` convention) and a random class of 1..num_stuff-1 per 32×32 block elsewhere.
    """
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    samples = []
    for _ in range(num_images):
        image = torch.randint(0, 256, (channels, size, size), generator=g, dtype=torch.uint8)
        sides = (torch.rand(num_instances, 2, generator=g) * 3 / 8 + 1 / 8) * size
        origins = torch.rand(num_instances, 2, generator=g) * (size - sides)
        boxes = torch.cat([origins, origins + sides], dim=1).floor()
        centres, radii = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2
        masks = ((xs - centres[:, 0, None, None]) / radii[:, 0, None, None]) ** 2 + (
            (ys - centres[:, 1, None, None]) / radii[:, 1, None, None]) ** 2 <= 1
        classes = torch.randint(0, num_classes, (num_instances,), generator=g)
        blocks = torch.randint(1, max(num_stuff, 2), ((size + 31) // 32,) * 2, generator=g)
        sem_seg = blocks.repeat_interleave(32, 0).repeat_interleave(32, 1)[:size, :size] % max(num_stuff, 1)
        sem_seg[masks.any(dim=0)] = 0
        samples.append({"image": image, "boxes": boxes, "classes": classes, "masks": masks, "sem_seg": sem_seg})
    return samples


def samples_from_loader(cfg: CfgNode, num_batches: int) -> List[List[Sample]]:
    """``num_batches`` batches of the configured train loader, as :func:`synthetic_samples` dicts
    (without the keys a record lacks)."""
    loader = iter(build_detection_train_loader(cfg))
    batches = []
    for _ in range(num_batches):
        batch = []
        for record in next(loader):
            sample = {"image": record["image"]}
            if "sem_seg" in record:
                sample["sem_seg"] = record["sem_seg"]
            if "instances" in record:
                instances, (height, width) = record["instances"], record["image"].shape[-2:]
                sample.update(boxes=instances.gt_boxes.tensor, classes=instances.gt_classes)
                if instances.has("gt_masks"):
                    masks = instances.gt_masks
                    if not isinstance(masks, BitMasks):
                        masks = BitMasks.from_polygon_masks(masks, height, width)
                    sample["masks"] = masks.tensor
            batch.append(sample)
        batches.append(batch)
    return batches


def ours_input(sample: Sample, train: bool) -> Dict[str, Any]:
    """Our model's input dict: ``image`` (INPUT.FORMAT order) and in training ``instances`` (with
    BitMasks) and ``sem_seg`` when the sample has them."""
    out = {"image": sample["image"]}
    if train and "boxes" in sample:
        instances = Instances(tuple(sample["image"].shape[-2:]), gt_boxes=Boxes(sample["boxes"]),
                              gt_classes=sample["classes"])
        if "masks" in sample:
            instances.gt_masks = BitMasks(sample["masks"])
        out["instances"] = instances
    if train and "sem_seg" in sample:
        out["sem_seg"] = sample["sem_seg"]
    return out


def torchvision_input(sample: Sample, input_format: str, train: bool) -> Tuple[torch.Tensor, Dict[str, Any]]:
    """torchvision's (uint8 RGB image, target with 1-based ``labels`` and uint8 ``masks``)."""
    image = sample["image"].flip(0) if input_format == "BGR" else sample["image"]
    target = {}
    if train:
        target = {"boxes": sample["boxes"], "labels": sample["classes"] + 1, "masks": sample["masks"].to(torch.uint8)}
    return image, target
