"""Save and load model + training state: atomic writes, safe reads, resume with fallback.

A checkpoint file ``<save_dir>/<name>.pth`` is a dict ``{"model": state_dict, "<key>":
checkpointable.state_dict(), ..., **extra}`` (extra: e.g. ``iteration``); ``last_checkpoint``
holds the basename of the newest one. Besides our own files, ``load`` reads a plain
state_dict (e.g. torchvision weights), detectron2 checkpoints (model-zoo ``.pkl`` holding numpy
arrays, ``.pth``) and Caffe2 ImageNet ``.pkl`` backbones. A state_dict in a layout of
:data:`FOREIGN_LAYOUTS` (recognised by its key names: detectron2, Caffe2 ResNet, torchvision
classification ResNet, torchvision Mask R-CNN) is converted to our names before loading.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any, Callable, Collection, Dict, List, NamedTuple, Optional

import torch
from fvcore.common.checkpoint import Checkpointer as _FvCheckpointer
from fvcore.common.checkpoint import PeriodicCheckpointer

from ..utils.file_io import PathManager, atomic_write_bytes, torch_save_atomic
from .detectron2_layout import (
    convert_caffe2_resnet_state_dict,
    convert_detectron2_state_dict,
    is_caffe2_resnet_state_dict,
    is_detectron2_state_dict,
)
from .key_report import drop_loaded_aliases, format_grouped_keys
from .safe_pickle import UnsafePickleError, restricted_load
from .torchvision_maskrcnn import convert_torchvision_maskrcnn_state_dict, is_torchvision_maskrcnn_state_dict
from .torchvision_resnet import convert_torchvision_resnet_state_dict

__all__ = ["Checkpointer", "CheckpointError", "PeriodicCheckpointer", "ForeignLayout", "FOREIGN_LAYOUTS"]

_PERIODIC_NAME = re.compile(r"^model_(\d+)\.pth$")


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read (truncated, corrupt, or holding unsafe objects)."""


class ForeignLayout(NamedTuple):
    """A state_dict layout of another library, recognised by its key names and converted to ours.

    ``matches(keys)`` says whether a bare state_dict has this layout; ``convert(state_dict,
    model)`` returns it under the model's names (the model tells, e.g., where its ResNet sits).
    """

    name: str
    matches: Callable[[Collection[str]], bool]
    convert: Callable[[Dict[str, Any], torch.nn.Module], Dict[str, Any]]


def _is_torchvision_resnet(keys: Collection[str]) -> bool:
    return "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys)


def _resnet_prefix(model: torch.nn.Module, layout: str) -> str:
    """Where the model's one ResNet sits, e.g. ``"backbone.bottom_up."``."""
    stems = [k[: -len("stem.conv1.weight")] for k in model.state_dict() if k.endswith("stem.conv1.weight")]
    if len(stems) != 1:
        raise CheckpointError(
            f"The checkpoint is a {layout} backbone, but the model has {len(stems)} ResNets "
            "(parameters '*stem.conv1.weight'); it can only be loaded into a model with exactly one."
        )
    return stems[0]


def _relocate_stages(converted: Dict[str, Any], model: torch.nn.Module, prefix: str) -> Dict[str, Any]:
    """Entries of a ResNet stage the model keeps outside its backbone (C4's ``roi_heads.res5``)
    go to the one model key that ends with their name after ``prefix``; others are unchanged."""
    keys = list(model.state_dict())
    known = set(keys)
    relocated = {}
    for key, value in converted.items():
        if key not in known and key.startswith(prefix):
            suffix = "." + key[len(prefix):]
            candidates = [k for k in keys if k.endswith(suffix)]
            key = candidates[0] if len(candidates) == 1 else key
        relocated[key] = value
    return relocated


def _convert_torchvision_resnet(state_dict: Dict[str, Any], model: torch.nn.Module) -> Dict[str, Any]:
    """Load a classification ResNet into the model's ResNet, wherever it sits (``backbone.bottom_up.`` ...)."""
    prefix = _resnet_prefix(model, "torchvision classification ResNet")
    converted = convert_torchvision_resnet_state_dict(
        {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}, prefix=prefix)
    return _relocate_stages(converted, model, prefix)


def _convert_caffe2_resnet(state_dict: Dict[str, Any], model: torch.nn.Module) -> Dict[str, Any]:
    prefix = _resnet_prefix(model, "Caffe2 ImageNet ResNet")
    return _relocate_stages(convert_caffe2_resnet_state_dict(state_dict, prefix=prefix), model, prefix)


#: Layouts tried, in order, on a checkpoint's state_dict; a project may append its own.
FOREIGN_LAYOUTS: List[ForeignLayout] = [
    ForeignLayout("detectron2", is_detectron2_state_dict,
                  lambda state_dict, model: convert_detectron2_state_dict(state_dict)),
    ForeignLayout("Caffe2 ImageNet ResNet", is_caffe2_resnet_state_dict, _convert_caffe2_resnet),
    ForeignLayout("torchvision Mask R-CNN", is_torchvision_maskrcnn_state_dict,
                  lambda state_dict, model: convert_torchvision_maskrcnn_state_dict(state_dict)),
    ForeignLayout("torchvision classification ResNet", _is_torchvision_resnet, _convert_torchvision_resnet),
]
# Entries of detectron2 model-zoo files that describe the file, not the model.
_DETECTRON2_FILE_TAGS = ("__author__", "matching_heuristics")


class Checkpointer(_FvCheckpointer):
    """fvcore's ``Checkpointer`` (``Checkpointer(model, save_dir, optimizer=..., scheduler=...,
    trainer=...)``; anything with ``state_dict``/``load_state_dict`` can be checkpointed) with:

    - atomic saves: the checkpoint, then ``last_checkpoint``, are written to a temporary
      file renamed into place, so an interrupted save never leaves a half-written file;
    - safe loads: ``torch.load(weights_only=True)``, and ``.pkl`` files through
      ``restricted_load`` (numpy arrays only); unreadable files raise ``CheckpointError``
      naming the file;
    - ``resume_or_load`` falling back to the newest older ``model_*.pth`` when the file
      named by ``last_checkpoint`` is unreadable;
    - a plain-text report of missing / unexpected / shape-mismatched model keys;
    - ``path`` may be ``detectron2://...`` or ``http(s)://...``: downloaded once into the cache of
      :func:`~seg_research.utils.download.resolve_weights`.
    """

    def __init__(self, model: torch.nn.Module, save_dir: str = "", *, save_to_disk: bool = True,
                 **checkpointables: Any) -> None:
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        # ours, not fvcore's: URLs and detectron2:// resolve through the download cache (utils.download)
        self.path_manager = PathManager
        self.logger = logging.getLogger(__name__)

    def save(self, name: str, *, tag_last: bool = True, **kwargs: Any) -> None:
        """Write ``<save_dir>/<name>.pth`` (model, checkpointables, ``kwargs``), then tag it
        in ``last_checkpoint`` unless ``tag_last`` is False (e.g. ``model_best.pth``, which
        ``--resume`` must not pick). Does nothing without ``save_dir`` or with ``save_to_disk=False``."""
        if not self.save_dir or not self.save_to_disk:
            return
        data: Dict[str, Any] = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        torch_save_atomic(data, save_file)
        if tag_last:
            self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_bytes(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename.encode("utf-8"))

    def load(self, path: str, checkpointables: Optional[List[str]] = None) -> Dict[str, Any]:
        """Load ``path`` (local file or URL; ``""`` loads nothing) into the model and the
        named checkpointables (all when ``None``). Returns the remaining entries
        (e.g. ``{"iteration": 4999}``)."""
        if path and "://" not in path and not os.path.isfile(path):
            raise FileNotFoundError(
                f"Checkpoint '{path}' does not exist. Check MODEL.WEIGHTS, or the file named in "
                f"'{os.path.join(self.save_dir, 'last_checkpoint')}' when resuming."
            )
        return super().load(path, checkpointables=checkpointables)

    def _load_file(self, f: str) -> Dict[str, Any]:
        try:
            if f.endswith(".pkl"):
                with open(f, "rb") as fh:
                    data = restricted_load(fh)
            else:
                data = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        except UnsafePickleError as e:
            raise CheckpointError(f"Cannot load checkpoint '{f}': {e}") from e
        except Exception as e:  # a corrupt file makes the unpicklers fail in many ways (KeyError, OverflowError, ...)
            raise CheckpointError(
                f"Cannot load checkpoint '{f}': {type(e).__name__}: {e}\nThe file is truncated or corrupt, or "
                "holds objects other than tensors / numpy arrays / numbers / containers (refused for safety). "
                "Re-create or re-download it, or point to another checkpoint."
            ) from e
        if not isinstance(data, dict):
            raise CheckpointError(f"Checkpoint '{f}' holds a {type(data).__name__}, expected a dict (a state_dict).")
        if "blobs" in data:  # a Caffe2 ImageNet .pkl: {"blobs": {name: array}}
            data = {"model": data["blobs"]}
        elif "model" not in data:  # a bare state_dict, e.g. torchvision weights
            data = {"model": data}
        for tag in _DETECTRON2_FILE_TAGS:
            data.pop(tag, None)
        data["model"] = self._convert_foreign_layout(data["model"], f)
        return data

    def _convert_foreign_layout(self, state_dict: Dict[str, Any], f: str) -> Dict[str, Any]:
        """Convert a state_dict of a known foreign layout (:data:`FOREIGN_LAYOUTS`) to our names."""
        for layout in FOREIGN_LAYOUTS:
            if layout.matches(state_dict.keys()):
                try:
                    converted = layout.convert(state_dict, self.model)
                except ValueError as e:
                    raise CheckpointError(f"Checkpoint '{f}' looks like a {layout.name} state_dict but cannot be "
                                          f"converted: {e}") from e
                self.logger.info(f"Checkpoint '{f}' is a {layout.name} state_dict: converted {len(converted)} "
                                 "entries to this model's names.")
                return converted
        return state_dict

    def _log_incompatible_keys(self, incompatible: Any) -> None:
        mismatched = {k for k, _, _ in incompatible.incorrect_shapes}
        missing_all = set(incompatible.missing_keys) | mismatched
        num_model = len(self.model.state_dict())
        self.logger.info(
            f"Loaded {num_model - len(missing_all)} of {num_model} model tensors from the checkpoint; "
            f"{len(mismatched)} skipped (shape mismatch), {len(missing_all) - len(mismatched)} missing, "
            f"{len(incompatible.unexpected_keys)} checkpoint entries unused."
        )
        for key, shape_checkpoint, shape_model in incompatible.incorrect_shapes:
            self.logger.warning(
                f"Skipped '{key}': shape {tuple(shape_checkpoint)} in the checkpoint but {tuple(shape_model)} in "
                "the model (e.g. a different NUM_CLASSES); it keeps its initial value."
            )
        missing = [k for k in drop_loaded_aliases(self.model, incompatible.missing_keys) if k not in mismatched]
        if missing:
            self.logger.warning(
                f"{len(missing)} model parameters/buffers are not in the checkpoint and keep their initial "
                f"values:\n{format_grouped_keys(missing)}"
            )
        if incompatible.unexpected_keys:
            self.logger.warning(
                f"{len(incompatible.unexpected_keys)} checkpoint entries are not used by the model:\n"
                f"{format_grouped_keys(incompatible.unexpected_keys)}"
            )

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        """With ``resume`` and a ``last_checkpoint`` in ``save_dir``: load that checkpoint
        with every checkpointable (falling back, with a warning, to the newest older
        ``model_*.pth`` that loads when it is unreadable). Otherwise load the model only
        from ``path`` (MODEL.WEIGHTS; ``""`` keeps the initialization).

        Returns the remaining checkpoint entries, e.g. ``{"iteration": 4999}``.
        """
        if not (resume and self.has_checkpoint()):
            return self.load(path, checkpointables=[])
        last = self.get_checkpoint_file()
        candidates = [last] + self._older_periodic_checkpoints(last)
        for candidate, fallback in zip(candidates, candidates[1:] + [None], strict=True):
            try:
                return self.load(candidate)
            except (CheckpointError, FileNotFoundError) as e:
                error = e
                if fallback is not None:
                    self.logger.warning(f"Cannot resume from '{candidate}' ({e}); falling back to '{fallback}'.")
        raise CheckpointError(
            f"Cannot resume from '{self.save_dir}': '{last}' (named in last_checkpoint) and every older "
            f"model_*.pth failed to load; the last error was: {error}\nRestore a valid checkpoint, or delete "
            "last_checkpoint to start from MODEL.WEIGHTS."
        ) from error

    def _older_periodic_checkpoints(self, last: str) -> List[str]:
        """``model_NNNNNNN.pth`` files in ``save_dir`` older than ``last``, newest first
        (all of them when ``last`` is not a periodic checkpoint, e.g. ``model_final.pth``)."""
        last_match = _PERIODIC_NAME.match(os.path.basename(last))
        limit = int(last_match.group(1)) if last_match else float("inf")
        numbered = []
        for name in self.path_manager.ls(self.save_dir):
            match = _PERIODIC_NAME.match(name)
            if match and int(match.group(1)) < limit:
                numbered.append((int(match.group(1)), os.path.join(self.save_dir, name)))
        return [path for _, path in sorted(numbered, reverse=True)]
