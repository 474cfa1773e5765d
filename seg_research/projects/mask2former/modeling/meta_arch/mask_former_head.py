"""``MaskFormerHead``: a pixel decoder and a transformer decoder, predicting a class and a mask per query."""
from __future__ import annotations

import logging
from typing import Dict, Optional

import torch
from torch import nn

from seg_research.config import ConfigError, configurable
from seg_research.layers import ShapeSpec
from seg_research.modeling import SEM_SEG_HEADS_REGISTRY

from ..pixel_decoder.fpn import build_pixel_decoder
from ..transformer_decoder.build import build_transformer_decoder

__all__ = ["MaskFormerHead"]

logger = logging.getLogger(__name__)


@SEM_SEG_HEADS_REGISTRY.register()
class MaskFormerHead(nn.Module):
    """The head of :class:`~seg_research.projects.mask2former.MaskFormer`: ``pixel_decoder`` turns backbone
    features into mask features and multi-scale features, ``predictor`` (the transformer decoder) turns
    those into per-query class logits and mask logits.

    Unlike the other SEM_SEG_HEADS, ``forward(features)`` returns the predictor's dict (``pred_logits``,
    ``pred_masks``, ``aux_outputs``); the meta-architecture computes losses and outputs from it.

    Checkpoints: the official ``.pkl`` files keep the pixel decoder's weights directly under the head
    (``sem_seg_head.adapter_1.weight``: the layout before upstream's head version 2), ours and upstream's
    newer ones under ``sem_seg_head.pixel_decoder.``. Both load: a key in the old layout is moved under
    ``pixel_decoder.`` when that names one of the pixel decoder's tensors and is not in the dict already;
    nothing else is renamed, so a new-layout dict is never renamed a second time (upstream renames a
    new-layout dict without version metadata again).
    """

    # upstream's state-dict version: checkpoints we save carry it, so upstream loads them without renaming
    _version = 2

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, pixel_decoder: nn.Module,
                 loss_weight: float = 1.0, ignore_value: int = -1, transformer_predictor: nn.Module,
                 transformer_in_feature: str) -> None:
        """
        Args:
            input_shape: the backbone features the head reads (name -> channels and stride).
            num_classes: K, classes predicted (without "no object").
            pixel_decoder: a module with ``forward_features`` (see ``pixel_decoder.fpn``).
            loss_weight: upstream's argument, kept for its configs (the criterion's weights apply).
            ignore_value: label of unlabeled pixels in semantic targets.
            transformer_predictor: the transformer decoder.
            transformer_in_feature: what the predictor reads: "multi_scale_pixel_decoder" (Mask2Former),
                "transformer_encoder", "pixel_embedding" or a backbone feature name.
        """
        super().__init__()
        self.in_features = [name for name, _ in sorted(input_shape.items(), key=lambda item: item[1].stride)]
        self.ignore_value = ignore_value
        self.common_stride = 4
        self.loss_weight = loss_weight
        self.pixel_decoder = pixel_decoder
        self.predictor = transformer_predictor
        self.transformer_in_feature = transformer_in_feature
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        feature = cfg.MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE
        if feature in ("transformer_encoder", "multi_scale_pixel_decoder"):
            in_channels = cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM
        elif feature == "pixel_embedding":
            in_channels = cfg.MODEL.SEM_SEG_HEAD.MASK_DIM
        elif feature in input_shape:
            in_channels = input_shape[feature].channels
        else:
            raise ConfigError(f"MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE '{feature}' is neither "
                              "'multi_scale_pixel_decoder', 'transformer_encoder', 'pixel_embedding' nor a backbone "
                              f"feature ({sorted(input_shape)}); Mask2Former uses 'multi_scale_pixel_decoder'.")
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES},
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "pixel_decoder": build_pixel_decoder(cfg, input_shape),
            "loss_weight": cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT,
            "transformer_in_feature": feature,
            "transformer_predictor": build_transformer_decoder(cfg, in_channels, mask_classification=True),
        }

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        decoder_prefix = prefix + "pixel_decoder."
        decoder_keys = {decoder_prefix + k for k in self.pixel_decoder.state_dict()}
        moved = 0
        for key in [k for k in state_dict if k.startswith(prefix)]:
            new_key = decoder_prefix + key[len(prefix):]
            if new_key in decoder_keys and new_key not in state_dict:
                state_dict[new_key] = state_dict.pop(key)
                moved += 1
        if moved:
            logger.info(f"Loaded {moved} pixel decoder tensors from the checkpoint's older layout (directly under "
                        f"'{prefix}', as in the official Mask2Former files) into '{decoder_prefix}'.")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, features: Dict[str, torch.Tensor], mask: Optional[torch.Tensor] = None) -> dict:
        """``features``: the backbone's name -> (N, C, H/s, W/s). Returns the predictor's outputs."""
        return self.layers(features, mask)

    def layers(self, features: Dict[str, torch.Tensor], mask: Optional[torch.Tensor] = None) -> dict:
        mask_features, encoder_features, multi_scale_features = self.pixel_decoder.forward_features(features)
        if self.transformer_in_feature == "multi_scale_pixel_decoder":
            return self.predictor(multi_scale_features, mask_features, mask)
        if self.transformer_in_feature == "transformer_encoder":
            if encoder_features is None:
                raise ValueError("TRANSFORMER_IN_FEATURE 'transformer_encoder' needs a pixel decoder with a transformer "
                                 "encoder (e.g. MSDeformAttnPixelDecoder).")
            return self.predictor(encoder_features, mask_features, mask)
        if self.transformer_in_feature == "pixel_embedding":
            return self.predictor(mask_features, mask_features, mask)
        return self.predictor(features[self.transformer_in_feature], mask_features, mask)
