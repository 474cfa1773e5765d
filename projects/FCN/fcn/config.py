"""``add_fcn_config``: the FCN project's config keys."""
from seg_research.config import CfgNode as CN

__all__ = ["add_fcn_config"]


def add_fcn_config(cfg: CN) -> None:
    """Add ``MODEL.FCN.*`` to ``cfg`` (in place), before merging an FCN config file. The variant
    (32s / 16s / 8s) is ``MODEL.SEM_SEG_HEAD.IN_FEATURES``: ``[res5]``, ``[res4, res5]``,
    ``[res3, res4, res5]``."""
    cfg.MODEL.FCN = CN()
    # 2x upsampling of the coarser scores before each skip is added: "learned" (a transposed conv
    # initialised to bilinear interpolation, the paper) or "bilinear" (fixed).
    cfg.MODEL.FCN.UPSAMPLE = "learned"
    # Dropout after each of the two "fc6/fc7" convs on the deepest feature (the paper: 0.5).
    cfg.MODEL.FCN.DROPOUT = 0.5
