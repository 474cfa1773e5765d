"""Shapes: a small synthetic segmentation dataset, generated deterministically from a seed.

Each image has a background of stuff (``sky`` above a wavy horizon, textured ``ground``
below it, often a ``water`` patch in the ground), then 2-6 things (``circle, square,
triangle, star``) of random colour (colour says nothing about the class), size 15-35%
of the short side, random rotation and position (some cross the border). Later things
occlude earlier ones; a thing whose visible part would be under ``MIN_VISIBLE_AREA``
pixels, or would have a hole, is not drawn. Every 5th image (index 2, 7, 12, ...) also
gets a crowd: a cluster of 5-8 tiny shapes of one class, annotated as one RLE
``iscrowd=1`` region.

Layout written by :func:`generate_shapes` under ``root/shapes/``::

    {split}/images/000000.png                 BGR image (lossless PNG)
    annotations/instances_{split}.json        COCO instances (category ids 1..4)
    annotations/panoptic_{split}.json         COCO panoptic (things 1..4, stuff sky 5, ground 6, water 7)
    panoptic_{split}/000000.png               RGB segment ids, id = R + 256 G + 256^2 B, 0 = void
    sem_seg_{split}/000000.png                uint8 labels: things 0..3, stuff 4..6, 255 = void
    panoptic_stuff_{split}/000000.png         uint8 labels: any thing 0, sky/ground/water 1..3, 255 = void

Segment ids are ``category_id * 1000 + k`` for the k-th thing (k >= 1) and
``category_id * 1000`` for stuff. Image ``i`` depends only on ``(seed, i)`` and the
image size, so a split's first images do not change when ``num_images`` grows.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np
import portalocker

from seg_research.data.detection_utils import write_panoptic_ids
from seg_research.utils.file_io import atomic_write_json

from .mask_annotations import outer_polygons, rle_box_area

__all__ = ["GENERATOR_VERSION", "THING_CLASSES", "STUFF_CLASSES", "CATEGORIES", "MIN_VISIBLE_AREA",
           "generate_shapes"]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
THING_CLASSES = ("circle", "square", "triangle", "star")
STUFF_CLASSES = ("sky", "ground", "water")
_COLORS = ([230, 25, 75], [60, 180, 75], [255, 225, 25], [145, 30, 180], [135, 206, 235], [139, 90, 43],
           [0, 60, 160])
#: COCO panoptic categories (RGB ``color`` for visualisation): things ids 1..4, stuff ids 5..7.
CATEGORIES: List[Dict[str, Any]] = [
    {"id": i + 1, "name": name, "isthing": int(i < len(THING_CLASSES)), "color": _COLORS[i],
     "supercategory": "shape" if i < len(THING_CLASSES) else "background"}
    for i, name in enumerate(THING_CLASSES + STUFF_CLASSES)
]
MIN_VISIBLE_AREA = 30
_CROWD_EVERY, _CROWD_INDEX = 5, 2
_SEGMENT_ID_STRIDE = 1000
_ATTEMPTS_PER_THING = 20
_LOCK_TIMEOUT_S = 3600
_SKY, _GROUND, _WATER = range(3)


@dataclass
class _Thing:
    category: int  # 0-based thing class index
    mask: np.ndarray  # H x W bool, the full (unoccluded) shape
    color: np.ndarray  # (3,) float, BGR
    iscrowd: int


def _background(rng: np.random.Generator, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
    """Stuff layout and texture: ``(image H x W x 3 float32 BGR, stuff H x W uint8 in {_SKY, _GROUND, _WATER})``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = rng.uniform(0.3, 0.6) * h + rng.uniform(0.02, 0.06) * h * np.sin(
        2 * np.pi * rng.uniform(0.5, 2.0) * xx / w + rng.uniform(0, 2 * np.pi))
    stuff = np.where(yy < horizon, _SKY, _GROUND).astype(np.uint8)
    if rng.random() < 0.7:
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.65, 1.0) * h
        ax, ay = rng.uniform(0.15, 0.4) * w, rng.uniform(0.08, 0.2) * h
        stuff[(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1) & (stuff == _GROUND)] = _WATER

    t = (yy / h)[..., None]
    sky = (1 - t) * np.array([230, 160, 110]) + t * np.array([250, 225, 200]) + rng.normal(0, 3, (h, w, 3))
    blend = cv2.resize(rng.random((4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    ground = (blend * np.array([50, 85, 120]) + (1 - blend) * np.array([50, 120, 70])
              + rng.normal(0, 10, (h, w, 3)))
    waves = np.sin(yy * rng.uniform(0.4, 0.8) + 2 * np.sin(xx * rng.uniform(0.05, 0.15)))[..., None]
    water = np.array([170, 80, 30]) + 25 * waves + rng.normal(0, 4, (h, w, 3))
    image = np.choose(stuff[..., None], [sky, ground, water]).astype(np.float32)
    return image, stuff


def _shape_mask(kind: int, cx: float, cy: float, radius: float, angle: float, h: int, w: int) -> np.ndarray:
    """H x W bool mask of a shape with circumradius ``radius`` (pixels) centred at ``(cx, cy)``."""
    if kind == 0:
        n, radii = 64, np.full(64, radius)
    elif kind == 3:
        n, radii = 10, np.tile([radius, 0.45 * radius], 5)
    else:
        n = 4 if kind == 1 else 3
        radii = np.full(n, radius)
    theta = angle + 2 * np.pi * np.arange(n) / n
    points = np.stack([cx + radii * np.cos(theta), cy + radii * np.sin(theta)], axis=1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _instance_map(things: List[_Thing]) -> np.ndarray:
    """H x W int32: 1 + index of the thing visible at each pixel (later things on top), 0 = background."""
    out = np.zeros(things[0].mask.shape, np.int32)
    for k, thing in enumerate(things):
        out[thing.mask] = k + 1
    return out


def _all_visible_enough(things: List[_Thing]) -> bool:
    """Every thing keeps >= MIN_VISIBLE_AREA visible pixels; non-crowd ones also a hole-free polygon."""
    inst = _instance_map(things)
    for k, thing in enumerate(things):
        visible = inst == k + 1
        if visible.sum() < MIN_VISIBLE_AREA:
            return False
        if not thing.iscrowd:
            polygons, has_hole = outer_polygons(visible)
            if not polygons or has_hole:
                return False
    return True


def _sample_thing(rng: np.random.Generator, h: int, w: int) -> _Thing:
    radius = rng.uniform(0.15, 0.35) * min(h, w) / 2
    kind = int(rng.integers(len(THING_CLASSES)))
    mask = _shape_mask(kind, rng.uniform(0, w), rng.uniform(0, h), radius, rng.uniform(0, 2 * np.pi), h, w)
    return _Thing(kind, mask, rng.integers(0, 256, 3).astype(np.float32), 0)


def _sample_crowd(rng: np.random.Generator, h: int, w: int) -> _Thing:
    short = min(h, w)
    kind = int(rng.integers(len(THING_CLASSES)))
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    mask = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(5, 9))):
        radius = max(2.5, rng.uniform(0.06, 0.09) * short / 2)
        dx, dy = rng.uniform(-0.15, 0.15, 2) * short
        mask |= _shape_mask(kind, cx + dx, cy + dy, radius, rng.uniform(0, 2 * np.pi), h, w)
    return _Thing(kind, mask, rng.integers(0, 256, 3).astype(np.float32), 1)


def _place_things(rng: np.random.Generator, h: int, w: int, with_crowd: bool) -> List[_Thing]:
    """Things in drawing order (a crowd first); each candidate is re-drawn until all stay visible enough."""
    things: List[_Thing] = []
    samplers = ([_sample_crowd] if with_crowd else []) + [_sample_thing] * int(rng.integers(2, 7))
    for sample in samplers:
        for _ in range(_ATTEMPTS_PER_THING):
            candidate = sample(rng, h, w)
            if _all_visible_enough(things + [candidate]):
                things.append(candidate)
                break
    return things


def _render(seed: int, index: int, h: int, w: int) -> Tuple[np.ndarray, np.ndarray, List[_Thing]]:
    """Image ``index``: ``(BGR H x W x 3 uint8, segment-id map H x W int64, things in drawing order)``."""
    rng = np.random.default_rng([seed, index])
    image, stuff = _background(rng, h, w)
    things = _place_things(rng, h, w, with_crowd=index % _CROWD_EVERY == _CROWD_INDEX)
    segments = (stuff.astype(np.int64) + len(THING_CLASSES) + 1) * _SEGMENT_ID_STRIDE
    if things:
        inst = _instance_map(things)
        for k, thing in enumerate(things):
            visible = inst == k + 1
            image[visible] = thing.color
            segments[visible] = (thing.category + 1) * _SEGMENT_ID_STRIDE + k + 1
        image[inst > 0] += rng.normal(0, 4, (int((inst > 0).sum()), 3)).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), segments, things


def _label_maps(segments: np.ndarray, segments_info: List[Dict[str, Any]]) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 semantic labels (category id - 1: things 0..3, stuff 4..6) and separated stuff labels
    (things 0, stuff 1..3); 255 where no segment is."""
    num_things = len(THING_CLASSES)
    sem = np.full(segments.shape, 255, np.uint8)
    stuff = np.full(segments.shape, 255, np.uint8)
    for seg in segments_info:
        where = segments == seg["id"]
        sem[where] = seg["category_id"] - 1
        stuff[where] = max(0, seg["category_id"] - num_things)
    return sem, stuff


def _write_split(out: str, split: str, num_images: int, h: int, w: int, seed: int) -> None:
    """Write every file of ``split`` under ``out`` (a fresh folder laid out like ``root/shapes``)."""
    images, instances, panoptic = [], [], []
    for index in range(num_images):
        name = f"{index:06d}"
        image, segments, things = _render(seed, index, h, w)
        images.append({"id": index, "file_name": name + ".png", "height": h, "width": w})
        segments_info = []
        for sid in np.unique(segments).tolist():
            mask = segments == sid
            rle, bbox, area = rle_box_area(mask)
            category_id = sid // _SEGMENT_ID_STRIDE
            k = sid % _SEGMENT_ID_STRIDE
            iscrowd = things[k - 1].iscrowd if k else 0
            segments_info.append({"id": sid, "category_id": category_id, "iscrowd": iscrowd, "bbox": bbox,
                                  "area": area})
            if k:
                segmentation = rle if iscrowd else outer_polygons(mask)[0]
                instances.append({"id": len(instances) + 1, "image_id": index, "category_id": category_id,
                                  "segmentation": segmentation, "bbox": bbox, "area": area, "iscrowd": iscrowd})
        panoptic.append({"image_id": index, "file_name": name + ".png", "segments_info": segments_info})
        sem, stuff = _label_maps(segments, segments_info)
        write_panoptic_ids(os.path.join(out, f"panoptic_{split}", name + ".png"), segments)
        for folder, array in ((f"{split}/images", image), (f"sem_seg_{split}", sem),
                              (f"panoptic_stuff_{split}", stuff)):
            os.makedirs(os.path.join(out, folder), exist_ok=True)
            cv2.imwrite(os.path.join(out, folder, name + ".png"), array)
    info = {"description": "Shapes, a synthetic segmentation dataset", "version": GENERATOR_VERSION, "seed": seed}
    thing_categories = [{k: c[k] for k in ("id", "name", "supercategory")} for c in CATEGORIES if c["isthing"]]
    atomic_write_json(os.path.join(out, "annotations", f"instances_{split}.json"),
                      {"info": info, "licenses": [], "images": images, "annotations": instances,
                       "categories": thing_categories})
    atomic_write_json(os.path.join(out, "annotations", f"panoptic_{split}.json"),
                      {"info": info, "licenses": [], "images": images, "annotations": panoptic,
                       "categories": CATEGORIES})


def _split_entries(split: str) -> List[str]:
    return [split, f"panoptic_{split}", f"sem_seg_{split}", f"panoptic_stuff_{split}",
            os.path.join("annotations", f"instances_{split}.json"),
            os.path.join("annotations", f"panoptic_{split}.json")]


def _move_into_place(tmp: str, out: str, split: str) -> None:
    """Swap the freshly written entries of ``split`` in ``tmp`` for those in ``out`` (old ones go to ``tmp``)."""
    os.makedirs(os.path.join(out, "annotations"), exist_ok=True)
    trash = os.path.join(tmp, ".old")
    os.makedirs(os.path.join(trash, "annotations"))
    for entry in _split_entries(split):
        if os.path.exists(os.path.join(out, entry)):
            os.replace(os.path.join(out, entry), os.path.join(trash, entry))
        os.replace(os.path.join(tmp, entry), os.path.join(out, entry))


def _read_marker(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def generate_shapes(root: str, split: str, num_images: int, image_size: Tuple[int, int] = (256, 256),
                    seed: int = 0) -> str:
    """Make sure ``root/shapes`` holds ``split`` generated with these parameters; return ``root/shapes``.

    Idempotent: ``root/shapes/{split}/.done`` records the generator version and the
    parameters; a split with the same record is left as is, a different one is
    regenerated. Safe when several processes call it at once (a file lock serialises
    them) and atomic (files are written into a temporary folder, then moved into place;
    the marker is written last).

    Args:
        root: datasets root (``seg_research.data.datasets.get_datasets_root()`` by convention).
        split: split name, e.g. ``"train"``.
        num_images: number of images.
        image_size: ``(height, width)`` in pixels.
        seed: the same seed (and size) gives byte-identical files.
    """
    out = os.path.join(root, "shapes")
    params = {"version": GENERATOR_VERSION, "split": split, "num_images": int(num_images),
              "image_size": [int(s) for s in image_size], "seed": int(seed)}
    marker = os.path.join(out, split, ".done")
    if _read_marker(marker) == params:
        return out
    os.makedirs(out, exist_ok=True)
    with portalocker.Lock(os.path.join(out, f".{split}.lock"), timeout=_LOCK_TIMEOUT_S):
        if _read_marker(marker) == params:
            return out
        logger.info(f"Generating Shapes split '{split}': {num_images} images of {image_size[0]}x{image_size[1]}, "
                    f"seed {seed}, under {out}")
        start = time.perf_counter()
        tmp = tempfile.mkdtemp(prefix=f".tmp-{split}-", dir=out)
        try:
            _write_split(tmp, split, num_images, image_size[0], image_size[1], seed)
            _move_into_place(tmp, out, split)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        atomic_write_json(marker, params)
        logger.info(f"Generated Shapes split '{split}' in {time.perf_counter() - start:.1f} s")
    return out
