"""detectron2's DeepLab project surface that other projects build on, as ``detectron2.projects.deeplab``
is: :func:`add_deeplab_config` (its config keys) and :func:`build_lr_scheduler` (with the poly schedule
``WarmupPolyLR``). Mask2Former's ``train_net.py`` imports both.

The DeepLabV3+ model itself (head and ASPP) is the repository's ``projects/DeepLabV3Plus``.
"""
from .build_solver import build_lr_scheduler
from .config import add_deeplab_config
from .lr_scheduler import WarmupPolyLR

__all__ = ["add_deeplab_config", "build_lr_scheduler", "WarmupPolyLR"]
