"""torchvision classification ResNet weights -> ``modeling.backbone.ResNet``'s names (the stage modules are
torchvision's own, under detectron2's stage names), used by the Checkpointer and the Mask R-CNN converter."""
from __future__ import annotations

from typing import Dict, Mapping

import torch

__all__ = ["convert_torchvision_resnet_state_dict", "TORCHVISION_TO_OURS"]

#: torchvision's top-level ResNet modules -> ours (``fc``, the classifier, has no counterpart).
TORCHVISION_TO_OURS = {
    "conv1": "stem.conv1",
    "bn1": "stem.bn1",
    "layer1": "res2",
    "layer2": "res3",
    "layer3": "res4",
    "layer4": "res5",
}


def convert_torchvision_resnet_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = ""
) -> Dict[str, torch.Tensor]:
    """Rename a torchvision classification ResNet state_dict (e.g. ``resnet50().state_dict()``)
    to :class:`seg_research.modeling.backbone.ResNet`'s names: ``conv1.* -> stem.conv1.*``, ``bn1.* -> stem.bn1.*``,
    ``layer{i}.* -> res{i+1}.*``; ``fc.*`` (the classifier) is dropped.

    Args:
        prefix: prepended to every new key, e.g. ``"bottom_up."`` to load into an FPN whose
            ``bottom_up`` is a ``ResNet``.

    Note torchvision's weights put the stride on the 3×3 conv: build the ResNet with
    ``stride_in_1x1=False`` to reproduce them.
    """
    converted, unknown = {}, []
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head == "fc":
            continue
        if head not in TORCHVISION_TO_OURS:
            unknown.append(key)
            continue
        converted[f"{prefix}{TORCHVISION_TO_OURS[head]}.{rest}"] = value
    if unknown:
        raise ValueError(
            f"Not a torchvision classification ResNet state_dict: unexpected keys {unknown[:5]}"
            f"{' ...' if len(unknown) > 5 else ''}. Expected top-level modules {sorted(TORCHVISION_TO_OURS)} and fc."
        )
    return converted
