"""Panoptic fusion of Kirillov et al. 2019 (Panoptic FPN): instances first, then stuff in the gaps."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch

from ..structures import Instances

__all__ = ["combine_semantic_and_instance_outputs"]

#: Stuff label of the separated convention that means "some thing": never a stuff segment.
THINGS_LABEL = 0


def _paste_instances(
    instance_results: Instances, panoptic_seg: torch.Tensor, overlap_threshold: float, instances_score_thresh: float
) -> List[Dict[str, Any]]:
    """Write the kept instances into ``panoptic_seg`` (ids 1, 2, ...) and return their segments_info."""
    scores = instance_results.scores
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[scores[order] >= instances_score_thresh]
    if order.numel() == 0:
        return []
    masks = instance_results.pred_masks[order].bool()  # (N, H, W), by decreasing score
    areas = masks.flatten(1).sum(dim=1).tolist()
    classes = instance_results.pred_classes[order].tolist()
    kept_scores = scores[order].tolist()
    occupied = torch.zeros_like(panoptic_seg, dtype=torch.bool)
    segments: List[Dict[str, Any]] = []
    # Sequential by nature: whether an instance is kept depends on the instances kept before it.
    for rank, instance_id in enumerate(order.tolist()):
        if areas[rank] == 0:
            continue
        free = masks[rank] & ~occupied
        free_area = int(free.sum())
        if free_area == 0 or (areas[rank] - free_area) / areas[rank] > overlap_threshold:
            continue
        segment_id = len(segments) + 1
        panoptic_seg[free] = segment_id
        occupied |= free
        segments.append({"id": segment_id, "category_id": int(classes[rank]), "isthing": True,
                         "score": float(kept_scores[rank]), "area": free_area, "instance_id": instance_id})
    return segments


def _fill_stuff(semantic_results: torch.Tensor, panoptic_seg: torch.Tensor, stuff_area_thresh: int,
                first_id: int) -> List[Dict[str, Any]]:
    """Give each stuff class its argmax pixels still void in ``panoptic_seg`` when there are at least
    ``stuff_area_thresh`` of them; ids from ``first_id`` on, by increasing class."""
    num_classes = semantic_results.shape[0]
    probs = semantic_results.float().softmax(dim=0)
    confidence, labels = probs.max(dim=0)
    free = panoptic_seg == 0
    free_labels = labels[free]
    areas = torch.bincount(free_labels, minlength=num_classes)
    confidence_sums = torch.bincount(free_labels, weights=confidence[free].double(), minlength=num_classes)
    keep = (areas >= stuff_area_thresh) & (areas > 0)
    keep[THINGS_LABEL] = False
    stuff_classes = torch.nonzero(keep).flatten()
    lookup = torch.zeros(num_classes, dtype=panoptic_seg.dtype, device=panoptic_seg.device)
    lookup[stuff_classes] = torch.arange(first_id, first_id + len(stuff_classes), dtype=panoptic_seg.dtype,
                                         device=panoptic_seg.device)
    stuff_ids = lookup[labels]
    panoptic_seg[free] = stuff_ids[free]
    return [{"id": int(lookup[c]), "category_id": int(c), "isthing": False,
             "score": float(confidence_sums[c] / areas[c]), "area": int(areas[c])}
            for c in stuff_classes.tolist()]


def combine_semantic_and_instance_outputs(
    instance_results: Instances,
    semantic_results: torch.Tensor,
    overlap_threshold: float,
    stuff_area_thresh: int,
    instances_score_thresh: float,
) -> Tuple[torch.Tensor, List[Dict[str, Any]]]:
    """Fuse instance and semantic predictions of one image into a panoptic segmentation.

    1. Instances with ``score >= instances_score_thresh`` are visited by decreasing score (ties
       in input order). An instance whose mask lies more than ``overlap_threshold`` (fraction of
       its mask area) on pixels taken by instances kept before it is dropped, as is one with no
       pixel left; otherwise its not yet taken pixels become a new segment.
    2. Each semantic class but 0 (the "things" class of the separated convention) becomes one
       segment made of its argmax pixels not taken by an instance, if there are at least
       ``stuff_area_thresh`` of them. Other pixels stay void (0).

    Args:
        instance_results: detections at the image size (H, W): ``scores`` float (N,),
            ``pred_classes`` int64 (N,) contiguous thing ids 0..K-1, ``pred_masks`` bool or
            0/1 (N, H, W) (as returned by ``detector_postprocess``).
        semantic_results: float (C, H, W) semantic logits in the separated convention: channel 0
            "any thing", channels 1..C-1 the stuff classes (contiguous stuff ids).
        overlap_threshold: highest fraction of an instance's mask that may be occupied already.
        stuff_area_thresh: fewest pixels of a stuff segment.
        instances_score_thresh: lowest score of a kept instance.

    Returns:
        ``(panoptic_seg, segments_info)``: int32 (H, W) segment ids (0 = void; things get
        1..T by decreasing score, stuff T+1.. by increasing class), and one dict per segment:
        ``id, category_id, isthing, score, area`` (pixels in ``panoptic_seg``), things also
        ``instance_id`` (index into ``instance_results``). ``category_id`` is a contiguous thing
        id for things (inverse of ``thing_dataset_id_to_contiguous_id``) and a contiguous stuff id
        1..C-1 for stuff (inverse of the separated ``stuff_dataset_id_to_contiguous_id``), which is
        what ``COCOPanopticEvaluator`` expects. A thing's ``score`` is its detection score, a stuff
        segment's the mean softmax probability of its class over the segment.

    Raises:
        ValueError: semantic logits not (C, H, W), instances of another size or without masks.
    """
    if semantic_results.dim() != 3:
        raise ValueError(f"semantic_results must be the (C, H, W) semantic logits (outputs['sem_seg']), got shape "
                         f"{tuple(semantic_results.shape)}; pass the logits, not their argmax.")
    height, width = semantic_results.shape[1:]
    if tuple(instance_results.image_size) != (height, width):
        raise ValueError(f"instance_results are of size {tuple(instance_results.image_size)} but semantic_results "
                         f"of {(height, width)}; postprocess both to the same (original) image size.")
    if not instance_results.has("pred_masks"):
        raise ValueError("Panoptic fusion needs instance masks (pred_masks); set MODEL.MASK_ON True.")
    panoptic_seg = torch.zeros((height, width), dtype=torch.int32, device=semantic_results.device)
    segments = _paste_instances(instance_results, panoptic_seg, overlap_threshold, instances_score_thresh)
    segments += _fill_stuff(semantic_results, panoptic_seg, stuff_area_thresh, len(segments) + 1)
    return panoptic_seg, segments
