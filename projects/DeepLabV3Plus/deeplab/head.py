"""The DeepLabV3+ head (Chen et al. 2018): ASPP on a deep feature, fused with a low-level feature."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import configurable
from seg_research.layers import ShapeSpec, conv_norm_relu
from seg_research.modeling.sem_seg_heads import SEM_SEG_HEADS_REGISTRY, SemSegFPNHead

from .aspp import ASPP

__all__ = ["DeepLabV3PlusHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class DeepLabV3PlusHead(nn.Module):
    """DeepLabV3+ decoder on two backbone features, a low-level one (stride s, e.g. ``res2``,
    s = 4) and a deep one (e.g. ``res5`` at output stride 16 or 8):

    1. :class:`ASPP` on the deep feature, bilinearly upsampled to the low-level size;
    2. the low-level feature reduced by a 1×1 conv-norm-ReLU to ``project_channels`` (48);
    3. both concatenated and refined by two 3×3 conv-norm-ReLU (``conv_dims``);
    4. a 1×1 conv predicting class logits at stride s, bilinearly upsampled to the input size.

    The second refining conv, the 1×1 classifier, the upsampling and the losses are a
    :class:`SemSegFPNHead` over the single fused stride-s feature, so losses
    (``loss_types``), the single-channel binary head (``num_classes=1`` with ``"bce_dice"``)
    and the output format are the library's. Follows the SEM_SEG_HEADS interface (see
    ``SEM_SEG_HEADS_REGISTRY``).
    """

    @configurable
    def __init__(
        self,
        input_shape: Mapping[str, ShapeSpec],
        *,
        num_classes: int,
        aspp_channels: int = 256,
        aspp_dilations: Sequence[int] = (6, 12, 18),
        aspp_dropout: float = 0.1,
        project_channels: int = 48,
        conv_dims: int = 256,
        norm: str = "BN",
        ignore_value: int = 255,
        loss_weight: float = 1.0,
        loss_types: Sequence[str] = ("cross_entropy",),
        loss_weights: Sequence[float] = (1.0,),
        loss_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
    ) -> None:
        """
        Args:
            input_shape: feature name -> ShapeSpec of exactly 2 features: the one with the smaller
                stride is the low-level feature, the other goes through ASPP.
            num_classes: C, the number of predicted classes (1: single-channel binary head).
            aspp_channels, aspp_dilations, aspp_dropout: see :class:`ASPP`.
            project_channels: channels of the reduced low-level feature.
            conv_dims: channels of the two refining 3×3 convs.
            norm: norm after each conv ("" for none; see :func:`seg_research.layers.get_norm`).
            ignore_value, loss_weight, loss_types, loss_weights, loss_options: as in
                :class:`SemSegFPNHead`.
        """
        super().__init__()
        names = sorted(input_shape, key=lambda name: input_shape[name].stride)
        if len(names) != 2 or input_shape[names[0]].stride >= input_shape[names[1]].stride:
            raise ValueError(
                "DeepLabV3PlusHead needs 2 input features (MODEL.SEM_SEG_HEAD.IN_FEATURES), a low-level one and a "
                f"deeper one of larger stride, e.g. ['res2', 'res5']; got "
                f"{ {name: input_shape[name].stride for name in names} } (name: stride)."
            )
        self.low_level_feature, self.aspp_feature = names
        low = input_shape[self.low_level_feature]
        self.ignore_value = ignore_value
        self.aspp = ASPP(
            input_shape[self.aspp_feature].channels, aspp_channels, aspp_dilations, norm=norm, dropout=aspp_dropout
        )
        self.project = conv_norm_relu(low.channels, project_channels, 1, norm=norm)
        self.fuse = conv_norm_relu(aspp_channels + project_channels, conv_dims, 3, norm=norm)
        self.output_head = SemSegFPNHead(
            {"fused": ShapeSpec(channels=conv_dims, stride=low.stride)},
            num_classes=num_classes,
            conv_dims=conv_dims,
            common_stride=low.stride,
            norm=norm,
            ignore_value=ignore_value,
            loss_weight=loss_weight,
            loss_types=loss_types,
            loss_weights=loss_weights,
            loss_options=loss_options,
        )

    @classmethod
    def from_config(cls, cfg, input_shape: Mapping[str, ShapeSpec]) -> Dict[str, Any]:
        args = SemSegFPNHead.from_config(cfg, input_shape)  # IN_FEATURES, NUM_CLASSES, CONVS_DIM, NORM, losses
        del args["common_stride"]  # the low-level feature's stride
        head = cfg.MODEL.SEM_SEG_HEAD
        args.update(
            aspp_channels=head.ASPP_CHANNELS,
            aspp_dilations=tuple(head.ASPP_DILATIONS),
            aspp_dropout=head.ASPP_DROPOUT,
            project_channels=head.PROJECT_CHANNELS,
        )
        return args

    def forward(
        self, features: Mapping[str, torch.Tensor], targets: Optional[torch.Tensor] = None
    ) -> Tuple[Optional[torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            features: name -> (N, C_name, ~H / stride, ~W / stride) for the two input features,
                H and W the padded input size.
            targets: training only: int64 (N, H, W) class ids, ``ignore_value`` where unlabeled.

        Returns:
            Training: ``(None, loss dict)``. Inference: ``(float logits (N, max(C, 2), H, W), {})``.
        """
        low = features[self.low_level_feature]
        context = F.interpolate(
            self.aspp(features[self.aspp_feature]), size=low.shape[-2:], mode="bilinear", align_corners=False
        )
        fused = self.fuse(torch.cat([self.project(low), context], dim=1))
        return self.output_head({"fused": fused}, targets)
