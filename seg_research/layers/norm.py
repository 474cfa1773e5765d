"""Normalization layers by name, and conversion of BatchNorm to FrozenBatchNorm2d."""
from __future__ import annotations

from typing import Callable, Dict, Optional

from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from .batch_norm import SyncBatchNorm2d

__all__ = ["NORM_LAYERS", "get_norm", "convert_frozen_batchnorm", "FrozenBatchNorm2d"]

# Name (the value of MODEL.*.NORM) -> factory taking the number of channels C of a
# (N, C, H, W) input. "" means no normalization and is handled by ``get_norm``.
NORM_LAYERS: Dict[str, Callable[[int], nn.Module]] = {
    "BN": nn.BatchNorm2d,
    "SyncBN": SyncBatchNorm2d,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": lambda channels: nn.GroupNorm(32, channels),
}


def get_norm(norm: str, out_channels: int) -> Optional[nn.Module]:
    """Build the normalization layer named ``norm`` for ``out_channels`` channels.

    Args:
        norm: "" (no normalization: returns ``None``), "BN" (``nn.BatchNorm2d``), "SyncBN"
            (:class:`SyncBatchNorm2d`: statistics over all processes, CPU or GPU; plain BN
            with one process),
            "FrozenBN" (torchvision's ``FrozenBatchNorm2d``: fixed statistics and affine
            parameters, stored as buffers) or "GN" (``nn.GroupNorm`` with 32 groups, so
            ``out_channels`` must be a multiple of 32).
        out_channels: C of the (N, C, H, W) input the layer normalizes.
    """
    if norm == "":
        return None
    if norm not in NORM_LAYERS:
        raise ValueError(f"Unknown norm '{norm}'. Use one of {[''] + sorted(NORM_LAYERS)} ('' means no norm).")
    if norm == "GN" and out_channels % 32 != 0:
        raise ValueError(f"NORM 'GN' uses 32 groups, but the layer has {out_channels} channels (not a multiple of 32).")
    return NORM_LAYERS[norm](out_channels)


def convert_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` / ``nn.SyncBatchNorm`` in ``module`` (itself included)
    by a ``FrozenBatchNorm2d`` holding the same weight, bias, running statistics and eps.

    Children are replaced in place; the (possibly new) root module is returned. Other norms
    (e.g. GroupNorm) are left as they are.
    """
    if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        state = module.state_dict()
        # strict=False: a BN without affine parameters or running stats keeps the identity defaults.
        frozen.load_state_dict(state, strict=False)
        device = next((t.device for t in state.values()), None)
        return frozen if device is None else frozen.to(device)
    for name, child in module.named_children():
        new_child = convert_frozen_batchnorm(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module
