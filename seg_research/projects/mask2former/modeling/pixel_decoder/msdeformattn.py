"""``MSDeformAttnPixelDecoder``: Mask2Former's pixel decoder, a deformable-attention transformer encoder
(Deformable DETR's) over the stride 8, 16 and 32 features, then an FPN step down to stride 4.

Module and parameter names are upstream's, so that official checkpoints load as they are.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import configurable
from seg_research.layers import Conv2d, ShapeSpec
from seg_research.modeling import SEM_SEG_HEADS_REGISTRY

from ..layers import activation_fn, xavier_conv
from ..transformer_decoder.position_encoding import PositionEmbeddingSine
from .fpn import BasePixelDecoder, PixelDecoderOutput, fpn_convs
from .ops import MSDeformAttn

__all__ = ["MSDeformAttnPixelDecoder", "MSDeformAttnTransformerEncoderOnly", "MSDeformAttnTransformerEncoderLayer",
           "MSDeformAttnTransformerEncoder"]

class MSDeformAttnTransformerEncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then a feed-forward layer; each with a residual
    connection, dropout and a LayerNorm after it."""

    def __init__(self, d_model: int = 256, d_ffn: int = 1024, dropout: float = 0.1, activation: str = "relu",
                 n_levels: int = 4, n_heads: int = 8, n_points: int = 4) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.activation = activation_fn(activation)
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor,
                spatial_shapes: torch.Tensor, level_start_index: torch.Tensor,
                padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """src, pos: (N, S, C); reference_points (N, S, L, 2). Returns (N, S, C)."""
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes, level_start_index, padding_mask)
        src = self.norm1(src + self.dropout1(attended))
        ffn = self.linear2(self.dropout2(self.activation(self.linear1(src))))
        return self.norm2(src + self.dropout3(ffn))


class MSDeformAttnTransformerEncoder(nn.Module):
    """``num_layers`` copies of an encoder layer (``layers.<i>``), each query's reference point being its
    own pixel centre."""

    def __init__(self, encoder_layer: MSDeformAttnTransformerEncoderLayer, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers

    @staticmethod
    def get_reference_points(spatial_shapes: Sequence[Tuple[int, int]], valid_ratios: torch.Tensor,
                             device: torch.device) -> torch.Tensor:
        """(N, S, L, 2): each position's pixel centre (x, y), normalised to [0, 1] by the valid (unpadded)
        size of its own level, then expressed in every level's padded coordinates. ``valid_ratios``:
        (N, L, 2) valid fraction (w, h) of each level."""
        points = []
        for level, (h, w) in enumerate(spatial_shapes):
            ref_y, ref_x = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device) + 0.5,
                                          torch.arange(w, dtype=torch.float32, device=device) + 0.5, indexing="ij")
            ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, level, 1] * h)
            ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, level, 0] * w)
            points.append(torch.stack((ref_x, ref_y), -1))
        return torch.cat(points, 1)[:, :, None] * valid_ratios[:, None]

    def forward(self, src: torch.Tensor, spatial_shapes: torch.Tensor, level_start_index: torch.Tensor,
                valid_ratios: torch.Tensor, pos: torch.Tensor, padding_mask: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        shapes = [tuple(int(v) for v in hw) for hw in spatial_shapes.tolist()]
        reference_points = self.get_reference_points(shapes, valid_ratios, device=src.device)
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, level_start_index, padding_mask)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """The deformable encoder with its level embeddings (``level_embed``, (L, d_model)), added to each
    level's position encoding."""

    def __init__(self, d_model: int = 256, nhead: int = 8, num_encoder_layers: int = 6, dim_feedforward: int = 1024,
                 dropout: float = 0.1, activation: str = "relu", num_feature_levels: int = 4,
                 enc_n_points: int = 4) -> None:
        super().__init__()
        self.d_model = d_model
        self.nhead = nhead
        layer = MSDeformAttnTransformerEncoderLayer(d_model, dim_feedforward, dropout, activation, num_feature_levels,
                                                    nhead, enc_n_points)
        self.encoder = MSDeformAttnTransformerEncoder(layer, num_encoder_layers)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module._reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, srcs: Sequence[torch.Tensor], pos_embeds: Sequence[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            srcs, pos_embeds: per level, (N, d_model, H_l, W_l) features and position encodings.

        Returns:
            (N, S, d_model) encoded features of all levels, flattened and concatenated; (L, 2) int64 (H_l, W_l);
            (L,) int64 start of each level in S.
        """
        flat, flat_pos, shapes = [], [], []
        for level, (src, pos) in enumerate(zip(srcs, pos_embeds, strict=True)):
            shapes.append(src.shape[-2:])
            flat.append(src.flatten(2).transpose(1, 2))
            flat_pos.append(pos.flatten(2).transpose(1, 2) + self.level_embed[level].view(1, 1, -1))
        src_flatten = torch.cat(flat, 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=src_flatten.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1]))
        # no padding mask (as upstream): every position is valid
        valid_ratios = src_flatten.new_ones(src_flatten.shape[0], len(srcs), 2)
        memory = self.encoder(src_flatten, spatial_shapes, level_start_index, valid_ratios, torch.cat(flat_pos, 1))
        return memory, spatial_shapes, level_start_index


@SEM_SEG_HEADS_REGISTRY.register()
class MSDeformAttnPixelDecoder(nn.Module):
    """Mask2Former's pixel decoder.

    The features named in ``transformer_in_features`` (strides 8, 16, 32) are projected to ``conv_dim``
    (``input_proj.<i>``: 1x1 conv + GroupNorm, coarsest first) and encoded together by
    ``transformer`` (:class:`MSDeformAttnTransformerEncoderOnly`); finer backbone features down to
    ``common_stride`` are merged FPN-style (``adapter_<i>``, ``layer_<i>``, bilinear upsampling), and a
    1x1 conv (``mask_features``) gives the mask features. Runs in float32 even under autocast, as
    upstream (deformable attention's bilinear sampling in half precision is not trusted).
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, transformer_dropout: float, transformer_nheads: int,
                 transformer_dim_feedforward: int, transformer_enc_layers: int, conv_dim: int, mask_dim: int,
                 norm: str = "", transformer_in_features: Sequence[str], common_stride: int,
                 transformer_n_points: int = 4) -> None:
        """
        Args:
            input_shape: the backbone features read (name -> channels and stride).
            transformer_dropout: dropout in the encoder layers.
            transformer_nheads: attention heads of the deformable attention.
            transformer_dim_feedforward: hidden width of the encoder's feed-forward layers.
            transformer_enc_layers: encoder layers.
            conv_dim: width of the encoder and of the FPN levels.
            mask_dim: channels of the mask features.
            norm: normalization of the FPN convs ("" for none, e.g. "GN").
            transformer_in_features: names of the features the encoder attends over.
            common_stride: stride of the mask features (4): FPN levels are added down to it.
            transformer_n_points: sampled points per head and level.
        """
        super().__init__()
        ordered = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in ordered]  # finest first
        self.feature_strides = [shape.stride for _, shape in ordered]
        self.feature_channels = [shape.channels for _, shape in ordered]
        missing = [name for name in transformer_in_features if name not in input_shape]
        if missing:
            raise ValueError(f"MSDeformAttnPixelDecoder: transformer_in_features {missing} are not among the input "
                             f"features {self.in_features} (MODEL.SEM_SEG_HEAD.IN_FEATURES).")
        encoder_inputs = [(name, shape) for name, shape in ordered if name in transformer_in_features]
        self.transformer_in_features = [name for name, _ in encoder_inputs]  # finest first
        self.transformer_feature_strides = [shape.stride for _, shape in encoder_inputs]
        self.transformer_num_feature_levels = len(encoder_inputs)

        self.input_proj = nn.ModuleList()
        for _, shape in encoder_inputs[::-1]:  # coarsest first
            conv = nn.Conv2d(shape.channels, conv_dim, kernel_size=1)
            nn.init.xavier_uniform_(conv.weight, gain=1)
            nn.init.zeros_(conv.bias)
            self.input_proj.append(nn.Sequential(conv, nn.GroupNorm(32, conv_dim)))

        self.transformer = MSDeformAttnTransformerEncoderOnly(
            d_model=conv_dim, dropout=transformer_dropout, nhead=transformer_nheads,
            dim_feedforward=transformer_dim_feedforward, num_encoder_layers=transformer_enc_layers,
            num_feature_levels=self.transformer_num_feature_levels, enc_n_points=transformer_n_points)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)

        self.mask_dim = mask_dim
        self.mask_features = xavier_conv(Conv2d(conv_dim, mask_dim, kernel_size=1))
        self.maskformer_num_feature_levels = 3  # the transformer decoder reads 3 scales
        self.common_stride = common_stride

        # FPN levels for the strides between the encoder's finest and common_stride (res2 for R50)
        finest = min(self.transformer_feature_strides)
        self.num_fpn_levels = max(0, (finest // common_stride).bit_length() - 1)  # log2(finest / common_stride)
        lateral_convs, output_convs = [], []
        for idx, channels in enumerate(self.feature_channels[: self.num_fpn_levels]):
            lateral_conv, output_conv = fpn_convs(channels, conv_dim, norm, lateral=True)
            self.add_module(f"adapter_{idx + 1}", lateral_conv)
            self.add_module(f"layer_{idx + 1}", output_conv)
            lateral_convs.append(lateral_conv)
            output_convs.append(output_conv)
        # top-down order (coarsest first), as the forward pass visits them
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            **BasePixelDecoder.from_config(cfg, input_shape),  # input_shape, conv_dim, mask_dim, norm
            "transformer_dropout": cfg.MODEL.MASK_FORMER.DROPOUT,
            "transformer_nheads": cfg.MODEL.MASK_FORMER.NHEADS,
            # upstream fixes the deformable encoder's feed-forward width at 1024 (DIM_FEEDFORWARD is the decoder's)
            "transformer_dim_feedforward": 1024,
            "transformer_enc_layers": head.TRANSFORMER_ENC_LAYERS,
            "transformer_in_features": head.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES,
            "common_stride": head.COMMON_STRIDE,
            "transformer_n_points": head.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS,
        }

    def forward_features(self, features: Dict[str, torch.Tensor]) -> PixelDecoderOutput:
        """``features``: name -> (N, C, H/s, W/s). Returns the mask features (N, mask_dim, H/4, W/4), the
        encoder's coarsest output level and the 3 coarsest levels (coarsest first), all float32."""
        device_type = next(iter(features.values())).device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._forward_features(features)

    def _forward_features(self, features: Dict[str, torch.Tensor]) -> PixelDecoderOutput:
        srcs, pos = [], []
        for idx, name in enumerate(self.transformer_in_features[::-1]):  # coarsest first
            x = features[name].float()
            srcs.append(self.input_proj[idx](x))
            pos.append(self.pe_layer(x))
        y, spatial_shapes, _ = self.transformer(srcs, pos)
        batch = y.shape[0]
        shapes = [tuple(int(v) for v in hw) for hw in spatial_shapes.tolist()]
        out: List[torch.Tensor] = [
            level.transpose(1, 2).reshape(batch, -1, h, w)
            for level, (h, w) in zip(y.split([h * w for h, w in shapes], dim=1), shapes, strict=True)]

        for name, lateral_conv, output_conv in zip(self.in_features[: self.num_fpn_levels][::-1], self.lateral_convs,
                                                   self.output_convs, strict=True):
            lateral = lateral_conv(features[name].float())
            up = F.interpolate(out[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            out.append(output_conv(lateral + up))
        return self.mask_features(out[-1]), out[0], out[: self.maskformer_num_feature_levels]
