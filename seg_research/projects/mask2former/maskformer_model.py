"""``MaskFormer``: the mask-classification meta-architecture of Mask2Former (and MaskFormer).

A backbone, a :class:`MaskFormerHead` predicting per query a class (K + 1 logits, the last "no
object") and a mask, and a set criterion for training. One model gives all three outputs in inference
(``MODEL.MASK_FORMER.TEST.SEMANTIC_ON / INSTANCE_ON / PANOPTIC_ON``), computed from the queries as the
paper does (Sec. 3.3 of MaskFormer, Cheng et al. 2021):

- ``sem_seg`` (K, H, W): ``sum_q softmax(class_q)[:K] * sigmoid(mask_q)``, per-class scores (not logits);
- ``panoptic_seg``: queries whose best class is not "no object" and scores above
  ``OBJECT_MASK_THRESHOLD``; each pixel goes to the query maximising score x mask probability; a
  query keeps its pixels (those with mask probability >= 0.5) only if they are at least
  ``OVERLAP_THRESHOLD`` of its whole mask; stuff queries of one class merge into one segment;
- ``instances``: the ``TEST.DETECTIONS_PER_IMAGE`` best (query, class) pairs by class probability,
  mask = mask logit > 0, score = class probability x mean mask probability inside the mask (thing
  classes only when the panoptic output is on).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import ConfigError, configurable
from seg_research.data import MetadataCatalog
from seg_research.modeling import META_ARCH_REGISTRY, Backbone, build_backbone, build_sem_seg_head
from seg_research.modeling.image_input import ImageInputMixin, requested_size
from seg_research.modeling.postprocessing import sem_seg_postprocess
from seg_research.structures import BitMasks, Instances

from .modeling.criterion import SetCriterion
from .modeling.matcher import HungarianMatcher

__all__ = ["MaskFormer"]


@META_ARCH_REGISTRY.register()
class MaskFormer(ImageInputMixin, nn.Module):
    """Mask classification for semantic, instance and panoptic segmentation (``MODEL.META_ARCHITECTURE
    "MaskFormer"``; see the module docstring for the outputs).

    Inputs (model I/O contract): a list of dicts with ``image`` (C, H, W) 0-255 in ``INPUT.FORMAT``
    order, optionally ``height``/``width`` (the size outputs are returned at); in training
    ``instances`` with ``gt_classes`` (T,) int64 and ``gt_masks`` (T, H, W) (a tensor or BitMasks) at
    the image's size. Training returns the weighted losses; inference a list of dicts with ``sem_seg``
    float (K, height, width), ``panoptic_seg`` (int32 (height, width) segment ids, 0 unassigned;
    segments_info: ``id``, ``isthing``, ``category_id`` contiguous) and ``instances`` (``pred_masks``
    bool (D, height, width), ``pred_boxes`` enclosing the masks, ``scores``, ``pred_classes``), as enabled.
    """

    @configurable
    def __init__(self, *, backbone: Backbone, sem_seg_head: nn.Module, criterion: Optional[nn.Module],
                 num_queries: int, object_mask_threshold: float, overlap_threshold: float, metadata: Any,
                 size_divisibility: int, sem_seg_postprocess_before_inference: bool, pixel_mean: Sequence[float],
                 pixel_std: Sequence[float], semantic_on: bool = True, panoptic_on: bool = False,
                 instance_on: bool = False, test_topk_per_image: int = 100) -> None:
        """
        Args:
            backbone: feature extractor (detectron2's Backbone interface).
            sem_seg_head: a :class:`MaskFormerHead` (``num_classes`` attribute, returns the predictor's dict).
            criterion: the training losses (a :class:`SetCriterion` with ``weight_dict``); None for a model
                used only in inference.
            num_queries: queries of the transformer decoder.
            object_mask_threshold: panoptic: a query is kept when its class score is above this.
            overlap_threshold: panoptic: the fraction of a query's mask that must survive the per-pixel argmax.
            metadata: the dataset's metadata; panoptic and instance outputs read
                ``thing_dataset_id_to_contiguous_id`` (its values are the thing classes).
            size_divisibility: the batch is padded to a multiple of it; < 0 takes the backbone's.
            sem_seg_postprocess_before_inference: resize the mask logits to the output size before the
                semantic inference (required when the panoptic or instance output is on).
            pixel_mean, pixel_std: per-channel normalization, 0-255 scale, in the images' channel order.
            semantic_on, panoptic_on, instance_on: which outputs inference returns.
            test_topk_per_image: instances kept per image.
        """
        super().__init__()
        if (panoptic_on or instance_on or not semantic_on) and not sem_seg_postprocess_before_inference:
            raise ValueError("MaskFormer: the panoptic and instance outputs (and a model without the semantic one) "
                             "need the mask logits resized first: set "
                             "MODEL.MASK_FORMER.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE True.")
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.criterion = criterion
        self.num_queries = num_queries
        self.overlap_threshold = overlap_threshold
        self.object_mask_threshold = object_mask_threshold
        self.metadata = metadata
        self.size_divisibility = backbone.size_divisibility if size_divisibility < 0 else size_divisibility
        self.sem_seg_postprocess_before_inference = sem_seg_postprocess_before_inference
        self.register_pixel_normalization(pixel_mean, pixel_std)
        self.semantic_on = semantic_on
        self.instance_on = instance_on
        self.panoptic_on = panoptic_on
        self.test_topk_per_image = test_topk_per_image

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Any]:
        backbone = build_backbone(cfg)
        sem_seg_head = build_sem_seg_head(cfg, backbone.output_shape())
        mf = cfg.MODEL.MASK_FORMER
        test = mf.TEST
        names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
        return {
            "backbone": backbone,
            "sem_seg_head": sem_seg_head,
            "criterion": build_criterion(cfg, sem_seg_head.num_classes),
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "object_mask_threshold": test.OBJECT_MASK_THRESHOLD,
            "overlap_threshold": test.OVERLAP_THRESHOLD,
            "metadata": MetadataCatalog.get(names[0]) if names else None,
            "size_divisibility": mf.SIZE_DIVISIBILITY,
            "sem_seg_postprocess_before_inference": (
                test.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE or test.PANOPTIC_ON or test.INSTANCE_ON),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "semantic_on": test.SEMANTIC_ON,
            "instance_on": test.INSTANCE_ON,
            "panoptic_on": test.PANOPTIC_ON,
            "test_topk_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
        }

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return {"size_divisibility": self.size_divisibility}

    def forward(self, batched_inputs: List[Dict[str, Any]]):
        """See the class docstring for the inputs and outputs."""
        if self.training:
            self._check_training_inputs(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        outputs = self.sem_seg_head(self.backbone(images.tensor))
        if self.training:
            return self.losses(outputs, batched_inputs, images.tensor.shape[-2:])

        # mask logits at the padded input size
        mask_preds = F.interpolate(outputs["pred_masks"], size=images.tensor.shape[-2:], mode="bilinear",
                                   align_corners=False)
        results = []
        for mask_cls, mask_pred, inputs, image_size in zip(outputs["pred_logits"], mask_preds, batched_inputs,
                                                           images.image_sizes, strict=True):
            height, width = requested_size(inputs, image_size)
            if self.sem_seg_postprocess_before_inference:
                mask_pred = sem_seg_postprocess(mask_pred, image_size, height, width)
                mask_cls = mask_cls.to(mask_pred)
            result: Dict[str, Any] = {}
            if self.semantic_on:
                sem_seg = self.semantic_inference(mask_cls, mask_pred)
                if not self.sem_seg_postprocess_before_inference:
                    sem_seg = sem_seg_postprocess(sem_seg, image_size, height, width)
                result["sem_seg"] = sem_seg
            if self.panoptic_on:
                result["panoptic_seg"] = self.panoptic_inference(mask_cls, mask_pred)
            if self.instance_on:
                result["instances"] = self.instance_inference(mask_cls, mask_pred)
            results.append(result)
        return results

    def losses(self, outputs: Dict[str, Any], batched_inputs: List[Dict[str, Any]],
               padded_size: Tuple[int, int]) -> Dict[str, torch.Tensor]:
        """The criterion's losses, weighted by its ``weight_dict`` (losses it does not weigh are dropped)."""
        targets = self.prepare_targets([x["instances"].to(self.device) for x in batched_inputs], padded_size)
        losses = self.criterion(outputs, targets)
        weights = self.criterion.weight_dict
        return {name: value * weights[name] for name, value in losses.items() if name in weights}

    def _check_training_inputs(self, batched_inputs: List[Dict[str, Any]]) -> None:
        if self.criterion is None:
            raise ValueError("MaskFormer was built without a criterion, so it cannot train.")
        missing = [i for i, x in enumerate(batched_inputs) if "instances" not in x]
        if missing:
            raise ValueError(f"MaskFormer training needs 'instances' (gt_classes, gt_masks) in every input; inputs "
                             f"{missing} have none. Use one of Mask2Former's dataset mappers "
                             "(INPUT.DATASET_MAPPER_NAME).")

    @staticmethod
    def prepare_targets(instances: Sequence[Instances], padded_size: Tuple[int, int]) -> List[Dict[str, torch.Tensor]]:
        """Per image ``{"labels": (T,) int64, "masks": (T, H_pad, W_pad)}``, masks zero-padded to the batch size."""
        targets = []
        for per_image in instances:
            masks = per_image.gt_masks
            masks = masks.tensor if isinstance(masks, BitMasks) else masks
            padded = masks.new_zeros((masks.shape[0], *padded_size))
            padded[:, : masks.shape[1], : masks.shape[2]] = masks
            targets.append({"labels": per_image.gt_classes, "masks": padded})
        return targets

    def semantic_inference(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor) -> torch.Tensor:
        """(Q, K + 1) class logits, (Q, H, W) mask logits -> (K, H, W) per-class scores."""
        return torch.einsum("qc,qhw->chw", F.softmax(mask_cls, dim=-1)[..., :-1], mask_pred.sigmoid())

    def _thing_classes(self) -> set:
        mapping = getattr(self.metadata, "thing_dataset_id_to_contiguous_id", None)
        if mapping is None:
            raise ConfigError("MaskFormer's panoptic and instance outputs need the dataset metadata's "
                              "'thing_dataset_id_to_contiguous_id' (the thing classes): register the training "
                              "dataset (DATASETS.TRAIN[0]) with it, or set the model's metadata.")
        return set(mapping.values())

    def panoptic_inference(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor) -> Tuple[torch.Tensor, List[dict]]:
        """(Q, K + 1) class logits, (Q, H, W) mask logits -> (int32 (H, W) segment ids from 1, 0 for
        unassigned pixels; segments_info)."""
        scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
        mask_prob = mask_pred.sigmoid()
        keep = labels.ne(self.sem_seg_head.num_classes) & (scores > self.object_mask_threshold)
        cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], mask_prob[keep]
        height, width = mask_pred.shape[-2:]
        panoptic_seg = torch.zeros((height, width), dtype=torch.int32, device=mask_pred.device)
        segments_info: List[dict] = []
        if cur_masks.shape[0] == 0:
            return panoptic_seg, segments_info

        things = self._thing_classes()
        owner = (cur_scores.view(-1, 1, 1) * cur_masks).argmax(0)  # query owning each pixel
        stuff_segment: Dict[int, int] = {}
        segment_id = 0
        for k, pred_class in enumerate(cur_classes.tolist()):
            isthing = pred_class in things
            owned = owner == k
            confident = cur_masks[k] >= 0.5
            mask = owned & confident
            owned_area, mask_area, original_area = owned.sum().item(), mask.sum().item(), confident.sum().item()
            if owned_area == 0 or original_area == 0 or mask_area == 0:
                continue
            if owned_area / original_area < self.overlap_threshold:
                continue
            if not isthing and pred_class in stuff_segment:  # one segment per stuff class
                panoptic_seg[mask] = stuff_segment[pred_class]
                continue
            segment_id += 1
            if not isthing:
                stuff_segment[pred_class] = segment_id
            panoptic_seg[mask] = segment_id
            segments_info.append({"id": segment_id, "isthing": bool(isthing), "category_id": int(pred_class)})
        return panoptic_seg, segments_info

    def instance_inference(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor) -> Instances:
        """(Q, K + 1) class logits, (Q, H, W) mask logits at the output size -> Instances sorted by score."""
        num_classes = self.sem_seg_head.num_classes
        scores = F.softmax(mask_cls, dim=-1)[:, :-1]  # (Q, K)
        # the best (query, class) pairs; flat index = query * K + class
        topk_scores, topk_indices = scores.flatten().topk(min(self.test_topk_per_image, scores.numel()), sorted=True)
        labels = topk_indices % num_classes
        masks = mask_pred[topk_indices // num_classes]
        if self.panoptic_on:  # the panoptic output holds the stuff; instances are things only
            things = torch.tensor(sorted(self._thing_classes()), dtype=labels.dtype, device=labels.device)
            keep = torch.isin(labels, things)
            topk_scores, labels, masks = topk_scores[keep], labels[keep], masks[keep]

        result = Instances(tuple(mask_pred.shape[-2:]))
        binary = masks > 0
        binary_float = binary.flatten(1).to(masks.dtype)
        mask_scores = (masks.sigmoid().flatten(1) * binary_float).sum(1) / (binary_float.sum(1) + 1e-6)
        result.pred_masks = binary
        result.pred_boxes = BitMasks(binary).get_bounding_boxes()
        result.scores = topk_scores * mask_scores
        result.pred_classes = labels
        return result


def build_criterion(cfg, num_classes: int) -> SetCriterion:
    """The set criterion of ``MODEL.MASK_FORMER``: Hungarian matching and class / mask / dice losses with
    their weights, repeated (suffix ``_i``) for the ``DEC_LAYERS - 1`` auxiliary outputs with deep supervision."""
    mf = cfg.MODEL.MASK_FORMER
    matcher = HungarianMatcher(cost_class=mf.CLASS_WEIGHT, cost_mask=mf.MASK_WEIGHT, cost_dice=mf.DICE_WEIGHT,
                               num_points=mf.TRAIN_NUM_POINTS)
    final = {"loss_ce": mf.CLASS_WEIGHT, "loss_mask": mf.MASK_WEIGHT, "loss_dice": mf.DICE_WEIGHT}
    weight_dict = dict(final)
    if mf.DEEP_SUPERVISION:
        for i in range(mf.DEC_LAYERS - 1):
            weight_dict.update({f"{name}_{i}": weight for name, weight in final.items()})
    return SetCriterion(num_classes, matcher=matcher, weight_dict=weight_dict, eos_coef=mf.NO_OBJECT_WEIGHT,
                        losses=["labels", "masks"], num_points=mf.TRAIN_NUM_POINTS,
                        oversample_ratio=mf.OVERSAMPLE_RATIO, importance_sample_ratio=mf.IMPORTANCE_SAMPLE_RATIO)
