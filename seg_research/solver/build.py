"""Build the optimizer and LR scheduler from ``cfg.SOLVER``.

Optimizers and schedules are looked up by name in ``OPTIMIZER_REGISTRY`` and
``LR_SCHEDULER_REGISTRY``; a project adds one by registering a builder
``fn(cfg, params) -> Optimizer`` or ``fn(cfg) -> ParamScheduler`` under a new name.
"""
from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Type, Union

import torch
from fvcore.common.param_scheduler import (
    ConstantParamScheduler,
    CosineParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
)
from torchvision.ops.misc import FrozenBatchNorm2d

from ..config import CfgNode
from ..utils.registry import Registry
from .lr_scheduler import LRMultiplier, WarmupParamScheduler

__all__ = [
    "OPTIMIZER_REGISTRY", "LR_SCHEDULER_REGISTRY", "NORM_MODULE_TYPES",
    "build_optimizer", "get_default_optimizer_params", "maybe_add_gradient_clipping", "build_lr_scheduler",
    "GradientClipType", "reduce_param_groups",
]

logger = logging.getLogger(__name__)

OPTIMIZER_REGISTRY = Registry("OPTIMIZER")
OPTIMIZER_REGISTRY.__doc__ = "SOLVER.OPTIMIZER name -> fn(cfg, params: list[dict]) -> torch.optim.Optimizer."
LR_SCHEDULER_REGISTRY = Registry("LR_SCHEDULER")
LR_SCHEDULER_REGISTRY.__doc__ = (
    "SOLVER.LR_SCHEDULER_NAME name -> fn(cfg) -> fvcore ParamScheduler (a base-LR multiplier "
    "over training progress in [0, 1], before warmup is added)."
)

# Parameters of these modules get SOLVER.WEIGHT_DECAY_NORM.
NORM_MODULE_TYPES = (
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.GroupNorm,
    torch.nn.modules.instancenorm._InstanceNorm,
    torch.nn.LayerNorm,
    torch.nn.LocalResponseNorm,
    FrozenBatchNorm2d,
)


def _lookup(registry: Registry, name: str, key: str) -> Callable:
    names = sorted(n for n, _ in registry)
    if name not in names:
        raise KeyError(f"{key} = '{name}' is not a registered name. Valid names: {names}.")
    return registry.get(name)


def get_default_optimizer_params(
    model: torch.nn.Module,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
) -> List[Dict[str, Any]]:
    """Parameter groups with per-parameter LR and weight decay.

    - parameters of norm layers (``NORM_MODULE_TYPES``) get ``weight_decay_norm``;
    - other parameters named ``bias`` get ``weight_decay_bias`` (``None``: ``weight_decay``);
    - every ``bias`` (norm layers included) gets LR ``base_lr * bias_lr_factor``.

    Frozen parameters (``requires_grad=False``) are left out, and a parameter shared by
    several modules appears once. Parameters with equal hyper-parameters share a group.

    Returns:
        list of ``{"params": [Parameter, ...], "lr": float, "weight_decay": float}``.
    """
    if weight_decay_bias is None:
        weight_decay_bias = weight_decay
    seen: Set[torch.nn.Parameter] = set()
    groups: Dict[tuple, List[torch.nn.Parameter]] = {}
    for module in model.modules():
        is_norm = isinstance(module, NORM_MODULE_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            is_bias = name == "bias"
            lr = base_lr * bias_lr_factor if is_bias else base_lr
            if is_norm:
                decay = weight_decay_norm
            elif is_bias:
                decay = weight_decay_bias
            else:
                decay = weight_decay
            groups.setdefault((lr, decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]


def maybe_add_gradient_clipping(cfg: CfgNode, optimizer_cls: Union[Type[torch.optim.Optimizer], torch.optim.Optimizer]
                                ) -> Union[Type[torch.optim.Optimizer], torch.optim.Optimizer]:
    """Return ``optimizer_cls``, or when ``SOLVER.CLIP_GRADIENTS.ENABLED`` a subclass
    ``<Name>WithGradientClip`` whose ``step`` first clips the gradients of all its
    parameters: CLIP_TYPE "value" clamps each element to ``[-CLIP_VALUE, CLIP_VALUE]``;
    "norm" rescales so the total NORM_TYPE-norm is at most CLIP_VALUE.

    Given an optimizer instance instead (as detectron2 allows, and upstream Mask2Former's train_net.py
    passes), that instance is returned, made an instance of the clipping subclass."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if isinstance(optimizer_cls, torch.optim.Optimizer):
        optimizer = optimizer_cls
        optimizer.__class__ = maybe_add_gradient_clipping(cfg, type(optimizer))
        return optimizer
    if not clip.ENABLED:
        return optimizer_cls
    clip_value, norm_type = float(clip.CLIP_VALUE), float(clip.NORM_TYPE)
    clippers: Dict[str, Callable[[List[torch.Tensor]], Any]] = {
        "value": lambda params: torch.nn.utils.clip_grad_value_(params, clip_value),
        "norm": lambda params: torch.nn.utils.clip_grad_norm_(params, clip_value, norm_type),
    }
    if clip.CLIP_TYPE not in clippers:
        raise ValueError(f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE = '{clip.CLIP_TYPE}'; use 'value' or 'norm'.")
    clip_fn = clippers[clip.CLIP_TYPE]

    def step(self: torch.optim.Optimizer, closure: Optional[Callable] = None) -> Any:
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if params:
            clip_fn(params)
        return optimizer_cls.step(self, closure)

    return type(optimizer_cls.__name__ + "WithGradientClip", (optimizer_cls,), {"step": step})


@OPTIMIZER_REGISTRY.register(name="SGD")
def _build_sgd(cfg: CfgNode, params: List[Dict[str, Any]]) -> torch.optim.Optimizer:
    cls = maybe_add_gradient_clipping(cfg, torch.optim.SGD)
    return cls(params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV)


@OPTIMIZER_REGISTRY.register(name="AdamW")
def _build_adamw(cfg: CfgNode, params: List[Dict[str, Any]]) -> torch.optim.Optimizer:
    cls = maybe_add_gradient_clipping(cfg, torch.optim.AdamW)
    return cls(params, lr=cfg.SOLVER.BASE_LR, betas=tuple(cfg.SOLVER.BETAS))


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by SOLVER.OPTIMIZER over ``get_default_optimizer_params`` groups
    (SOLVER.BASE_LR, WEIGHT_DECAY, WEIGHT_DECAY_NORM, BIAS_LR_FACTOR, WEIGHT_DECAY_BIAS),
    with SOLVER.CLIP_GRADIENTS applied inside its ``step``."""
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    if not params:
        raise ValueError("The model has no trainable parameters (all have requires_grad=False); nothing to optimize.")
    return _lookup(OPTIMIZER_REGISTRY, cfg.SOLVER.OPTIMIZER, "SOLVER.OPTIMIZER")(cfg, params)


@LR_SCHEDULER_REGISTRY.register(name="WarmupMultiStepLR")
def _multi_step(cfg: CfgNode) -> ParamScheduler:
    max_iter = cfg.SOLVER.MAX_ITER
    steps = [s for s in cfg.SOLVER.STEPS if s < max_iter]
    if len(steps) != len(cfg.SOLVER.STEPS):
        logger.warning(
            f"SOLVER.STEPS {tuple(cfg.SOLVER.STEPS)} has steps at or beyond SOLVER.MAX_ITER={max_iter}; "
            f"they are ignored (using {tuple(steps)})."
        )
    return MultiStepParamScheduler(
        values=[cfg.SOLVER.GAMMA ** k for k in range(len(steps) + 1)], milestones=steps, num_updates=max_iter
    )


@LR_SCHEDULER_REGISTRY.register(name="WarmupCosineLR")
def _cosine(cfg: CfgNode) -> ParamScheduler:
    return CosineParamScheduler(1.0, cfg.SOLVER.BASE_LR_END / cfg.SOLVER.BASE_LR)


@LR_SCHEDULER_REGISTRY.register(name="WarmupConstantLR")
def _constant(cfg: CfgNode) -> ParamScheduler:
    return ConstantParamScheduler(1.0)


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer) -> LRMultiplier:
    """``LRMultiplier`` for the schedule named by SOLVER.LR_SCHEDULER_NAME, with a warmup of
    SOLVER.WARMUP_ITERS iterations (WARMUP_FACTOR, WARMUP_METHOD) over SOLVER.MAX_ITER."""
    schedule = _lookup(LR_SCHEDULER_REGISTRY, cfg.SOLVER.LR_SCHEDULER_NAME, "SOLVER.LR_SCHEDULER_NAME")(cfg)
    multiplier = WarmupParamScheduler(
        schedule,
        warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
        warmup_length=min(cfg.SOLVER.WARMUP_ITERS / cfg.SOLVER.MAX_ITER, 1.0),
        warmup_method=cfg.SOLVER.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier=multiplier, max_iter=cfg.SOLVER.MAX_ITER)


class GradientClipType(str, Enum):
    """``SOLVER.CLIP_GRADIENTS.CLIP_TYPE`` values."""

    VALUE = "value"
    NORM = "norm"


def reduce_param_groups(params: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Merge optimizer param groups that have the same hyper-parameters (fewer groups, same optimisation).

    A parameter listed in several groups takes the hyper-parameters of its last group (later
    settings override earlier ones); the merged groups keep the order of first appearance.
    """
    per_param: Dict[int, Tuple[torch.nn.Parameter, Dict[str, Any]]] = {}
    for group in params:
        settings = {k: v for k, v in group.items() if k != "params"}
        for param in group["params"]:
            previous = per_param.get(id(param), (param, {}))[1]
            per_param[id(param)] = (param, {**previous, **settings})
    merged: Dict[Tuple[Tuple[str, Any], ...], List[torch.nn.Parameter]] = {}
    for param, settings in per_param.values():
        merged.setdefault(tuple(sorted(settings.items())), []).append(param)
    return [{**dict(key), "params": group} for key, group in merged.items()]
