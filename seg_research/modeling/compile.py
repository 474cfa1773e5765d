"""``torch.compile`` of a model's parts, in place (``MODEL.COMPILE.*``)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

__all__ = ["COMPILE_MODES", "compile_model"]

#: torch.compile's modes
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_model(model: nn.Module, parts: Sequence[str] = ("backbone",), mode: str = "default") -> nn.Module:
    """Compile the submodules named in ``parts`` with ``nn.Module.compile`` and return ``model``.

    Compiling in place (rather than wrapping in ``torch.compile(module)``) keeps the state dict's
    keys, so checkpoints, EMA, DDP and weight loading see the same model. Compilation happens at the
    first forward of each part (and again for new input shapes, until torch marks them dynamic).

    Args:
        model: the built model.
        parts: dotted submodule names ("backbone", "roi_heads.mask_head", ...); "" is the whole model;
            a ``ModuleList`` / ``ModuleDict`` stands for each module it holds.
        mode: one of :data:`COMPILE_MODES`.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"MODEL.COMPILE.MODE '{mode}' is not one of torch.compile's modes {list(COMPILE_MODES)}.")
    if not parts:
        raise ValueError("MODEL.COMPILE.PARTS is empty: name the submodules to compile (\"\" is the whole model).")
    for name in parts:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            children = sorted(n for n, _ in model.named_children())
            raise ValueError(f"MODEL.COMPILE.PARTS names '{name}', which {type(model).__name__} does not have; "
                             f"its parts are {children} (dotted names reach deeper, \"\" is the whole model).") from None
        # a ModuleList / ModuleDict is never called itself: compile what it holds
        containers = (nn.ModuleList, nn.ModuleDict)
        for target in (module.children() if isinstance(module, containers) else [module]):
            target.compile(mode=mode)
    return model
