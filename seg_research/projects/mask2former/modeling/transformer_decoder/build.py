"""TRANSFORMER_DECODER registry (upstream's ``TRANSFORMER_MODULE``) and ``build_transformer_decoder``."""
from __future__ import annotations

from torch import nn

from seg_research.config import ConfigError
from seg_research.utils.registry import Registry

__all__ = ["TRANSFORMER_DECODER_REGISTRY", "build_transformer_decoder"]

TRANSFORMER_DECODER_REGISTRY = Registry("TRANSFORMER_MODULE")
TRANSFORMER_DECODER_REGISTRY.__doc__ = """
Registry for the transformer decoders of MaskFormerHead, named by ``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``.
A registered class is called as ``cls(cfg, in_channels, mask_classification)``; its
``forward(multi_scale_features, mask_features, mask=None)`` returns ``{"pred_logits", "pred_masks", "aux_outputs"}``.
"""


def build_transformer_decoder(cfg, in_channels: int, mask_classification: bool = True) -> nn.Module:
    """Build ``cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME`` reading features of ``in_channels`` channels."""
    name = cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME
    if name not in TRANSFORMER_DECODER_REGISTRY:
        raise ConfigError(
            f"MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME '{name}' is not registered. Registered: "
            f"{sorted(k for k, _ in TRANSFORMER_DECODER_REGISTRY)}. A project must be imported before building it."
        )
    return TRANSFORMER_DECODER_REGISTRY.get(name)(cfg, in_channels, mask_classification)
