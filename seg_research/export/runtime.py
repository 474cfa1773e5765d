"""Run an exported ONNX model with onnxruntime, numpy and Pillow only: no torch, no seg_research.

This module imports nothing of the training stack, so ``tools/deploy/onnx_predict.py`` loads it
by file path on a machine without torch; inside the package, ``seg_research.export.ONNXPredictor``
wraps it. It reproduces what the PyTorch model does around the exported graph (see
:mod:`seg_research.export.graphs`), each step as the library computes it:

- resize: ``ResizeShortestEdge`` at test time (the short side to ``INPUT.MIN_SIZE_TEST``, the long
  side at most ``MAX_SIZE_TEST``, sizes rounded half up), Pillow's bilinear resampling as
  ``ResizeTransform``; channels in the model's ``INPUT.FORMAT``;
- boxes: scaled to the original size, clipped, empty ones dropped (``detector_postprocess``);
- masks: each M x M probability map resampled onto its box with its exact float corners and
  thresholded at 0.5 (``paste_masks_in_image``: bilinear at pixel centres, zero outside the box);
- semantic logits: bilinear resize to the original size (``sem_seg_postprocess``,
  ``align_corners=False``), then argmax;
- panoptic: ``combine_semantic_and_instance_outputs`` (instances by decreasing score with the
  overlap rule, then stuff classes in the free pixels with the area limit);
- mask classification (Mask2Former's ``MaskFormer``: per-query class and mask logits): the mask
  logits resized as semantic logits, then ``MaskFormer``'s semantic, panoptic and instance
  inference (:func:`mask_classification_outputs`).

The metadata the runtime needs is the JSON written beside the model at export
(:data:`RUNTIME_FILE`, see ``seg_research.export.metadata``).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = ["RUNTIME_FILE", "ONNX_FILE", "OnnxRuntimeModel", "load_runtime_metadata", "resize_shape", "resize_image",
           "network_input", "paste_masks", "resize_logits", "combine_panoptic", "mask_classification_outputs",
           "postprocess", "make_session"]

#: The metadata file written beside an exported model.
RUNTIME_FILE = "runtime.json"
#: The ONNX model's file name in an export directory.
ONNX_FILE = "model.onnx"
#: Detections whose pasted mask probability exceeds this are foreground (``detector_postprocess``).
MASK_THRESHOLD = 0.5


def load_runtime_metadata(model_dir: str) -> Dict[str, Any]:
    """The export's :data:`RUNTIME_FILE`, with an error naming the file and what to do."""
    path = os.path.join(model_dir, RUNTIME_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: pass the directory tools/export_model.py --output wrote "
                                f"(it holds {RUNTIME_FILE} beside the model).")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def resize_shape(height: int, width: int, short_edge: int, max_size: int) -> Tuple[int, int]:
    """``ResizeShortestEdge.get_output_shape``: (new_h, new_w) with the short side ``short_edge``
    and the long side at most ``max_size``, rounded half up."""
    scale = short_edge / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max(new_h, new_w) > max_size:
        cap = max_size / max(new_h, new_w)
        new_h, new_w = new_h * cap, new_w * cap
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_image(image: np.ndarray, resize: Optional[Dict[str, Any]]) -> np.ndarray:
    """(H, W, 3) uint8 -> resized as the test-time augmentation of the metadata's ``resize``
    (``{"short_edge": int, "max_size": int}``; None or short_edge 0: unchanged)."""
    if not resize or not resize.get("short_edge"):
        return image
    new_h, new_w = resize_shape(image.shape[0], image.shape[1], resize["short_edge"], resize["max_size"])
    if (new_h, new_w) == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))


def network_input(image: np.ndarray, metadata: Dict[str, Any], channel_order: str = "BGR") -> np.ndarray:
    """(H, W, 3) uint8 in ``channel_order`` -> the graph's float32 (3, h, w) input: channels in the
    model's ``input_format``, resized as at test time (``DefaultPredictor``'s preprocessing)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"Expected an (H, W, 3) uint8 image, got shape {image.shape} and dtype {image.dtype}.")
    if channel_order != metadata["input_format"]:
        image = image[:, :, ::-1]
    image = resize_image(np.ascontiguousarray(image), metadata.get("resize"))
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def _paste_weights(start: int, stop: int, low: float, high: float, size: int) -> np.ndarray:
    """(stop - start, size) bilinear weights of the mask cells for the pixel centres start..stop-1
    of a box side [low, high] (``grid_sample``, align_corners=False, zeros outside the mask)."""
    rel = (np.arange(start, stop, dtype=np.float32) + np.float32(0.5) - np.float32(low)) / np.float32(
        max(high - low, 1e-6))
    grid = rel * np.float32(2) - np.float32(1)
    source = ((grid + np.float32(1)) * np.float32(size) - np.float32(1)) / np.float32(2)
    first = np.floor(source)
    frac = source - first
    first = first.astype(np.int64)
    weights = np.zeros((stop - start, size), dtype=np.float32)
    rows = np.arange(stop - start)
    for offset, weight in ((0, np.float32(1) - frac), (1, frac)):
        cell = first + offset
        inside = (cell >= 0) & (cell < size)
        weights[rows[inside], cell[inside]] = weight[inside]
    return weights


def paste_masks(masks: np.ndarray, boxes: np.ndarray, height: int, width: int,
                threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """bool (D, height, width): each (M, M) probability map ``masks[i]`` resampled onto the pixels
    of XYXY box ``boxes[i]`` (float corners; only its bounding integer window is computed) and
    compared ``> threshold``, as ``paste_masks_in_image``."""
    result = np.zeros((len(masks), height, width), dtype=bool)
    for i, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes.astype(np.float32).tolist(), strict=True)):
        left, top = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
        right, bottom = min(int(math.ceil(x1)) + 1, width), min(int(math.ceil(y1)) + 1, height)
        if right <= left or bottom <= top:
            continue
        rows = _paste_weights(top, bottom, y0, y1, mask.shape[0])
        cols = _paste_weights(left, right, x0, x1, mask.shape[1])
        values = rows @ mask.astype(np.float32) @ cols.T
        result[i, top:bottom, left:right] = values > threshold
    return result


def _resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of ``F.interpolate(mode="bilinear", align_corners=False)``
    along one axis."""
    scale = np.float32(size_in / size_out)
    source = np.maximum((np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    first = np.minimum(np.floor(source).astype(np.int64), size_in - 1)
    second = np.minimum(first + 1, size_in - 1)
    frac = (source - first).astype(np.float32)
    matrix = np.zeros((size_out, size_in), dtype=np.float32)
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, first), np.float32(1) - frac)
    np.add.at(matrix, (rows, second), frac)
    return matrix


def resize_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """float (C, h, w) -> (C, height, width), bilinear with ``align_corners=False`` (``sem_seg_postprocess``)."""
    if logits.shape[1:] == (height, width):
        return logits.astype(np.float32, copy=False)
    rows = _resize_matrix(logits.shape[1], height)
    cols = _resize_matrix(logits.shape[2], width)
    return np.einsum("hy,cyx,wx->chw", rows, logits.astype(np.float32), cols, optimize=True)


def _softmax_max(logits: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(confidence, label) per pixel of (C, H, W) logits: the largest softmax probability and its class."""
    shifted = logits - logits.max(axis=0, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=0, keepdims=True)
    return probs.max(axis=0), logits.argmax(axis=0)


def combine_panoptic(masks: np.ndarray, scores: np.ndarray, classes: np.ndarray, sem_logits: np.ndarray,
                     overlap_threshold: float, stuff_area_thresh: int, instances_score_thresh: float,
                     ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """``combine_semantic_and_instance_outputs`` on numpy arrays: bool (N, H, W) masks, (N,) scores
    and classes at the original size, float (C, H, W) semantic logits (channel 0 "things").

    Returns int32 (H, W) segment ids (0 void; things 1..T by decreasing score, then stuff by
    increasing class) and the segments' ``id, category_id, isthing, score, area`` (things also
    ``instance_id``)."""
    height, width = sem_logits.shape[1:]
    panoptic = np.zeros((height, width), dtype=np.int32)
    occupied = np.zeros((height, width), dtype=bool)
    segments: List[Dict[str, Any]] = []
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= instances_score_thresh]
    for instance_id in order.tolist():
        mask = masks[instance_id]
        area = int(mask.sum())
        if area == 0:
            continue
        free = mask & ~occupied
        free_area = int(free.sum())
        if free_area == 0 or (area - free_area) / area > overlap_threshold:
            continue
        segment_id = len(segments) + 1
        panoptic[free] = segment_id
        occupied |= free
        segments.append({"id": segment_id, "category_id": int(classes[instance_id]), "isthing": True,
                         "score": float(scores[instance_id]), "area": free_area, "instance_id": instance_id})
    confidence, labels = _softmax_max(sem_logits)
    free = panoptic == 0
    free_labels = labels[free]
    num_classes = sem_logits.shape[0]
    areas = np.bincount(free_labels, minlength=num_classes)
    confidence_sums = np.bincount(free_labels, weights=confidence[free].astype(np.float64), minlength=num_classes)
    next_id = len(segments) + 1
    for category in range(1, num_classes):  # class 0 is "things", never a stuff segment
        if areas[category] == 0 or areas[category] < stuff_area_thresh:
            continue
        panoptic[free & (labels == category)] = next_id
        segments.append({"id": next_id, "category_id": category, "isthing": False,
                         "score": float(confidence_sums[category] / areas[category]), "area": int(areas[category])})
        next_id += 1
    return panoptic, segments


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.float32(1) / (np.float32(1) + np.exp(-x))


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    """float32 (D, 4) XYXY boxes enclosing bool (D, H, W) masks (a lone pixel (i, j) gives (j, i, j + 1,
    i + 1); 0s for an empty mask), as ``BitMasks.get_bounding_boxes``."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def mask_classification_outputs(class_logits: np.ndarray, mask_logits: np.ndarray, options: Dict[str, Any],
                                ) -> Dict[str, Any]:
    """``MaskFormer``'s inference from (Q, K + 1) class logits (the last "no object") and (Q, H, W)
    mask logits at the output size; ``options``: runtime.json's ``mask_classification``.

    Returns, as enabled: ``sem_seg`` float32 (K, H, W) ``sum_q softmax(class_q)[:K] * sigmoid(mask_q)``;
    ``panoptic_seg`` (int32 (H, W) ids from 1, 0 unassigned; segments ``id, isthing, category_id``):
    queries whose best class is an object with a score above ``object_mask_threshold``, each pixel to
    the query maximising score x mask probability, kept where that probability is >= 0.5 when it is
    at least ``overlap_threshold`` of the query's mask, one segment per stuff class; ``instances``:
    the ``test_topk_per_image`` best (query, class) pairs by class probability (things only when the
    panoptic output is on), mask = mask logit > 0, score = class probability x the mask's mean
    probability, boxes enclosing the masks."""
    num_classes = int(options["num_classes"])
    probs = _softmax(class_logits.astype(np.float32))
    mask_probs = _sigmoid(mask_logits.astype(np.float32))
    things = set(options.get("thing_classes") or [])
    outputs: Dict[str, Any] = {}
    if options.get("semantic_on", True):
        outputs["sem_seg"] = np.einsum("qc,qhw->chw", probs[:, :-1], mask_probs, optimize=True)
    if options.get("panoptic_on"):
        scores, labels = probs.max(axis=-1), probs.argmax(axis=-1)
        keep = (labels != num_classes) & (scores > options["object_mask_threshold"])
        cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], mask_probs[keep]
        panoptic = np.zeros(mask_logits.shape[1:], dtype=np.int32)
        segments: List[Dict[str, Any]] = []
        if len(cur_scores):
            owner = (cur_scores[:, None, None] * cur_masks).argmax(axis=0)
            stuff_segment: Dict[int, int] = {}
            for k, pred_class in enumerate(cur_classes.tolist()):
                isthing = pred_class in things
                owned, confident = owner == k, cur_masks[k] >= 0.5
                mask = owned & confident
                owned_area, mask_area, original_area = int(owned.sum()), int(mask.sum()), int(confident.sum())
                if owned_area == 0 or original_area == 0 or mask_area == 0:
                    continue
                if owned_area / original_area < options["overlap_threshold"]:
                    continue
                if not isthing and pred_class in stuff_segment:
                    panoptic[mask] = stuff_segment[pred_class]
                    continue
                segment_id = len(segments) + 1
                if not isthing:
                    stuff_segment[pred_class] = segment_id
                panoptic[mask] = segment_id
                segments.append({"id": segment_id, "isthing": bool(isthing), "category_id": int(pred_class)})
        outputs["panoptic_seg"] = (panoptic, segments)
    if options.get("instance_on"):
        flat = probs[:, :-1].reshape(-1)
        top = np.argsort(-flat, kind="stable")[: min(int(options["test_topk_per_image"]), flat.size)]
        top_scores, labels, masks = flat[top], top % num_classes, mask_logits[top // num_classes]
        if options.get("panoptic_on"):
            keep = np.isin(labels, sorted(things))
            top_scores, labels, masks = top_scores[keep], labels[keep], masks[keep]
        binary = masks > 0
        mask_scores = (_sigmoid(masks) * binary).reshape(len(masks), -1).sum(1) / (
            binary.reshape(len(masks), -1).sum(1) + np.float32(1e-6))
        outputs["instances"] = {"boxes": _mask_boxes(binary), "scores": (top_scores * mask_scores).astype(np.float32),
                                "classes": labels.astype(np.int64), "masks": binary}
    return outputs


def postprocess(raw: Dict[str, np.ndarray], metadata: Dict[str, Any], input_size: Tuple[int, int], height: int,
                width: int) -> Dict[str, Any]:
    """The graph's outputs on the resized ``input_size`` (h, w) input (see ``export_inference``)
    brought to the original (height, width).

    Returns a dict with, as the model has them: ``instances``: ``{"boxes": float32 (D, 4) XYXY,
    "scores": (D,), "classes": int64 (D,) contiguous ids, ["masks": bool (D, H, W)]}`` by
    decreasing score; ``sem_seg``: float32 (C, H, W) logits; ``panoptic_seg``: ``(int32 (H, W)
    ids, segments_info)``. A mask-classification model (``pred_logits``, ``pred_masks``): see
    :func:`mask_classification_outputs`.
    """
    input_h, input_w = input_size
    if "pred_logits" in raw:
        options = metadata["mask_classification"]
        if options.get("resize_masks_first", True):
            return mask_classification_outputs(raw["pred_logits"], resize_logits(raw["pred_masks"], height, width),
                                                options)
        # semantic-only models combine the masks at the input size and resize the class scores
        outputs = mask_classification_outputs(raw["pred_logits"], raw["pred_masks"], options)
        return {"sem_seg": resize_logits(outputs["sem_seg"], height, width)}
    outputs: Dict[str, Any] = {}
    if "sem_seg" in raw:
        outputs["sem_seg"] = resize_logits(raw["sem_seg"], height, width)
    if "instances.scores" in raw:
        scale = np.array([width / input_w, height / input_h] * 2, dtype=np.float32)
        boxes = raw["instances.pred_boxes"].astype(np.float32) * scale
        boxes = np.minimum(np.maximum(boxes, 0), np.array([width, height, width, height], dtype=np.float32))
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        instances = {"boxes": boxes[keep], "scores": raw["instances.scores"][keep].astype(np.float32),
                     "classes": raw["instances.pred_classes"][keep].astype(np.int64)}
        if "instances.pred_masks" in raw:
            instances["masks"] = paste_masks(raw["instances.pred_masks"][keep], instances["boxes"], height, width)
        outputs["instances"] = instances
        panoptic = metadata.get("panoptic")
        if panoptic is not None and "sem_seg" in outputs:
            outputs["panoptic_seg"] = combine_panoptic(
                instances["masks"], instances["scores"], instances["classes"], outputs["sem_seg"],
                panoptic["overlap_threshold"], panoptic["stuff_area_thresh"], panoptic["instances_score_thresh"])
    return outputs


def make_session(path: str, threads: Optional[int] = None, providers: Optional[Sequence[str]] = None,
                 profile_prefix: Optional[str] = None) -> Any:
    """An ``onnxruntime.InferenceSession`` with all graph optimisations; ``threads`` sets the
    intra-op thread count (None: onnxruntime's default, one per core); ``profile_prefix`` turns on
    onnxruntime's profiler (``session.end_profiling()`` writes ``<prefix>_<date>.json``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(path, options, providers=list(providers or ["CPUExecutionProvider"]))


class OnnxRuntimeModel:
    """An export directory (``model.onnx`` + :data:`RUNTIME_FILE`) on onnxruntime::

        model = OnnxRuntimeModel("exported/")
        outputs = model(image_bgr)  # (H, W, 3) uint8, as cv2.imread gives; see postprocess()
    """

    def __init__(self, model_dir: str, threads: Optional[int] = None) -> None:
        self.metadata = load_runtime_metadata(model_dir)
        path = os.path.join(model_dir, self.metadata.get("model_file", ONNX_FILE))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: export the model with --format onnx into {model_dir}.")
        self.session = make_session(path, threads)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, image: np.ndarray, channel_order: str = "BGR") -> np.ndarray:
        """:func:`network_input` with this model's metadata."""
        return network_input(image, self.metadata, channel_order)

    def run(self, net_input: np.ndarray) -> Dict[str, np.ndarray]:
        """The graph on one preprocessed (3, h, w) input: its outputs by name."""
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: net_input}), strict=True))

    def __call__(self, image: np.ndarray, channel_order: str = "BGR") -> Dict[str, Any]:
        """Outputs of one (H, W, 3) uint8 image at its size (see :func:`postprocess`)."""
        net_input = self.preprocess(image, channel_order)
        return postprocess(self.run(net_input), self.metadata, net_input.shape[1:], image.shape[0], image.shape[1])
