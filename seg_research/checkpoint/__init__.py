"""Checkpoint saving/loading (ours, plain/torchvision state_dicts, detectron2 .pkl)."""
from .checkpointer import Checkpointer, CheckpointError, PeriodicCheckpointer
from .detection_checkpoint import DetectionCheckpointer
from .safe_pickle import restricted_load

__all__ = ["CheckpointError", "Checkpointer", "DetectionCheckpointer", "PeriodicCheckpointer", "restricted_load"]
