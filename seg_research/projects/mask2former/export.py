"""MaskFormer's inference for one image in the form an exported graph records (registered with
``seg_research.export``, which sits below the projects and cannot import them).

The graph stops at what every output shares: the class logits and the mask logits of the queries
at the input size. What follows is data-dependent selection on those (semantic scores, panoptic
segments, the top (query, class) pairs) and needs the original image size, so the runtime does it
(``seg_research.export.runtime.mask_classification_outputs``), as ``MaskFormer.forward`` after
its ``sem_seg_postprocess``.

The model's own modules turn feature sizes into Python ints through tensors (``spatial_shapes
.tolist()``) and update the attention mask by boolean indexing: the tracer would freeze the
sample's size and ``torch.export`` stops at the data-dependent ints. The functions here run the
same computations on the model's modules and weights with every size taken from a tensor shape:
the deformable attention samples each level with ``grid_sample`` (ONNX ``GridSample``; bilinear,
zero padding, ``align_corners=False``, the convention of ``ms_deform_attn``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F

from seg_research.export.graphs import preprocess, register_architecture

from .maskformer_model import MaskFormer
from .modeling.pixel_decoder.msdeformattn import MSDeformAttnPixelDecoder
from .modeling.pixel_decoder.ops import MSDeformAttn
from .modeling.transformer_decoder.mask2former_transformer_decoder import MultiScaleMaskedTransformerDecoder

__all__ = ["maskformer_export_inference", "maskformer_runtime_metadata", "sampled_deform_attn"]


def sampled_deform_attn(value: torch.Tensor, sizes: List[Tuple[Any, Any]], locations: torch.Tensor,
                        weights: torch.Tensor) -> torch.Tensor:
    """``ms_deform_attn`` with one ``grid_sample`` per level: (N, S, M, D) values of the levels
    ``sizes`` [(H_l, W_l)] (ints or traced sizes), (N, Lq, M, L, P, 2) locations in [0, 1],
    (N, Lq, M, L, P) weights -> (N, Lq, M * D)."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = locations.shape
    grids = 2 * locations - 1  # grid_sample's [-1, 1], align_corners=False: -1 is the first pixel's outer edge
    sampled, start = [], 0
    for level, (h, w) in enumerate(sizes):
        level_value = value[:, start:start + h * w].permute(0, 2, 3, 1).reshape(n * m, d, h, w)
        start = start + h * w
        grid = grids[:, :, :, level].transpose(1, 2).reshape(n * m, lq, num_points, 2)
        sampled.append(F.grid_sample(level_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    samples = torch.stack(sampled, dim=3)  # (N * M, D, Lq, L, P)
    weights = weights.transpose(1, 2).reshape(n * m, 1, lq, num_levels, num_points)
    out = (samples * weights).sum(dim=(3, 4))  # (N * M, D, Lq)
    return out.view(n, m * d, lq).transpose(1, 2)


def _deform_attn(attn: MSDeformAttn, query: torch.Tensor, reference_points: torch.Tensor, src: torch.Tensor,
                 sizes: List[Tuple[Any, Any]], normalizer: torch.Tensor) -> torch.Tensor:
    """``MSDeformAttn.forward`` with point references and no padding mask; ``normalizer``: (L, 2) (W_l, H_l)."""
    n, lq, _ = query.shape
    value = attn.value_proj(src).view(n, src.shape[1], attn.n_heads, attn.d_model // attn.n_heads)
    offsets = attn.sampling_offsets(query).view(n, lq, attn.n_heads, attn.n_levels, attn.n_points, 2)
    weights = attn.attention_weights(query).view(n, lq, attn.n_heads, attn.n_levels * attn.n_points)
    weights = weights.softmax(-1).view(n, lq, attn.n_heads, attn.n_levels, attn.n_points)
    locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
    return attn.output_proj(sampled_deform_attn(value, sizes, locations, weights))


def _reference_points(sizes: List[Tuple[Any, Any]], like: torch.Tensor) -> torch.Tensor:
    """(1, S, L, 2): each position's pixel centre (x, y) normalised by its level's size, the same for
    every level (``get_reference_points`` without padding: all valid ratios 1)."""
    points = []
    for h, w in sizes:
        ys = (torch.arange(h, dtype=torch.float32, device=like.device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=like.device) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), -1))
    return torch.cat(points, 0)[None, :, None].expand(-1, -1, len(sizes), -1)


def _pixel_decoder(decoder: MSDeformAttnPixelDecoder, features: Dict[str, torch.Tensor]
                   ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """``MSDeformAttnPixelDecoder.forward_features``: (mask features, multi-scale features)."""
    transformer = decoder.transformer
    srcs, flat, flat_pos, sizes, normalizer = [], [], [], [], []
    for idx, name in enumerate(decoder.transformer_in_features[::-1]):  # coarsest first
        x = features[name].float()
        src = decoder.input_proj[idx](x)
        h, w = src.shape[-2:]
        sizes.append((h, w))
        normalizer.append(torch.stack([torch.full((), w, dtype=torch.float32), torch.full((), h, dtype=torch.float32)]))
        flat.append(src.flatten(2).transpose(1, 2))
        flat_pos.append(decoder.pe_layer(x).flatten(2).transpose(1, 2) + transformer.level_embed[idx].view(1, 1, -1))
        srcs.append(src)
    y, pos = torch.cat(flat, 1), torch.cat(flat_pos, 1)
    reference_points = _reference_points(sizes, y)
    normalizer_t = torch.stack(normalizer).to(y.device)
    for layer in transformer.encoder.layers:
        attended = _deform_attn(layer.self_attn, y + pos, reference_points, y, sizes, normalizer_t)
        y = layer.norm1(y + layer.dropout1(attended))
        y = layer.norm2(y + layer.dropout3(layer.linear2(layer.dropout2(layer.activation(layer.linear1(y))))))
    out, start = [], 0
    for h, w in sizes:
        out.append(y[:, start:start + h * w].transpose(1, 2).reshape(y.shape[0], -1, h, w))
        start = start + h * w
    for name, lateral_conv, output_conv in zip(decoder.in_features[: decoder.num_fpn_levels][::-1],
                                               decoder.lateral_convs, decoder.output_convs, strict=True):
        lateral = lateral_conv(features[name].float())
        up = F.interpolate(out[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        out.append(output_conv(lateral + up))
    return decoder.mask_features(out[-1]), out[: decoder.maskformer_num_feature_levels]


def _transformer_decoder(decoder: MultiScaleMaskedTransformerDecoder, x: List[torch.Tensor],
                         mask_features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``MultiScaleMaskedTransformerDecoder.forward``'s last prediction: (N, Q, K + 1) class logits,
    (N, Q, H, W) mask logits. A query whose attention mask is all True attends everywhere (the model
    clears such rows by boolean indexing; here a logical and)."""
    src, pos, sizes = [], [], []
    for i, feature in enumerate(x):
        sizes.append(feature.shape[-2:])
        pos.append(decoder.pe_layer(feature).flatten(2).permute(2, 0, 1))
        projected = decoder.input_proj[i](feature).flatten(2) + decoder.level_embed.weight[i][None, :, None]
        src.append(projected.permute(2, 0, 1))
    batch = src[0].shape[1]
    query_embed = decoder.query_embed.weight.unsqueeze(1).repeat(1, batch, 1)
    output = decoder.query_feat.weight.unsqueeze(1).repeat(1, batch, 1)
    classes, masks, attn_mask = decoder.forward_prediction_heads(output, mask_features, sizes[0])
    for i in range(decoder.num_layers):
        level = i % decoder.num_feature_levels
        attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)
        output = decoder.transformer_cross_attention_layers[i](output, src[level], memory_mask=attn_mask,
                                                               pos=pos[level], query_pos=query_embed)
        output = decoder.transformer_self_attention_layers[i](output, query_pos=query_embed)
        output = decoder.transformer_ffn_layers[i](output)
        classes, masks, attn_mask = decoder.forward_prediction_heads(
            output, mask_features, sizes[(i + 1) % decoder.num_feature_levels])
    return classes, masks


def maskformer_export_inference(model: MaskFormer, image: torch.Tensor) -> Dict[str, torch.Tensor]:
    """One (C, H, W) resized image -> ``{"pred_logits": (Q, K + 1) class logits, "pred_masks": (Q, H, W)
    mask logits}`` on the H x W input (upsampled to the padded input and cropped, as
    ``MaskFormer.forward`` before its resize to the original size)."""
    x = preprocess(model, image)
    features = model.backbone(x)
    head = model.sem_seg_head
    pixel_decoder, predictor = head.pixel_decoder, head.predictor
    if (isinstance(pixel_decoder, MSDeformAttnPixelDecoder) and isinstance(predictor, MultiScaleMaskedTransformerDecoder)
            and head.transformer_in_feature == "multi_scale_pixel_decoder"):
        mask_features, multi_scale = _pixel_decoder(pixel_decoder, features)
        logits, masks = _transformer_decoder(predictor, multi_scale, mask_features)
    else:  # other decoders as they are (torch.export reports what it cannot record)
        outputs = head(features)
        logits, masks = outputs["pred_logits"], outputs["pred_masks"]
    masks = F.interpolate(masks, size=x.shape[-2:], mode="bilinear", align_corners=False)
    height, width = image.shape[-2:]
    return {"pred_logits": logits[0], "pred_masks": masks[0, :, :height, :width]}


def maskformer_runtime_metadata(model: MaskFormer) -> Dict[str, Any]:
    """``runtime.json``'s ``mask_classification``: which outputs, their thresholds, and the thing
    classes (contiguous ids) the panoptic and instance outputs need."""
    thing_classes = sorted(model._thing_classes()) if (model.panoptic_on or model.instance_on) else []
    return {"mask_classification": {
        "num_classes": int(model.sem_seg_head.num_classes),
        "semantic_on": bool(model.semantic_on), "panoptic_on": bool(model.panoptic_on),
        "instance_on": bool(model.instance_on),
        "object_mask_threshold": float(model.object_mask_threshold),
        "overlap_threshold": float(model.overlap_threshold),
        "test_topk_per_image": int(model.test_topk_per_image),
        # False: the semantic scores are combined at the input size, then resized (semantic-only models)
        "resize_masks_first": bool(model.sem_seg_postprocess_before_inference),
        "thing_classes": [int(c) for c in thing_classes],
    }}


register_architecture(MaskFormer, maskformer_export_inference, maskformer_runtime_metadata)
