"""META_ARCH registry and ``build_model``."""
from __future__ import annotations

import logging

import torch
from torch import nn

from ...config.unsupported import check_supported
from ...utils.registry import Registry
from ..compile import compile_model

__all__ = ["META_ARCH_REGISTRY", "build_model"]

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Registry for meta-architectures (the whole model). The registered class is called with
``cfg`` and must take ``list[dict]`` inputs: a loss dict in training, a list of output
dicts in inference.
"""


def build_model(cfg) -> nn.Module:
    """Build ``cfg.MODEL.META_ARCHITECTURE`` on ``cfg.MODEL.DEVICE``. Weights are not loaded
    here: use :class:`seg_research.checkpoint.Checkpointer`. A config that turns on a detectron2
    feature seg_research lacks (RetinaNet, keypoints, cascade, deformable convs, ...) fails here,
    naming the key (``config.unsupported``). With ``MODEL.COMPILE.ENABLED`` the parts of
    ``MODEL.COMPILE.PARTS`` are compiled in place (:func:`seg_research.modeling.compile.compile_model`).
    A model that runs channels-last on the CPU (``channels_last_on_cpu``) gets its conv weights in that
    layout too (values and state-dict keys unchanged)."""
    check_supported(cfg)
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in META_ARCH_REGISTRY:
        raise KeyError(
            f"MODEL.META_ARCHITECTURE '{name}' is not registered. Registered: "
            f"{sorted(k for k, _ in META_ARCH_REGISTRY)}. A project must be imported before building its model."
        )
    model = META_ARCH_REGISTRY.get(name)(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    if getattr(model, "channels_last_on_cpu", False) and device.type == "cpu":
        # conv weights in the activations' layout: oneDNN otherwise reorders each weight (and its
        # gradient) at every call, 5-25% of a CPU train step (benchmarks/README.md, mixed precision)
        model.to(memory_format=torch.channels_last)
    if cfg.MODEL.COMPILE.ENABLED:
        compile_model(model, cfg.MODEL.COMPILE.PARTS, cfg.MODEL.COMPILE.MODE)
    logging.getLogger(__name__).info(f"Built model {name} with {sum(p.numel() for p in model.parameters())} parameters")
    return model
