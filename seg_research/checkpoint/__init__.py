"""Checkpoint saving/loading (ours, plain/torchvision state_dicts, detectron2 .pkl)."""
from .checkpointer import CheckpointError, Checkpointer, PeriodicCheckpointer
from .safe_pickle import restricted_load

__all__ = ["CheckpointError", "Checkpointer", "PeriodicCheckpointer", "restricted_load"]
