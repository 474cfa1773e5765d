"""``build_pixel_decoder`` and ``BasePixelDecoder``, MaskFormer's FPN-like pixel decoder.

A pixel decoder turns backbone features into per-pixel mask features (stride 4) and the multi-scale
features the transformer decoder attends to. Pixel decoders are registered, as upstream, in
``SEM_SEG_HEADS_REGISTRY`` (named by ``MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME``) and expose
``forward_features(features) -> (mask_features, transformer_encoder_features, multi_scale_features)``.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import ConfigError, configurable
from seg_research.layers import Conv2d, ShapeSpec, get_norm
from seg_research.modeling import SEM_SEG_HEADS_REGISTRY

from ..layers import xavier_conv

__all__ = ["build_pixel_decoder", "BasePixelDecoder", "PixelDecoderOutput", "fpn_convs"]

#: (mask_features (N, mask_dim, H/4, W/4), transformer encoder output or None, multi-scale features:
#: up to 3 maps (N, conv_dim, h, w), lowest resolution first)
PixelDecoderOutput = Tuple[torch.Tensor, Optional[torch.Tensor], List[torch.Tensor]]


def build_pixel_decoder(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build ``cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME`` (from SEM_SEG_HEADS_REGISTRY) on the backbone's
    ``input_shape``; it must have a ``forward_features`` method."""
    name = cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME
    if name not in SEM_SEG_HEADS_REGISTRY:
        raise ConfigError(f"MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME '{name}' is not registered in SEM_SEG_HEADS_REGISTRY; "
                          "use 'MSDeformAttnPixelDecoder' or 'BasePixelDecoder', or import the project defining it.")
    model = SEM_SEG_HEADS_REGISTRY.get(name)(cfg, input_shape)
    if not callable(getattr(model, "forward_features", None)):
        raise ConfigError(f"MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME '{name}' has no forward_features method, so it "
                          "cannot be a pixel decoder (it must return the mask features and multi-scale features).")
    return model


def fpn_convs(in_channels: int, conv_dim: int, norm: str, lateral: bool) -> Tuple[Optional[Conv2d], Conv2d]:
    """An FPN level's 1x1 lateral conv (None when ``lateral`` is False) and 3x3 output conv with ReLU, each
    followed by ``norm`` (convs have a bias only without norm). The output conv reads ``conv_dim``
    channels after a lateral conv, ``in_channels`` otherwise."""
    use_bias = norm == ""
    lateral_conv = None
    if lateral:
        lateral_conv = xavier_conv(Conv2d(in_channels, conv_dim, kernel_size=1, bias=use_bias,
                                           norm=get_norm(norm, conv_dim)))
    output_conv = xavier_conv(Conv2d(conv_dim if lateral else in_channels, conv_dim, kernel_size=3, padding=1,
                                      bias=use_bias, norm=get_norm(norm, conv_dim), activation=F.relu))
    return lateral_conv, output_conv


@SEM_SEG_HEADS_REGISTRY.register()
class BasePixelDecoder(nn.Module):
    """MaskFormer's pixel decoder: an FPN over the backbone features (top-down, nearest upsampling),
    whose finest level gives the mask features through a 3x3 conv.

    Modules (upstream's names): ``adapter_<i>`` (1x1 lateral convs) and ``layer_<i>`` (3x3 output convs),
    ``i`` = 1 for the finest input; the coarsest level has no adapter; ``mask_features``.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, conv_dim: int, mask_dim: int, norm: str = "") -> None:
        """
        Args:
            input_shape: the features read (name -> channels and stride).
            conv_dim: channels of the FPN levels.
            mask_dim: channels of the mask features.
            norm: normalization after every FPN conv ("" for none, e.g. "GN").
        """
        super().__init__()
        ordered = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in ordered]  # finest first ("res2" .. "res5")
        lateral_convs, output_convs = [], []
        for idx, (_, shape) in enumerate(ordered):
            coarsest = idx == len(ordered) - 1
            lateral_conv, output_conv = fpn_convs(shape.channels, conv_dim, norm, lateral=not coarsest)
            if lateral_conv is not None:
                self.add_module(f"adapter_{idx + 1}", lateral_conv)
            self.add_module(f"layer_{idx + 1}", output_conv)
            lateral_convs.append(lateral_conv)
            output_convs.append(output_conv)
        # top-down order (coarsest first), as the forward pass visits them
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]
        self.mask_dim = mask_dim
        self.mask_features = xavier_conv(Conv2d(conv_dim, mask_dim, kernel_size=3, padding=1))
        self.maskformer_num_feature_levels = 3  # the transformer decoder reads 3 scales

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in head.IN_FEATURES},
            "conv_dim": head.CONVS_DIM,
            "mask_dim": head.MASK_DIM,
            "norm": head.NORM,
        }

    def forward_features(self, features: Dict[str, torch.Tensor]) -> PixelDecoderOutput:
        """``features``: name -> (N, C, H/s, W/s). Returns mask features (from the finest level), no
        transformer encoder output, and the 3 coarsest FPN levels, coarsest first."""
        multi_scale: List[torch.Tensor] = []
        y = None
        for name, lateral_conv, output_conv in zip(self.in_features[::-1], self.lateral_convs, self.output_convs,
                                                   strict=True):
            x = features[name]
            if lateral_conv is None:
                y = output_conv(x)
            else:
                lateral = lateral_conv(x)
                y = output_conv(lateral + F.interpolate(y, size=lateral.shape[-2:], mode="nearest"))
            if len(multi_scale) < self.maskformer_num_feature_levels:
                multi_scale.append(y)
        return self.mask_features(y), None, multi_scale

    def forward(self, features: Dict[str, torch.Tensor], targets: Optional[Sequence] = None) -> PixelDecoderOutput:
        logging.getLogger(__name__).warning("A pixel decoder is meant to be called through forward_features(); "
                                            "forward() returns the same.")
        return self.forward_features(features)
