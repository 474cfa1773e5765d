"""Mask2Former's optimizer (upstream's ``Trainer.build_optimizer``): AdamW or SGD over per-parameter
groups with a backbone LR multiplier and no weight decay on position embeddings, and gradient
clipping over the whole model."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Type

import torch

from seg_research.config import CfgNode
from seg_research.solver import NORM_MODULE_TYPES, maybe_add_gradient_clipping
from seg_research.solver.build import reduce_param_groups

__all__ = ["build_optimizer", "get_maskformer_optimizer_params", "maybe_add_full_model_gradient_clipping"]

# Swin's position parameters: learned biases of relative and absolute positions, not weights to shrink.
_NO_DECAY_PARAMETERS = ("relative_position_bias_table", "absolute_pos_embed")


def get_maskformer_optimizer_params(
    model: torch.nn.Module,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    weight_decay_embed: float,
    backbone_multiplier: float,
) -> List[Dict[str, Any]]:
    """Parameter groups of upstream Mask2Former:

    - LR ``base_lr``, times ``backbone_multiplier`` for parameters of modules whose name contains
      "backbone";
    - weight decay ``weight_decay``; 0 for Swin's ``relative_position_bias_table`` and
      ``absolute_pos_embed``; ``weight_decay_norm`` for parameters of norm layers
      (``seg_research.solver.NORM_MODULE_TYPES``); ``weight_decay_embed`` for ``nn.Embedding``
      (the queries). Biases are treated like weights.

    Frozen parameters are left out and a shared parameter appears once; parameters with the same
    settings share a group (upstream has one group per parameter: the same optimisation).

    Returns:
        list of ``{"params": [...], "lr": float, "weight_decay": float}``.
    """
    seen = set()
    params: List[Dict[str, Any]] = []
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            lr = base_lr * backbone_multiplier if "backbone" in module_name else base_lr
            decay = weight_decay
            if any(key in name for key in _NO_DECAY_PARAMETERS):
                decay = 0.0
            if isinstance(module, NORM_MODULE_TYPES):
                decay = weight_decay_norm
            if isinstance(module, torch.nn.Embedding):
                decay = weight_decay_embed
            params.append({"params": [param], "lr": lr, "weight_decay": decay})
    return reduce_param_groups(params)


def maybe_add_full_model_gradient_clipping(cfg: CfgNode,
                                           optimizer_cls: Type[torch.optim.Optimizer]) -> Type[torch.optim.Optimizer]:
    """``optimizer_cls``, or with ``SOLVER.CLIP_GRADIENTS`` ENABLED, CLIP_TYPE "full_model" and
    CLIP_VALUE > 0, a subclass whose ``step`` first rescales the gradients of all its parameters
    together to an L2 norm of at most CLIP_VALUE."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not (clip.ENABLED and clip.CLIP_TYPE == "full_model" and clip.CLIP_VALUE > 0):
        return optimizer_cls
    max_norm = float(clip.CLIP_VALUE)

    def step(self: torch.optim.Optimizer, closure: Optional[Callable] = None) -> Any:
        torch.nn.utils.clip_grad_norm_([p for group in self.param_groups for p in group["params"]], max_norm)
        return optimizer_cls.step(self, closure)

    return type(optimizer_cls.__name__ + "WithFullModelGradientClip", (optimizer_cls,), {"step": step})


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Upstream Mask2Former's optimizer: :func:`get_maskformer_optimizer_params` groups (SOLVER.BASE_LR,
    WEIGHT_DECAY, WEIGHT_DECAY_NORM, WEIGHT_DECAY_EMBED, BACKBONE_MULTIPLIER) in SOLVER.OPTIMIZER
    "ADAMW" (betas SOLVER.BETAS) or "SGD" (SOLVER.MOMENTUM), clipped as SOLVER.CLIP_GRADIENTS says:
    CLIP_TYPE "full_model" over all parameters together, "value" / "norm" as the library does."""
    solver = cfg.SOLVER
    params = get_maskformer_optimizer_params(
        model, solver.BASE_LR, solver.WEIGHT_DECAY, solver.WEIGHT_DECAY_NORM, solver.WEIGHT_DECAY_EMBED,
        solver.BACKBONE_MULTIPLIER,
    )
    if not params:
        raise ValueError("The model has no trainable parameters (all have requires_grad=False); nothing to optimize.")
    name = solver.OPTIMIZER.upper()
    if name == "ADAMW":
        cls, kwargs = torch.optim.AdamW, {"betas": tuple(solver.BETAS)}
    elif name == "SGD":
        cls, kwargs = torch.optim.SGD, {"momentum": solver.MOMENTUM}
    else:
        raise ValueError(f"SOLVER.OPTIMIZER = '{solver.OPTIMIZER}'; Mask2Former's optimizer is 'ADAMW' or 'SGD'.")
    if solver.CLIP_GRADIENTS.CLIP_TYPE == "full_model":
        cls = maybe_add_full_model_gradient_clipping(cfg, cls)
    else:
        cls = maybe_add_gradient_clipping(cfg, cls)
    return cls(params, lr=solver.BASE_LR, **kwargs)
