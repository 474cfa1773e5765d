"""``add_deeplab_config``: detectron2's DeepLab config keys, names and defaults."""
from seg_research.config import CfgNode as CN

__all__ = ["add_deeplab_config"]


def add_deeplab_config(cfg: CN) -> None:
    """Add detectron2 DeepLab's keys to ``cfg`` in place, before merging a config that sets them
    (Mask2Former's configs set the poly schedule's and ``RESNETS.STEM_TYPE`` / ``RES5_MULTI_GRID``).

    The library's ResNet builds the ``"basic"`` stem and no multi-grid (``RES5_MULTI_GRID`` [1, 1, 1]):
    the values Mask2Former's configs set. The head keys are those of detectron2's DeepLabV3(+) heads.
    """
    # Random crops are retried until no single category covers more than this fraction of the crop
    # (RandomCrop_CategoryAreaConstraint; 1.0: any crop).
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0
    # WarmupPolyLR: LR = base_lr * (1 - iter / MAX_ITER) ** POLY_LR_POWER ...
    cfg.SOLVER.POLY_LR_POWER = 0.9
    # ... and at least base_lr * POLY_LR_CONSTANT_ENDING after warmup (0: no floor).
    cfg.SOLVER.POLY_LR_CONSTANT_ENDING = 0.0
    # DeepLab head loss: "cross_entropy" or "hard_pixel_mining".
    cfg.MODEL.SEM_SEG_HEAD.LOSS_TYPE = "hard_pixel_mining"
    # Low-level features fused by the DeepLabV3+ decoder, and the channels each is projected to.
    cfg.MODEL.SEM_SEG_HEAD.PROJECT_FEATURES = ["res2"]
    cfg.MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS = [48]
    # ASPP: channels of each branch, atrous rates of the 3x3 branches, dropout after the fusion.
    cfg.MODEL.SEM_SEG_HEAD.ASPP_CHANNELS = 256
    cfg.MODEL.SEM_SEG_HEAD.ASPP_DILATIONS = [6, 12, 18]
    cfg.MODEL.SEM_SEG_HEAD.ASPP_DROPOUT = 0.1
    cfg.MODEL.SEM_SEG_HEAD.USE_DEPTHWISE_SEPARABLE_CONV = False
    # Backbone: dilation of res4 (output stride 8 with RES5_DILATION), res5's multi-grid rates, stem.
    cfg.MODEL.RESNETS.RES4_DILATION = 1
    cfg.MODEL.RESNETS.RES5_MULTI_GRID = [1, 2, 4]
    # "basic" (one 7x7 conv) or "deeplab" (three 3x3 convs).
    cfg.MODEL.RESNETS.STEM_TYPE = "deeplab"
