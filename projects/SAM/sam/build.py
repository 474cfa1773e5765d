"""Build a Segment Anything model from a user-supplied checkpoint (the ``segment-anything`` package)."""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

from seg_research.utils.download import get_cache_dir

__all__ = ["SAM_CHECKPOINT_FILES", "default_sam_checkpoint", "build_sam", "import_segment_anything"]

#: model type (segment-anything's ``sam_model_registry`` key) -> the released checkpoint's file name
SAM_CHECKPOINT_FILES = {"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_h": "sam_vit_h_4b8939.pth"}


def import_segment_anything():
    """The ``segment_anything`` module, or an ImportError saying how to install it."""
    try:
        import segment_anything
    except ImportError as e:
        raise ImportError("The SAM project needs the segment-anything package: pip install 'seg_research[sam]' "
                          "(or pip install segment-anything==1.0).") from e
    return segment_anything


def default_sam_checkpoint(model_type: str) -> str:
    """Where the checkpoint of ``model_type`` is looked for: ``$SEG_RESEARCH_CACHE/sam/<file>``
    (default ``~/.cache/seg_research/sam/<file>``)."""
    if model_type not in SAM_CHECKPOINT_FILES:
        raise ValueError(f"Unknown SAM model type {model_type!r}; use one of {sorted(SAM_CHECKPOINT_FILES)}.")
    return os.path.join(get_cache_dir(), "sam", SAM_CHECKPOINT_FILES[model_type])


def build_sam(model_type: str = "vit_b", checkpoint: Optional[str] = None, device: str = "cpu") -> nn.Module:
    """segment-anything's ``Sam`` of ``model_type`` with the weights of ``checkpoint``, in eval mode.

    The weights are read with ``torch.load(weights_only=True)`` (segment-anything's own builder
    unpickles arbitrary objects). Nothing is downloaded: the user supplies the checkpoint.

    Args:
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
        checkpoint: the ``.pth`` file; None: :func:`default_sam_checkpoint`.
        device: where the model goes.

    Raises:
        FileNotFoundError: naming the checkpoint file, where it goes and where it comes from.
    """
    path = checkpoint or default_sam_checkpoint(model_type)
    if model_type not in SAM_CHECKPOINT_FILES:
        raise ValueError(f"Unknown SAM model type {model_type!r}; use one of {sorted(SAM_CHECKPOINT_FILES)}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"SAM checkpoint '{path}' not found. Download {SAM_CHECKPOINT_FILES[model_type]} (the {model_type} "
            f"checkpoint in the 'Model Checkpoints' list of the segment-anything repository) and put it at "
            f"'{default_sam_checkpoint(model_type)}', or pass its path (--checkpoint PATH).")
    segment_anything = import_segment_anything()
    sam = segment_anything.sam_model_registry[model_type](checkpoint=None)
    sam.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return sam.to(device).eval()
