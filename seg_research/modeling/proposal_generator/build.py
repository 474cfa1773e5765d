"""PROPOSAL_GENERATOR registry and ``build_proposal_generator``."""
from __future__ import annotations

from typing import Dict

from torch import nn

from ...config import ConfigError
from ...layers import ShapeSpec
from ...utils.registry import Registry

__all__ = ["PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator"]

PROPOSAL_GENERATOR_REGISTRY = Registry("PROPOSAL_GENERATOR")
PROPOSAL_GENERATOR_REGISTRY.__doc__ = """
Registry for proposal generators, called as ``obj(cfg, input_shape)`` with ``input_shape`` the
backbone's ``output_shape()`` (name -> :class:`ShapeSpec`).
"""


def build_proposal_generator(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build ``cfg.MODEL.PROPOSAL_GENERATOR.NAME`` on the backbone features ``input_shape``."""
    name = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    if name not in PROPOSAL_GENERATOR_REGISTRY:
        raise ConfigError(f"MODEL.PROPOSAL_GENERATOR.NAME '{name}' is not registered. Registered: "
                          f"{sorted(k for k, _ in PROPOSAL_GENERATOR_REGISTRY)}.")
    return PROPOSAL_GENERATOR_REGISTRY.get(name)(cfg, input_shape)
