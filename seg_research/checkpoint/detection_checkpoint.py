"""``DetectionCheckpointer``: detectron2's name and constructor for our :class:`Checkpointer`."""
from __future__ import annotations

from typing import Any, Optional

from torch import nn

from ..utils import comm
from .checkpointer import Checkpointer

__all__ = ["DetectionCheckpointer"]


class DetectionCheckpointer(Checkpointer):
    """:class:`Checkpointer` with detectron2's constructor
    ``DetectionCheckpointer(model, save_dir="", *, save_to_disk=None, **checkpointables)``.

    ``save_to_disk=None`` saves only in the main process (rank 0), so every rank can build one
    and call ``save`` without racing on the files. Loading is the Checkpointer's: our
    checkpoints, detectron2 model-zoo ``.pkl`` / ``.pth`` files, Caffe2 ImageNet ``.pkl`` and
    torchvision weights, local or ``detectron2://`` / ``http(s)://``; ``resume_or_load(path,
    resume=...)`` as detectron2's (resume from ``save_dir/last_checkpoint``, else load ``path``).
    A DistributedDataParallel model is unwrapped.
    """

    def __init__(self, model: nn.Module, save_dir: str = "", *, save_to_disk: Optional[bool] = None,
                 **checkpointables: Any) -> None:
        super().__init__(model, save_dir, save_to_disk=comm.is_main_process() if save_to_disk is None else save_to_disk,
                         **checkpointables)
