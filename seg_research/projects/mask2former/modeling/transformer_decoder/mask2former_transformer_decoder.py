"""Mask2Former's transformer decoder: queries refined by masked cross-attention to one feature level at
a time (round robin over 3 levels), self-attention and a feed-forward layer, predicting classes and
masks after every layer.

Module and parameter names are upstream's, so that official checkpoints load as they are.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from seg_research.config import configurable
from seg_research.layers import Conv2d

from ..layers import activation_fn, xavier_conv
from .build import TRANSFORMER_DECODER_REGISTRY
from .position_encoding import PositionEmbeddingSine

__all__ = ["MultiScaleMaskedTransformerDecoder", "SelfAttentionLayer", "CrossAttentionLayer", "FFNLayer", "MLP"]

def _xavier_matrices(module: nn.Module) -> None:
    """DETR's initialisation: Xavier-uniform for every weight matrix, biases and norms as built."""
    for param in module.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)


def _add(tensor: torch.Tensor, pos: Optional[torch.Tensor]) -> torch.Tensor:
    return tensor if pos is None else tensor + pos


class SelfAttentionLayer(nn.Module):
    """Self-attention among the queries with a residual connection and LayerNorm (after it, or before the
    attention with ``normalize_before``). Sequence-first tensors: (Q, N, C)."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, activation: str = "relu",
                 normalize_before: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation_fn(activation)
        self.normalize_before = normalize_before
        _xavier_matrices(self)

    def forward(self, tgt: torch.Tensor, tgt_mask: Optional[torch.Tensor] = None,
                tgt_key_padding_mask: Optional[torch.Tensor] = None,
                query_pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        """tgt, query_pos: (Q, N, C); the position encoding is added to queries and keys, not values."""
        x = self.norm(tgt) if self.normalize_before else tgt
        q = k = _add(x, query_pos)
        out = tgt + self.dropout(self.self_attn(q, k, value=x, attn_mask=tgt_mask,
                                                key_padding_mask=tgt_key_padding_mask)[0])
        return out if self.normalize_before else self.norm(out)


class CrossAttentionLayer(nn.Module):
    """Attention from the queries (Q, N, C) to a flattened feature level (HW, N, C), residual and LayerNorm
    as in :class:`SelfAttentionLayer`."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, activation: str = "relu",
                 normalize_before: bool = False) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation_fn(activation)
        self.normalize_before = normalize_before
        _xavier_matrices(self)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, memory_mask: Optional[torch.Tensor] = None,
                memory_key_padding_mask: Optional[torch.Tensor] = None, pos: Optional[torch.Tensor] = None,
                query_pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``memory_mask``: bool (N * heads, Q, HW), True where a query may not attend."""
        x = self.norm(tgt) if self.normalize_before else tgt
        attended = self.multihead_attn(query=_add(x, query_pos), key=_add(memory, pos), value=memory,
                                       attn_mask=memory_mask, key_padding_mask=memory_key_padding_mask)[0]
        out = tgt + self.dropout(attended)
        return out if self.normalize_before else self.norm(out)


class FFNLayer(nn.Module):
    """Two-layer feed-forward block (d_model -> dim_feedforward -> d_model) with residual and LayerNorm."""

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0, activation: str = "relu",
                 normalize_before: bool = False) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.activation = activation_fn(activation)
        self.normalize_before = normalize_before
        _xavier_matrices(self)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        x = self.norm(tgt) if self.normalize_before else tgt
        out = tgt + self.dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return out if self.normalize_before else self.norm(out)


class MLP(nn.Module):
    """``num_layers`` linear layers (``layers.0`` ...) with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


@TRANSFORMER_DECODER_REGISTRY.register()
class MultiScaleMaskedTransformerDecoder(nn.Module):
    """Mask2Former's decoder (the paper's Sec. 3.2).

    Learnable query features (``query_feat``) and query position embeddings (``query_embed``) first
    predict classes and masks directly; then each of ``dec_layers`` layers lets every query attend only
    to the pixels of its current mask (mask probability >= 0.5, resized to the level; a query whose
    mask is empty attends everywhere), at level ``i % 3`` of the pixel decoder's multi-scale features
    (lowest resolution first), then to the other queries, then a feed-forward layer, and predicts again.
    Every prediction but the last is returned in ``aux_outputs`` for deep supervision.
    """

    # upstream's state-dict version: checkpoints we save carry it, so upstream loads them without renaming
    _version = 2

    @configurable
    def __init__(self, in_channels: int, mask_classification: bool = True, *, num_classes: int, hidden_dim: int,
                 num_queries: int, nheads: int, dim_feedforward: int, dec_layers: int, pre_norm: bool,
                 mask_dim: int, enforce_input_project: bool) -> None:
        """
        Args:
            in_channels: channels of the multi-scale features.
            mask_classification: must be True (upstream's argument; Mask2Former always classifies masks).
            num_classes: K; the class head predicts K + 1 logits, the last one "no object".
            hidden_dim: width of queries and attention.
            num_queries: number of queries (predicted masks).
            nheads: attention heads.
            dim_feedforward: hidden width of the feed-forward layers.
            dec_layers: transformer layers (``MODEL.MASK_FORMER.DEC_LAYERS`` minus one: the prediction from
                the learnable queries alone counts as a layer there).
            pre_norm: LayerNorm before each block instead of after it.
            mask_dim: channels of the per-pixel mask features the mask embeddings are multiplied with.
            enforce_input_project: project the features with a 1x1 conv even when in_channels == hidden_dim.
        """
        super().__init__()
        if not mask_classification:
            raise ValueError("MultiScaleMaskedTransformerDecoder only supports mask classification "
                             "(mask_classification=True).")
        self.mask_classification = mask_classification
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, nheads, dropout=0.0, normalize_before=pre_norm) for _ in range(dec_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, nheads, dropout=0.0, normalize_before=pre_norm)
            for _ in range(dec_layers))
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(hidden_dim, dim_feedforward=dim_feedforward, dropout=0.0, normalize_before=pre_norm)
            for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)

        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)

        self.num_feature_levels = 3  # always 3 scales, as upstream
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(self.num_feature_levels):
            if in_channels != hidden_dim or enforce_input_project:
                self.input_proj.append(xavier_conv(Conv2d(in_channels, hidden_dim, kernel_size=1)))
            else:
                self.input_proj.append(nn.Sequential())
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)

    @classmethod
    def from_config(cls, cfg, in_channels: int, mask_classification: bool) -> dict:
        mf = cfg.MODEL.MASK_FORMER
        if mf.DEC_LAYERS < 1:
            raise ValueError(f"MODEL.MASK_FORMER.DEC_LAYERS is {mf.DEC_LAYERS}; it counts the prediction from the "
                             "learnable queries as a layer, so it must be at least 1.")
        return {
            "in_channels": in_channels,
            "mask_classification": mask_classification,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "hidden_dim": mf.HIDDEN_DIM,
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "nheads": mf.NHEADS,
            "dim_feedforward": mf.DIM_FEEDFORWARD,
            "dec_layers": mf.DEC_LAYERS - 1,
            "pre_norm": mf.PRE_NORM,
            "enforce_input_project": mf.ENFORCE_INPUT_PROJ,
            "mask_dim": cfg.MODEL.SEM_SEG_HEAD.MASK_DIM,
        }

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # MaskFormer-era checkpoints call the query features "static_query"; rename only what is not
        # already under the new name, so a new-layout dict is never renamed.
        for key in [k for k in state_dict if k.startswith(prefix + "static_query.")]:
            new_key = prefix + "query_feat." + key[len(prefix + "static_query."):]
            if new_key not in state_dict:
                state_dict[new_key] = state_dict.pop(key)
                logging.getLogger(__name__).info(f"Loaded '{key}' as '{new_key}' (old name of the query features).")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x: Sequence[torch.Tensor], mask_features: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> Dict[str, object]:
        """
        Args:
            x: 3 feature maps (N, in_channels, H_l, W_l), lowest resolution first.
            mask_features: (N, mask_dim, H, W) per-pixel embeddings (stride 4).
            mask: unused (upstream's argument; padding is not masked, as upstream).

        Returns:
            ``pred_logits`` (N, Q, K + 1) and ``pred_masks`` (N, Q, H, W) mask logits of the last layer;
            ``aux_outputs``: the same for the earlier predictions, first to last, as a list of dicts.
        """
        if len(x) != self.num_feature_levels:
            raise ValueError(f"MultiScaleMaskedTransformerDecoder takes {self.num_feature_levels} feature levels, "
                             f"got {len(x)}.")
        src: List[torch.Tensor] = []
        pos: List[torch.Tensor] = []
        sizes: List[Tuple[int, int]] = []
        for i, feature in enumerate(x):
            sizes.append(tuple(feature.shape[-2:]))
            # (N, C, H, W) -> (HW, N, C), sequence first as nn.MultiheadAttention takes it
            pos.append(self.pe_layer(feature).flatten(2).permute(2, 0, 1))
            projected = self.input_proj[i](feature).flatten(2) + self.level_embed.weight[i][None, :, None]
            src.append(projected.permute(2, 0, 1))
        batch = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, batch, 1)  # (Q, N, C)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, batch, 1)

        classes, masks, attn_mask = self.forward_prediction_heads(output, mask_features, sizes[0])
        predictions_class, predictions_mask = [classes], [masks]
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            # a query whose mask is empty at this level attends to every pixel
            attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False
            output = self.transformer_cross_attention_layers[i](output, src[level], memory_mask=attn_mask,
                                                                pos=pos[level], query_pos=query_embed)
            output = self.transformer_self_attention_layers[i](output, query_pos=query_embed)
            output = self.transformer_ffn_layers[i](output)
            classes, masks, attn_mask = self.forward_prediction_heads(
                output, mask_features, sizes[(i + 1) % self.num_feature_levels])
            predictions_class.append(classes)
            predictions_mask.append(masks)
        return {
            "pred_logits": predictions_class[-1],
            "pred_masks": predictions_mask[-1],
            "aux_outputs": [{"pred_logits": c, "pred_masks": m}
                            for c, m in zip(predictions_class[:-1], predictions_mask[:-1], strict=True)],
        }

    def forward_prediction_heads(self, output: torch.Tensor, mask_features: torch.Tensor,
                                 attn_mask_target_size: Tuple[int, int]
                                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class logits (N, Q, K + 1), mask logits (N, Q, H, W) of the queries ``output`` (Q, N, C), and the
        attention mask for the next layer: bool (N * heads, Q, h * w) at ``attn_mask_target_size`` (h, w),
        True where the query's mask probability is below 0.5 (not attended)."""
        decoded = self.decoder_norm(output).transpose(0, 1)  # (N, Q, C)
        outputs_class = self.class_embed(decoded)
        outputs_mask = torch.einsum("bqc,bchw->bqhw", self.mask_embed(decoded), mask_features)
        resized = F.interpolate(outputs_mask, size=attn_mask_target_size, mode="bilinear", align_corners=False)
        attn_mask = (resized.sigmoid().flatten(2).unsqueeze(1).repeat(1, self.num_heads, 1, 1).flatten(0, 1) < 0.5)
        return outputs_class, outputs_mask, attn_mask.detach()
