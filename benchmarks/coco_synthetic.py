"""Generated COCO instance problems (ground truth json + detection results) for checking and timing
COCO evaluation backends.

The problem has what real evaluations meet: polygon ground truth of every COCO area range,
crowd regions (RLE, as COCO stores them), images without annotations, images without any
detection, categories without ground truth (detected all the same), duplicate and misclassified
detections and random false positives. Everything is drawn from one seeded generator, so a
problem is the same on every machine.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
from pycocotools import mask as mask_util

__all__ = ["synthetic_coco_problem"]

_VERTICES = 12


def _polygon(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, height: int,
             width: int) -> List[float]:
    """A star-shaped polygon around (cx, cy) with radii about (rx, ry), clipped to the image, as COCO's flat
    ``[x0, y0, x1, y1, ...]``."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, _VERTICES))
    scale = rng.uniform(0.7, 1.0, _VERTICES)
    xs = np.clip(cx + rx * scale * np.cos(angles), 0, width)
    ys = np.clip(cy + ry * scale * np.sin(angles), 0, height)
    return np.stack([xs, ys], axis=1).ravel().round(2).tolist()


def _rle(polygons: List[List[float]], height: int, width: int) -> Dict[str, Any]:
    """Compressed RLE of the union of ``polygons``, ``counts`` as text (json-serialisable)."""
    rle = mask_util.merge(mask_util.frPyObjects(polygons, height, width))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _jitter(rng: np.random.Generator, polygon: List[float], height: int, width: int, spread: float) -> List[float]:
    """``polygon`` moved and its vertices shaken by ``spread`` times its size (the IoU falls as it grows)."""
    xy = np.asarray(polygon).reshape(-1, 2)
    size = max(xy.max(0) - xy.min(0)) + 1.0
    xy = xy + rng.normal(0, spread * size, 2) + rng.normal(0, 0.5 * spread * size, xy.shape)
    xy[:, 0] = np.clip(xy[:, 0], 0, width)
    xy[:, 1] = np.clip(xy[:, 1], 0, height)
    return xy.ravel().round(2).tolist()


def synthetic_coco_problem(num_images: int, *, num_categories: int = 80, height: int = 480, width: int = 640,
                           objects_per_image: float = 7.3, detections_per_object: float = 1.5,
                           seed: int = 0) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """A COCO instances ground truth dict and detection results on it.

    The defaults are COCO val2017's sizes (5,000 images at 480×640, 80 categories, 7.3
    annotations per image). Category ids are ``1, 3, 5, ...`` (not contiguous); the last
    ``max(1, num_categories // 10)`` categories have no ground truth. About 5% of the images have
    no annotation and 5% get no detection; about 3% of the annotations are crowd regions. Each
    non-crowd object is detected with probability 0.9 (10% of those with a wrong category) by
    a jittered polygon, plus duplicates and random false positives, ``detections_per_object``
    detections per object on average.

    Returns:
        ``(gt, results)``: ``gt`` has ``images`` (``id, file_name, height, width``),
        ``categories`` (``id, name``) and ``annotations`` (``id, image_id, category_id,
        segmentation`` (polygons; RLE for crowds), ``area`` (mask pixels), ``bbox`` (XYWH),
        ``iscrowd``); ``results`` are COCO result dicts ``{image_id, category_id, bbox (XYWH),
        score, segmentation (compressed RLE, counts as text)}``.
    """
    if num_images < 1 or num_categories < 2:
        raise ValueError(f"synthetic_coco_problem needs num_images >= 1 and num_categories >= 2, got "
                         f"{num_images} and {num_categories}.")
    rng = np.random.default_rng(seed)
    cat_ids = [2 * k + 1 for k in range(num_categories)]
    gt_cats = cat_ids[: num_categories - max(1, num_categories // 10)]
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "height": height, "width": width}
              for i in range(num_images)]
    annotations: List[Dict[str, Any]] = []
    results: List[Dict[str, Any]] = []
    for image in images:
        objects = 0 if rng.random() < 0.05 else int(rng.poisson(objects_per_image))
        detected = rng.random() >= 0.05
        for _ in range(objects):
            # Log-uniform radii: small (< 32² px), medium and large objects all occur.
            rx, ry = np.exp(rng.uniform(np.log(3), np.log(min(height, width) / 2), 2))
            polygon = _polygon(rng, rng.uniform(0, width), rng.uniform(0, height), rx, ry, height, width)
            category = int(rng.choice(gt_cats))
            crowd = rng.random() < 0.03
            rle = _rle([polygon], height, width)
            if mask_util.area(rle) == 0:
                continue
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
                                "segmentation": rle if crowd else [polygon], "area": float(mask_util.area(rle)),
                                "bbox": mask_util.toBbox(rle).tolist(), "iscrowd": int(crowd)})
            if not detected:
                continue
            hits = int(rng.random() < 0.9) + int(rng.random() < detections_per_object - 1.2)
            for _ in range(hits):
                label = category if rng.random() < 0.9 else int(rng.choice(cat_ids))
                results.append(_detection(rng, image["id"], label, _jitter(rng, polygon, height, width,
                                                                           rng.uniform(0.0, 0.15)), height, width))
        if detected:
            for _ in range(int(rng.poisson(0.3 * max(objects, 1)))):  # false positives, any category
                rx, ry = np.exp(rng.uniform(np.log(3), np.log(min(height, width) / 3), 2))
                polygon = _polygon(rng, rng.uniform(0, width), rng.uniform(0, height), rx, ry, height, width)
                results.append(_detection(rng, image["id"], int(rng.choice(cat_ids)), polygon, height, width))
    categories = [{"id": c, "name": f"category{c}"} for c in cat_ids]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def _detection(rng: np.random.Generator, image_id: int, category_id: int, polygon: List[float], height: int,
               width: int) -> Dict[str, Any]:
    rle = _rle([polygon], height, width)
    return {"image_id": image_id, "category_id": category_id, "bbox": mask_util.toBbox(rle).tolist(),
            "score": round(float(rng.uniform(0.05, 1.0)), 6), "segmentation": rle}
