"""The semantic segmentation branch of Panoptic FPN (Kirillov et al. 2019)."""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError, configurable
from ...layers import ShapeSpec, conv_norm_relu
from ...utils.events import current_event_storage
from ..losses import LOSS_REGISTRY, check_sem_seg_targets
from .build import SEM_SEG_HEADS_REGISTRY

__all__ = ["SemSegFPNHead", "loss_key", "put_pixel_accuracy"]

PIXEL_ACCURACY_EVENT = "sem_seg_head/pixel_accuracy"


def loss_key(loss_type: str) -> str:
    """Name of a loss term in the loss dict: ``"loss_sem_seg"`` for ``"cross_entropy"``
    (detectron2's name), ``"loss_sem_seg_<loss_type>"`` for the others."""
    return "loss_sem_seg" if loss_type == "cross_entropy" else f"loss_sem_seg_{loss_type}"


def put_pixel_accuracy(name: str, logits: torch.Tensor, targets: torch.Tensor, ignore_value: int) -> None:
    """Inside an ``EventStorage`` (a trainer), put ``name``: the training pixel accuracy, labeled
    pixels whose predicted class equals the target / labeled pixels (targets != ``ignore_value``).
    Nothing is put outside a storage or without labeled pixels.

    The predicted class is the argmax over the channels; a single-channel (binary) head
    predicts class 1 where its logit is > 0.

    Args:
        logits: float (N, C, H, W) at the targets' size.
        targets: int64 (N, H, W) class ids or ``ignore_value``.
    """
    storage = current_event_storage()
    if storage is None:
        return
    logits = logits.detach()
    pred = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(dim=1)
    labeled = targets != ignore_value
    num_correct, num_labeled = torch.stack([((pred == targets) & labeled).count_nonzero(), labeled.count_nonzero()]).tolist()
    if num_labeled > 0:
        storage.put_scalar(name, num_correct / num_labeled)


@SEM_SEG_HEADS_REGISTRY.register()
class SemSegFPNHead(nn.Module):
    """Semantic FPN head: each input feature (stride s) goes through ``max(1, log2(s /
    common_stride))`` stages of 3×3 conv-norm-ReLU, each but a stride-``common_stride``
    feature's followed by a 2× bilinear upsampling; the results (all at stride
    ``common_stride``) are summed and a 1×1 conv predicts ``num_classes`` logits, which are
    bilinearly upsampled to the input size.

    The parts are separate so other meta-architectures can reuse them: :meth:`layers`
    (features -> logits at stride ``common_stride``) and :meth:`losses` (those logits and
    targets -> loss dict). Loss terms are ``loss_weight * loss_weights[i] * loss_types[i]``
    under the keys given by :func:`loss_key` (``loss_sem_seg``, ``loss_sem_seg_dice``, ...).

    ``num_classes=1`` is a single-channel binary head (train it with ``"bce_dice"``); its
    inference logits are returned as 2 channels ``[0, x]``, whose softmax is
    ``[1 - sigmoid(x), sigmoid(x)]``, so outputs always have one channel per class.

    Diagnostics: in training, inside an ``EventStorage``, :meth:`forward` puts
    ``pixel_accuracy_event`` (default ``sem_seg_head/pixel_accuracy``, see
    :func:`put_pixel_accuracy`) on the logits its loss sees; not ``sem_seg/...``, the namespace
    of the evaluator's results. :meth:`losses` called alone (e.g. deep supervision) puts nothing.
    """

    # A class attribute, so subclasses that skip this __init__ (projects' FCNHead) log too.
    pixel_accuracy_event: Optional[str] = PIXEL_ACCURACY_EVENT

    @configurable
    def __init__(
        self,
        input_shape: Mapping[str, ShapeSpec],
        *,
        num_classes: int,
        conv_dims: int,
        common_stride: int,
        norm: str = "",
        ignore_value: int = 255,
        loss_weight: float = 1.0,
        loss_types: Sequence[str] = ("cross_entropy",),
        loss_weights: Sequence[float] = (1.0,),
        loss_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
        pixel_accuracy_event: Optional[str] = PIXEL_ACCURACY_EVENT,
    ) -> None:
        """
        Args:
            input_shape: feature name -> ShapeSpec (channels, stride) of each input feature;
                strides must be ``common_stride`` times a power of 2.
            num_classes: C, the number of predicted classes (1: single-channel binary head).
            conv_dims: channels of the intermediate convs.
            common_stride: stride of the summed features and of the predictor's output.
            norm: norm after each conv ("" for none; see :func:`get_norm`).
            ignore_value: target label that gets no loss; the meta-architecture pads targets with it.
            loss_weight: multiplies every loss term.
            loss_types: names in ``LOSS_REGISTRY`` (see :mod:`seg_research.modeling.losses`).
            loss_weights: one weight per entry of ``loss_types``.
            loss_options: loss name -> extra keyword arguments of that loss, e.g.
                ``{"focal": {"gamma": 2.0}}``; names not in ``loss_types`` are unused.
            pixel_accuracy_event: name of the training pixel accuracy put by :meth:`forward`
                (None: not put, e.g. for an auxiliary head).
        """
        super().__init__()
        if not input_shape:
            raise ValueError("SemSegFPNHead needs at least one input feature (MODEL.SEM_SEG_HEAD.IN_FEATURES).")
        self.in_features = sorted(input_shape, key=lambda name: input_shape[name].stride)
        self.num_classes = num_classes
        self.common_stride = common_stride
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight
        self._loss_terms = self._build_loss_terms(num_classes, loss_types, loss_weights, loss_options or {})
        self.pixel_accuracy_event = pixel_accuracy_event

        self.scale_heads = nn.ModuleDict()
        for name in self.in_features:
            stride, channels = input_shape[name].stride, input_shape[name].channels
            if stride < common_stride or stride % common_stride or (stride // common_stride) & (stride // common_stride - 1):
                raise ValueError(
                    f"SemSegFPNHead input feature '{name}' has stride {stride}; it must be MODEL.SEM_SEG_HEAD."
                    f"COMMON_STRIDE ({common_stride}) times a power of 2."
                )
            num_upsamples = int(math.log2(stride // common_stride))
            stages: List[nn.Module] = []
            for k in range(max(1, num_upsamples)):
                stages.append(conv_norm_relu(channels if k == 0 else conv_dims, conv_dims, norm=norm))
                if num_upsamples:
                    stages.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads[name] = nn.Sequential(*stages)
        self.predictor = nn.Conv2d(conv_dims, num_classes, kernel_size=1)
        nn.init.normal_(self.predictor.weight, std=0.01)
        nn.init.zeros_(self.predictor.bias)

    @staticmethod
    def _build_loss_terms(
        num_classes: int,
        loss_types: Sequence[str],
        loss_weights: Sequence[float],
        loss_options: Mapping[str, Mapping[str, Any]],
    ) -> List[Tuple[str, float, Callable[..., torch.Tensor]]]:
        """``(loss dict key, weight, loss function with its options bound)`` per loss type."""
        if len(loss_types) != len(loss_weights) or not loss_types:
            raise ValueError(
                f"MODEL.SEM_SEG_HEAD.LOSS_TYPES {list(loss_types)} and LOSS_WEIGHTS {list(loss_weights)} must be "
                "non-empty and of the same length (one weight per loss)."
            )
        registered = sorted(name for name, _ in LOSS_REGISTRY)
        unknown = [name for name in loss_types if name not in registered]
        if unknown or len(set(loss_types)) != len(loss_types):
            raise ValueError(
                f"MODEL.SEM_SEG_HEAD.LOSS_TYPES {list(loss_types)} must name each loss once, from {registered}."
            )
        if num_classes == 1 and set(loss_types) != {"bce_dice"}:
            raise ValueError(
                f"A single-channel head (NUM_CLASSES 1) trains with LOSS_TYPES ('bce_dice',) only, got "
                f"{list(loss_types)}; or set NUM_CLASSES 2."
            )
        return [
            (loss_key(name), float(weight), functools.partial(LOSS_REGISTRY.get(name), **loss_options.get(name, {})))
            for name, weight in zip(loss_types, loss_weights, strict=True)
        ]

    @classmethod
    def from_config(cls, cfg, input_shape: Mapping[str, ShapeSpec]) -> Dict[str, Any]:
        head = cfg.MODEL.SEM_SEG_HEAD
        if isinstance(head.LOSS_TYPES, str):
            raise ConfigError(
                f"MODEL.SEM_SEG_HEAD.LOSS_TYPES is the string '{head.LOSS_TYPES}', but it must be a tuple of loss "
                f"names: in YAML write `LOSS_TYPES: (\"{head.LOSS_TYPES}\",)` (note the comma)."
            )
        missing = [name for name in head.IN_FEATURES if name not in input_shape]
        if missing:
            raise ConfigError(
                f"MODEL.SEM_SEG_HEAD.IN_FEATURES {list(head.IN_FEATURES)}: {missing} are not backbone outputs "
                f"{list(input_shape)}."
            )
        return {
            "input_shape": {name: input_shape[name] for name in head.IN_FEATURES},
            "num_classes": head.NUM_CLASSES,
            "conv_dims": head.CONVS_DIM,
            "common_stride": head.COMMON_STRIDE,
            "norm": head.NORM,
            "ignore_value": head.IGNORE_VALUE,
            "loss_weight": head.LOSS_WEIGHT,
            "loss_types": tuple(head.LOSS_TYPES),
            "loss_weights": tuple(head.LOSS_WEIGHTS),
            "loss_options": {"focal": {"gamma": head.FOCAL_GAMMA}},
        }

    def forward(
        self, features: Mapping[str, torch.Tensor], targets: Optional[torch.Tensor] = None
    ) -> Tuple[Optional[torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            features: name -> (N, C_name, H / stride, W / stride) for each input feature, H and W
                the padded input size (a multiple of the coarsest stride).
            targets: training only: int64 (N, H, W) class ids, ``ignore_value`` where unlabeled.

        Returns:
            Training: ``(None, loss dict)``. Inference: ``(logits, {})`` with float logits
            (N, max(C, 2), H, W).
        """
        logits = self.layers(features)
        if self.training:
            if targets is None:
                raise ValueError("SemSegFPNHead needs targets in training mode.")
            return None, self.losses(logits, targets, pixel_accuracy_event=self.pixel_accuracy_event)
        logits = F.interpolate(logits, scale_factor=self.common_stride, mode="bilinear", align_corners=False)
        if self.num_classes == 1:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits, {}

    def layers(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Features -> float logits (N, num_classes, H / common_stride, W / common_stride)."""
        summed = None
        for name in self.in_features:
            x = self.scale_heads[name](features[name])
            summed = x if summed is None else summed + x
        return self.predictor(summed)

    def losses(self, predictions: torch.Tensor, targets: torch.Tensor, *,
               pixel_accuracy_event: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """
        Args:
            predictions: float (N, num_classes, h, w) logits from :meth:`layers`; bilinearly
                upsampled to the targets' size before the losses.
            targets: int64 (N, H, W) class ids in 0..num_classes-1 (0..1 for a single-channel
                head), or ``ignore_value``.
            pixel_accuracy_event: if given, the name under which :func:`put_pixel_accuracy`
                puts the pixel accuracy of the upsampled logits (inside an ``EventStorage``).

        Returns:
            :func:`loss_key` of each loss type -> weighted scalar loss.
        """
        check_sem_seg_targets(targets, max(self.num_classes, 2), self.ignore_value)
        logits = F.interpolate(predictions, size=targets.shape[-2:], mode="bilinear", align_corners=False)
        if pixel_accuracy_event:
            put_pixel_accuracy(pixel_accuracy_event, logits, targets, self.ignore_value)
        return {
            key: self.loss_weight * weight * loss(logits, targets, ignore_label=self.ignore_value)
            for key, weight, loss in self._loss_terms
        }
