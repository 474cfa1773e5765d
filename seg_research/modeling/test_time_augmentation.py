"""Test-time augmentation (``TEST.AUG``): run a model on resized and mirrored copies of each image
and merge the predictions in the original image's coordinates.

- :class:`DatasetMapperTTA` makes the copies: every short side of ``TEST.AUG.MIN_SIZES`` (long side
  capped at ``MAX_SIZE``), each also flipped horizontally with ``FLIP``.
- :class:`GeneralizedRCNNWithTTA` (detectron2's name and constructor): boxes of all copies, mapped
  back, merged by per-class NMS; masks predicted for the merged boxes on every copy and averaged.
- :class:`SemanticSegmentorWithTTA`: per-pixel class probabilities averaged over the copies.

:func:`build_tta_model` picks the wrapper for a model (``DefaultTrainer.test_with_TTA``).
"""
from __future__ import annotations

import contextlib
import copy
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..config import CfgNode, configurable
from ..data import transforms as T
from ..data.detection_utils import read_image
from ..structures import Boxes, Instances
from ..utils.comm import unwrap_model
from .meta_arch import GeneralizedRCNN, PanopticFPN, SemanticSegmentor
from .meta_arch.rcnn import detector_postprocess
from .roi_heads.fast_rcnn import fast_rcnn_inference_single_image

__all__ = ["DatasetMapperTTA", "GeneralizedRCNNWithTTA", "SemanticSegmentorWithTTA", "build_tta_model"]

# Merged detections keep every (box, class) pair scoring above this before NMS (the copies' own
# score threshold has already been applied).
_MERGE_SCORE_THRESH = 1e-8


class DatasetMapperTTA:
    """Turns one model input dict into its augmented copies.

    Call it on a dict with ``image`` (C, H, W) (as the test loader gives it, possibly resized
    already) and the original ``height``/``width``. Returns ``len(min_sizes) * (2 if flip else 1)``
    deep copies whose ``image`` is augmented and whose ``transforms`` (a TransformList) maps
    original-image coordinates onto that copy.
    """

    @configurable
    def __init__(self, min_sizes: Sequence[int], max_size: int, flip: bool) -> None:
        """
        Args:
            min_sizes: short-side lengths (pixels) of the copies.
            max_size: the long side of a copy never exceeds this.
            flip: also add a horizontally mirrored copy of each size.
        """
        if not min_sizes:
            raise ValueError("DatasetMapperTTA needs at least one size in min_sizes (TEST.AUG.MIN_SIZES).")
        self.min_sizes = [int(s) for s in min_sizes]
        self.max_size = int(max_size)
        self.flip = bool(flip)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> Dict[str, Any]:
        return {"min_sizes": cfg.TEST.AUG.MIN_SIZES, "max_size": cfg.TEST.AUG.MAX_SIZE, "flip": cfg.TEST.AUG.FLIP}

    def __call__(self, dataset_dict: Dict[str, Any]) -> List[Dict[str, Any]]:
        image = dataset_dict["image"].permute(1, 2, 0).numpy()
        height, width = image.shape[:2]
        original = (dataset_dict.get("height", height), dataset_dict.get("width", width))
        # the loader's image may already be resized: coordinates start from the original size
        pre = T.NoOpTransform() if original == (height, width) else T.ResizeTransform(*original, height, width)
        candidates: List[List[T.Augmentation]] = []
        for size in self.min_sizes:
            resize = T.ResizeShortestEdge(size, self.max_size)
            candidates.append([resize])
            if self.flip:
                candidates.append([resize, T.RandomFlip(prob=1.0)])
        copies = []
        for augmentations in candidates:
            aug_input = T.AugInput(np.copy(image))
            tfms = T.apply_augmentations(augmentations, aug_input)
            copied = copy.deepcopy({k: v for k, v in dataset_dict.items() if k != "image"})
            copied["image"] = torch.from_numpy(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
            copied["transforms"] = T.TransformList([pre]) + tfms
            copies.append(copied)
        return copies


def _is_flipped(tfm: T.TransformList) -> bool:
    return any(isinstance(t, T.HFlipTransform) for t in tfm.transforms)


def _with_image(dataset_dict: Dict[str, Any], image_format: str) -> Dict[str, Any]:
    """``dataset_dict`` with ``image`` read from ``file_name`` when absent, and ``height``/``width`` set."""
    result = copy.copy(dataset_dict)
    if "image" not in result:
        image = read_image(result["file_name"], format=image_format)
        result["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    result.setdefault("height", result["image"].shape[1])
    result.setdefault("width", result["image"].shape[2])
    return result


class GeneralizedRCNNWithTTA(nn.Module):
    """A :class:`GeneralizedRCNN` run with test-time augmentation; called like the model in eval
    mode: ``list[dict]`` in, ``[{"instances": Instances}]`` out at each input's ``height``/``width``.

    Per image: boxes are detected on every copy (mask head off), mapped back to the original image
    and merged by per-class NMS (``MODEL.ROI_HEADS.NMS_THRESH_TEST``, at most
    ``TEST.DETECTIONS_PER_IMAGE``). With masks, the mask head then runs on the merged boxes in every
    copy; the box-relative mask probabilities are un-flipped, averaged and pasted.
    """

    def __init__(self, cfg: CfgNode, model: nn.Module, tta_mapper: Optional[Callable] = None,
                 batch_size: int = 3) -> None:
        """
        Args:
            cfg: the model's config (reads TEST.AUG, MODEL.ROI_HEADS, TEST.DETECTIONS_PER_IMAGE).
            model: a GeneralizedRCNN (or a DistributedDataParallel of one).
            tta_mapper: dict -> list of augmented dicts with ``transforms``; default
                ``DatasetMapperTTA(cfg)``.
            batch_size: copies run through the model at once.
        """
        super().__init__()
        model = unwrap_model(model)
        if not isinstance(model, GeneralizedRCNN) or isinstance(model, PanopticFPN):
            raise TypeError(f"GeneralizedRCNNWithTTA wraps a GeneralizedRCNN (Faster/Mask R-CNN), got "
                            f"{type(model).__name__}. Use build_tta_model(cfg, model) to pick the wrapper for it.")
        self.cfg = cfg.clone()
        self.model = model
        self.tta_mapper = tta_mapper if tta_mapper is not None else DatasetMapperTTA(cfg)
        self.batch_size = batch_size

    @contextlib.contextmanager
    def _masks_off(self) -> Iterator[None]:
        roi_heads = self.model.roi_heads
        mask_on = roi_heads.mask_on
        roi_heads.mask_on = False
        try:
            yield
        finally:
            roi_heads.mask_on = mask_on

    def _batch_inference(self, inputs: List[Dict[str, Any]],
                         detected: Optional[List[Instances]] = None) -> List[Instances]:
        """Raw detections (on each copy's own pixels) for ``inputs``, ``batch_size`` at a time."""
        outputs: List[Instances] = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            outputs.extend(self.model.inference(inputs[chunk], None if detected is None else detected[chunk],
                                                do_postprocess=False))
        return outputs

    def forward(self, batched_inputs: List[Dict[str, Any]]) -> List[Dict[str, Instances]]:
        return [self._inference_one_image(_with_image(x, self.model.input_format or "BGR")) for x in batched_inputs]

    def _inference_one_image(self, inputs: Dict[str, Any]) -> Dict[str, Instances]:
        original_size = (inputs["height"], inputs["width"])
        copies = self.tta_mapper(inputs)
        tfms = [c.pop("transforms") for c in copies]
        with self._masks_off():
            detections = self._batch_inference(copies)
        merged = self._merge_detections(detections, tfms, original_size)
        if not self.model.roi_heads.mask_on:
            return {"instances": merged}
        given = [self._boxes_on_copy(merged, tfm, c["image"].shape[1:3]) for c, tfm in zip(copies, tfms, strict=True)]
        with_masks = self._batch_inference(copies, given)
        masks = [d.pred_masks.flip(dims=[3]) if _is_flipped(tfm) else d.pred_masks
                 for d, tfm in zip(with_masks, tfms, strict=True)]
        merged.pred_masks = torch.stack(masks).mean(dim=0)
        return {"instances": detector_postprocess(merged, *original_size)}

    def _merge_detections(self, detections: List[Instances], tfms: List[T.TransformList],
                          original_size: Tuple[int, int]) -> Instances:
        """All copies' detections in original-image pixels, merged by per-class NMS."""
        boxes = [torch.from_numpy(tfm.inverse().apply_box(d.pred_boxes.tensor.cpu().numpy())).to(d.pred_boxes.device)
                 for d, tfm in zip(detections, tfms, strict=True)]
        all_boxes = torch.cat(boxes).to(torch.float32)
        scores = torch.cat([d.scores for d in detections])
        classes = torch.cat([d.pred_classes for d in detections])
        num_classes = self.cfg.MODEL.ROI_HEADS.NUM_CLASSES
        # (R, K + 1) with each detection's score in its class column (background column last, 0)
        score_matrix = torch.zeros(len(all_boxes), num_classes + 1, device=all_boxes.device)
        score_matrix[torch.arange(len(all_boxes), device=all_boxes.device), classes] = scores
        merged, _ = fast_rcnn_inference_single_image(
            all_boxes, score_matrix, original_size, _MERGE_SCORE_THRESH, self.cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            self.cfg.TEST.DETECTIONS_PER_IMAGE,
        )
        return merged

    @staticmethod
    def _boxes_on_copy(merged: Instances, tfm: T.TransformList, image_size: Tuple[int, int]) -> Instances:
        """The merged detections with their boxes mapped onto one augmented copy."""
        boxes = torch.from_numpy(tfm.apply_box(merged.pred_boxes.tensor.cpu().numpy())).to(torch.float32)
        return Instances(tuple(image_size), pred_boxes=Boxes(boxes.to(merged.pred_boxes.device)),
                         pred_classes=merged.pred_classes, scores=merged.scores)


class SemanticSegmentorWithTTA(nn.Module):
    """A semantic segmentation model (``{"sem_seg": (C, H, W)}`` outputs) run with test-time
    augmentation: the softmax probabilities of every copy, un-flipped, are averaged.

    Output per image: ``{"sem_seg": float (C, height, width)}`` averaged class probabilities
    (argmax gives the labels, as with the plain model's logits).
    """

    #: The model's ``sem_seg`` are logits, turned into probabilities before averaging; a model whose
    #: outputs are already scores (Mask2Former's) averages them as they are.
    softmax_outputs: bool = True

    def __init__(self, cfg: CfgNode, model: nn.Module, tta_mapper: Optional[Callable] = None,
                 batch_size: int = 3) -> None:
        """
        Args:
            cfg: the model's config (reads TEST.AUG and INPUT.FORMAT).
            model: a model returning ``sem_seg`` at each input's ``height``/``width``.
            tta_mapper, batch_size: as for :class:`GeneralizedRCNNWithTTA`.
        """
        super().__init__()
        self.cfg = cfg.clone()
        self.model = unwrap_model(model)
        self.tta_mapper = tta_mapper if tta_mapper is not None else DatasetMapperTTA(cfg)
        self.batch_size = batch_size

    def forward(self, batched_inputs: List[Dict[str, Any]]) -> List[Dict[str, torch.Tensor]]:
        return [self._inference_one_image(_with_image(x, self.cfg.INPUT.FORMAT)) for x in batched_inputs]

    def _inference_one_image(self, inputs: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        copies = self.tta_mapper(inputs)
        tfms = [c.pop("transforms") for c in copies]
        total: Optional[torch.Tensor] = None
        for start in range(0, len(copies), self.batch_size):
            outputs = self.model(copies[start:start + self.batch_size])
            for output, tfm in zip(outputs, tfms[start:start + self.batch_size], strict=True):
                # (C, height, width): outputs are at the original size
                probs = output["sem_seg"].softmax(dim=0) if self.softmax_outputs else output["sem_seg"]
                probs = probs.flip(dims=[2]) if _is_flipped(tfm) else probs
                total = probs if total is None else total + probs
        return {"sem_seg": total / len(copies)}


#: Model class -> its TTA wrapper, looked up along the model's class hierarchy (PanopticFPN has none).
TTA_WRAPPERS: Dict[type, Optional[type]] = {
    PanopticFPN: None,
    GeneralizedRCNN: GeneralizedRCNNWithTTA,
    SemanticSegmentor: SemanticSegmentorWithTTA,
}


def build_tta_model(cfg: CfgNode, model: nn.Module) -> nn.Module:
    """``model`` wrapped in the test-time augmentation of its kind (see :data:`TTA_WRAPPERS`)."""
    model = unwrap_model(model)
    for cls in type(model).__mro__:
        if cls in TTA_WRAPPERS:
            wrapper = TTA_WRAPPERS[cls]
            break
    else:
        wrapper = None
    if wrapper is None:
        supported = sorted(c.__name__ for c, w in TTA_WRAPPERS.items() if w is not None)
        raise TypeError(f"Test-time augmentation (TEST.AUG) is not available for {type(model).__name__}; it is for "
                        f"{supported}. Set TEST.AUG.ENABLED False.")
    return wrapper(cfg, model)
