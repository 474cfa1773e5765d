"""``add_deeplab_config``: the DeepLabV3+ project's config keys."""
from seg_research.config import CfgNode as CN

__all__ = ["add_deeplab_config"]


def add_deeplab_config(cfg: CN) -> None:
    """Add the DeepLabV3+ head keys under ``MODEL.SEM_SEG_HEAD`` (detectron2's DeepLab names) to
    ``cfg`` (in place), before merging a DeepLab config file. The backbone's output stride is
    set by ``MODEL.RESNETS.RES4_DILATION`` / ``RES5_DILATION`` (library keys)."""
    head = cfg.MODEL.SEM_SEG_HEAD
    # Channels of each ASPP branch and of its output.
    head.ASPP_CHANNELS = 256
    # Atrous rates of the 3x3 ASPP branches: (6, 12, 18) at output stride 16, (12, 24, 36) at 8.
    head.ASPP_DILATIONS = [6, 12, 18]
    head.ASPP_DROPOUT = 0.1
    # Channels the low-level feature (the first of IN_FEATURES by stride) is reduced to.
    head.PROJECT_CHANNELS = 48
