"""``add_unet_config``: the U-Net project's config keys."""
from seg_research.config import CfgNode as CN

__all__ = ["add_unet_config"]


def add_unet_config(cfg: CN) -> None:
    """Add ``MODEL.UNET.*`` to ``cfg`` (in place), before merging a U-Net config file."""
    cfg.MODEL.UNET = CN()
    # Encoder levels (UNetEncoder outputs enc1 .. enc<DEPTH>, list them in MODEL.SEM_SEG_HEAD.IN_FEATURES)
    # and channels of the first level, doubled at each level. The paper: 5 levels, 64 .. 1024 channels.
    cfg.MODEL.UNET.DEPTH = 5
    cfg.MODEL.UNET.BASE_CHANNELS = 64
    # Encoder norm: "" (none, the paper), "BN", "SyncBN", "GN". The decoder uses MODEL.SEM_SEG_HEAD.NORM.
    cfg.MODEL.UNET.NORM = "BN"
    # Decoder upsampling: "transposed" (2x2 up-convolution, the paper) or "bilinear" (+ 1x1 conv).
    cfg.MODEL.UNET.UPSAMPLE = "transposed"
    # Deep supervision (nnU-Net): loss weight of a 1x1 classifier on each decoder level below the
    # top, finest first (strides 2, 4, ... on UNetEncoder); [] for none. Training only.
    cfg.MODEL.UNET.DEEP_SUPERVISION_WEIGHTS = []
