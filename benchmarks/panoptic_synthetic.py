"""Generated COCO panoptic problems (ground truth and prediction PNGs + jsons) for checking and timing
panoptic quality evaluation.

Per image: 4 stuff bands and ``segments - 4`` elliptic things on top of them (thin void outlines
around the ground truth's things, a crowd thing in ~30% of the images); the prediction moves,
resizes and rotates the things, relabels (10%) and drops (10%) some, and adds 2 spurious ones.
Categories: 20 things (ids 1..20) and 10 stuff (ids 21..30). Everything is drawn from one seeded
generator, so a problem is the same on every machine.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Tuple

import cv2
import numpy as np

from seg_research.data.image_io import write_panoptic_ids

__all__ = ["synthetic_panoptic_problem", "CATEGORIES"]

NUM_THINGS, NUM_STUFF = 20, 10
#: The categories of every generated problem, as a COCO panoptic json lists them.
CATEGORIES = ([{"id": i + 1, "name": f"thing{i}", "isthing": 1} for i in range(NUM_THINGS)]
              + [{"id": NUM_THINGS + i + 1, "name": f"stuff{i}", "isthing": 0} for i in range(NUM_STUFF)])
_BANDS = 4


def _draw(layout: Mapping[str, Any], h: int, w: int, void_edges: bool) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Segment-id map (int32 (h, w), ids 1..N, 0 = void) and segments_info of a layout: stuff bands, then
    things on top; segments hidden by later ones are left out."""
    ids = np.zeros((h, w), np.int32)
    segments = []
    for k, (top, category) in enumerate(layout["bands"]):
        ids[top:] = k + 1
        segments.append({"id": k + 1, "category_id": category, "iscrowd": 0})
    for cx, cy, ax, ay, angle, category, iscrowd in layout["things"]:
        seg_id = len(segments) + 1
        center, axes = (int(cx), int(cy)), (max(int(ax), 2), max(int(ay), 2))
        cv2.ellipse(ids, center, axes, angle, 0, 360, seg_id, thickness=-1)
        if void_edges:
            cv2.ellipse(ids, center, axes, angle, 0, 360, 0, thickness=2)
        segments.append({"id": seg_id, "category_id": category, "iscrowd": iscrowd})
    present = set(np.unique(ids).tolist())
    return ids, [s for s in segments if s["id"] in present]


def _layouts(rng: np.random.Generator, h: int, w: int, segments: int) -> Tuple[dict, dict]:
    """(ground truth, prediction) layouts; things are ``(cx, cy, semi-axis x, semi-axis y, angle in degrees,
    category id, iscrowd)`` in pixels, bands ``(top row, category id)``."""
    tops = np.sort(rng.integers(1, h, _BANDS - 1))
    bands = [(0, NUM_THINGS + 1 + int(rng.integers(NUM_STUFF)))] + [
        (int(t), NUM_THINGS + 1 + int(rng.integers(NUM_STUFF))) for t in tops]
    things = []
    for k in range(segments - _BANDS):
        things.append((rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, 60), rng.uniform(10, 60),
                       rng.uniform(0, 180), 1 + int(rng.integers(NUM_THINGS)), int(k == 0 and rng.random() < 0.3)))
    pred_bands = [(max(0, t + int(rng.integers(-15, 16))) if t else 0, c) for t, c in bands]
    pred_things = []
    for cx, cy, ax, ay, angle, category, _ in things:
        if rng.random() < 0.1:
            continue
        if rng.random() < 0.1:
            category = 1 + int(rng.integers(NUM_THINGS))
        pred_things.append((cx + rng.normal(0, 4), cy + rng.normal(0, 4), ax * rng.uniform(0.85, 1.15),
                            ay * rng.uniform(0.85, 1.15), angle + rng.normal(0, 10), category, 0))
    for _ in range(2):
        pred_things.append((rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 20), rng.uniform(5, 20), 0.0,
                            1 + int(rng.integers(NUM_THINGS)), 0))
    return {"bands": bands, "things": things}, {"bands": pred_bands, "things": pred_things}


def synthetic_panoptic_problem(root: str, num_images: int, *, height: int = 480, width: int = 640,
                               segments: int = 20, seed: int = 0) -> Tuple[str, str]:
    """Write a generated problem into ``root``: ``{gt,pred}.json`` (COCO panoptic: ``images``,
    ``annotations`` with ``segments_info``, :data:`CATEGORIES`) and ``{gt,pred}/NNNNNN.png``.

    Args:
        root: output folder (created as needed).
        num_images: image pairs to write.
        height, width: image size in pixels (default: COCO's usual 480×640).
        segments: ground truth segments drawn per image (4 stuff bands + the rest things; a few may be
            hidden by others).
        seed: seed of the generator.

    Returns:
        paths of the ground truth and prediction jsons (the PNG folders are the paths without ``.json``).
    """
    if num_images < 1 or segments <= _BANDS:
        raise ValueError(f"synthetic_panoptic_problem needs num_images >= 1 and segments > {_BANDS}, got "
                         f"{num_images} and {segments}.")
    rng = np.random.default_rng(seed)
    images, annotations = [], {"gt": [], "pred": []}
    for i in range(num_images):
        file_name = f"{i:06d}.png"
        images.append({"id": i, "file_name": file_name, "height": height, "width": width})
        for kind, layout in zip(("gt", "pred"), _layouts(rng, height, width, segments), strict=True):
            ids, segs = _draw(layout, height, width, void_edges=kind == "gt")
            write_panoptic_ids(os.path.join(root, kind, file_name), ids)
            annotations[kind].append({"image_id": i, "file_name": file_name, "segments_info": segs})
    paths = []
    for kind in ("gt", "pred"):
        path = os.path.join(root, f"{kind}.json")
        with open(path, "w") as f:
            json.dump({"images": images, "annotations": annotations[kind], "categories": CATEGORIES}, f)
        paths.append(path)
    return paths[0], paths[1]
