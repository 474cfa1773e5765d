"""Training metrics: an ``EventStorage`` of scalar histories, and writers that publish them.

Hooks and models call ``get_event_storage().put_scalar(...)`` during training; the
``PeriodicWriter`` hook asks each ``EventWriter`` (``metrics.json`` lines, console,
TensorBoard) to publish what is new.
"""
from __future__ import annotations

import datetime
import json
import logging
from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from fvcore.common.history_buffer import HistoryBuffer

from .file_io import PathManager

__all__ = [
    "EventStorage", "get_event_storage", "current_event_storage", "flatten_results_dict",
    "EventWriter", "JSONWriter", "CommonMetricPrinter", "TensorboardXWriter",
]

_CURRENT_STORAGE_STACK: List["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """The innermost ``EventStorage`` being used (``with EventStorage(...)``).

    Raises ``RuntimeError`` outside such a block, e.g. when a model that logs
    metrics is called outside a trainer.
    """
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError(
            "get_event_storage() was called outside an EventStorage. Run this code inside "
            "`with EventStorage(start_iter):` (trainers open one in train())."
        )
    return _CURRENT_STORAGE_STACK[-1]


def current_event_storage() -> Optional["EventStorage"]:
    """The innermost ``EventStorage`` being used, or None outside every ``with EventStorage(...)``.

    For code that logs only when a trainer (or a test) opened a storage, and must keep working
    without one, e.g. a model's training diagnostics::

        storage = current_event_storage()
        if storage is not None:
            storage.put_scalar("rpn/num_pos_anchors", ...)
    """
    return _CURRENT_STORAGE_STACK[-1] if _CURRENT_STORAGE_STACK else None


class EventStorage:
    """Scalar histories indexed by training iteration.

    ``put_scalar(name, value)`` appends ``(value, iter)`` to the history of ``name``;
    writers read ``latest()`` / ``latest_with_smoothing_hint()`` to publish it.
    """

    def __init__(self, start_iter: int = 0) -> None:
        self._history: Dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: Dict[str, bool] = {}
        self._latest_scalars: Dict[str, Tuple[float, int]] = {}
        self._iter = int(start_iter)
        self._vis_data: List[Tuple[str, torch.Tensor, int]] = []

    def put_scalar(self, name: str, value: Any, smoothing_hint: bool = True,
                   cur_iter: Optional[int] = None) -> None:
        """Record ``value`` (a number or 1-element tensor) for ``name`` at ``cur_iter``
        (default: the current iteration).

        ``smoothing_hint=True`` asks writers to publish a windowed median (losses,
        timings); ``False`` publishes the exact value (lr, evaluation results). The
        hint of a name may not change.
        """
        try:
            value = float(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Scalar '{name}' must be a number or a one-element tensor, got {value!r}.") from e
        previous_hint = self._smoothing_hints.setdefault(name, smoothing_hint)
        if previous_hint != smoothing_hint:
            raise ValueError(
                f"Scalar '{name}' was put with smoothing_hint={previous_hint} before and "
                f"smoothing_hint={smoothing_hint} now; use one hint per name."
            )
        cur_iter = self._iter if cur_iter is None else int(cur_iter)
        self._history[name].update(value, cur_iter)
        self._latest_scalars[name] = (value, cur_iter)

    def put_scalars(self, *, smoothing_hint: bool = True, cur_iter: Optional[int] = None, **kwargs: Any) -> None:
        """``put_scalar`` for each ``name=value`` keyword."""
        for name, value in kwargs.items():
            self.put_scalar(name, value, smoothing_hint=smoothing_hint, cur_iter=cur_iter)

    def history(self, name: str) -> HistoryBuffer:
        """The ``HistoryBuffer`` of ``name``; ``KeyError`` if it was never put."""
        if name not in self._history:
            raise KeyError(f"No history recorded for '{name}'. Recorded: {sorted(self._history)}.")
        return self._history[name]

    def histories(self) -> Dict[str, HistoryBuffer]:
        """All histories, by name."""
        return dict(self._history)

    def smoothing_hints(self) -> Dict[str, bool]:
        """``{name: smoothing_hint}`` for every name put so far."""
        return dict(self._smoothing_hints)

    def latest(self) -> Dict[str, Tuple[float, int]]:
        """``{name: (latest value, iteration it was put at)}``."""
        return dict(self._latest_scalars)

    def latest_with_smoothing_hint(self, window_size: int = 20) -> Dict[str, Tuple[float, int]]:
        """Like ``latest()``, but names put with ``smoothing_hint=True`` give the median
        of their last ``window_size`` values."""
        result = {}
        for name, (value, it) in self._latest_scalars.items():
            if self._smoothing_hints[name]:
                value = self._history[name].median(window_size)
            result[name] = (value, it)
        return result

    def put_image(self, img_name: str, img_tensor: torch.Tensor) -> None:
        """Queue an image for the writers that show images (TensorBoard) at the current iteration.

        Args:
            img_name: the image's tag.
            img_tensor: (3, H, W) RGB, float in [0, 1] or uint8 in [0, 255].
        """
        if img_tensor.dim() != 3 or img_tensor.shape[0] != 3:
            raise ValueError(f"put_image('{img_name}') takes a (3, H, W) RGB tensor; got shape {tuple(img_tensor.shape)}.")
        self._vis_data.append((img_name, img_tensor.detach().cpu(), self._iter))

    @property
    def vis_data(self) -> List[Tuple[str, torch.Tensor, int]]:
        """Images put since the last :meth:`clear_images`: ``(name, (3, H, W) tensor, iteration)``."""
        return list(self._vis_data)

    def clear_images(self) -> None:
        """Drop the queued images (a writer calls it once it has written them)."""
        self._vis_data = []

    @property
    def iter(self) -> int:
        """The current iteration; scalars are put at it unless ``cur_iter`` is given."""
        return self._iter

    @iter.setter
    def iter(self, value: int) -> None:
        self._iter = int(value)

    def step(self) -> None:
        """Advance to the next iteration."""
        self._iter += 1

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self, "EventStorage contexts must be exited in LIFO order"
        _CURRENT_STORAGE_STACK.pop()


def flatten_results_dict(results: Mapping[str, Any]) -> Dict[str, Any]:
    """Flatten nested evaluation results, joining keys with "/".

    ``{"segm": {"AP": 50.1, "AP-cat": 3.0}}`` -> ``{"segm/AP": 50.1, "segm/AP-cat": 3.0}``.
    """
    flat: Dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, Mapping):
            for sub_key, sub_value in flatten_results_dict(value).items():
                flat[f"{key}/{sub_key}"] = sub_value
        else:
            flat[key] = value
    return flat


class EventWriter:
    """Publishes the current ``EventStorage``; called periodically by the ``PeriodicWriter`` hook."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _NewEntriesWriter(EventWriter):
    """Shared bookkeeping: publish only scalars put at an iteration newer than the last publish."""

    def __init__(self, window_size: int) -> None:
        self._window_size = window_size
        self._last_write = -1

    def _new_entries_by_iter(self) -> Dict[int, Dict[str, float]]:
        by_iter: Dict[int, Dict[str, float]] = defaultdict(dict)
        for name, (value, it) in get_event_storage().latest_with_smoothing_hint(self._window_size).items():
            if it > self._last_write:
                by_iter[it][name] = value
        if by_iter:
            self._last_write = max(by_iter)
        return dict(sorted(by_iter.items()))


class JSONWriter(_NewEntriesWriter):
    """Appends one JSON object per iteration to ``json_file`` (JSON lines):
    ``{"iteration": 19, "total_loss": 0.42, "lr": 0.001, "segm/AP": 50.1, ...}``.

    Smoothed scalars are the median of their last ``window_size`` values. Each write
    covers only scalars newer than the previous write, so results put at iteration i
    (e.g. by ``EvalHook``) land in the line of iteration i. The file is flushed after
    every write.
    """

    def __init__(self, json_file: str, window_size: int = 20) -> None:
        super().__init__(window_size)
        self._json_file = json_file
        self._file = PathManager.open(json_file, "a")

    def write(self) -> None:
        """Append the new lines; raises ``OSError`` naming the file when the write fails (e.g. disk full)."""
        try:
            for it, scalars in self._new_entries_by_iter().items():
                self._file.write(json.dumps({"iteration": it, **scalars}, sort_keys=False) + "\n")
            self._file.flush()
        except OSError as e:
            raise OSError(e.errno, f"Failed writing metrics to '{self._json_file}': {e.strerror}. Free disk space "
                                   f"or choose another OUTPUT_DIR.") from e

    def close(self) -> None:
        self._file.close()


class TensorboardXWriter(_NewEntriesWriter):
    """Writes new scalars, and the images models put (``VIS_PERIOD``), to TensorBoard event files
    in ``log_dir``."""

    def __init__(self, log_dir: str, window_size: int = 20, **summary_writer_kwargs: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        super().__init__(window_size)
        self._writer = SummaryWriter(log_dir, **summary_writer_kwargs)

    def write(self) -> None:
        for it, scalars in self._new_entries_by_iter().items():
            for name, value in scalars.items():
                self._writer.add_scalar(name, value, it)
        storage = get_event_storage()
        for name, image, it in storage.vis_data:
            self._writer.add_image(name, image, it)
        # Images are large: once written they are dropped (scalars keep their history).
        storage.clear_images()
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Logs one console line of training progress:

    ``eta: 0:01:23  iter: 19  total_loss: 1.234  loss_x: 0.5  time: 0.1234  last_time: 0.1301
    data_time: 0.0012  lr: 0.001  max_mem: 123M``

    Losses, ``time`` and ``data_time`` are medians over the last ``window_size`` values;
    ETA = median iteration time x remaining iterations; ``max_mem`` (peak allocated CUDA
    memory) only appears when CUDA is available. Nothing is printed once training has
    finished (storage.iter == max_iter), so the final line is not repeated.
    """

    _ETA_WINDOW = 1000

    def __init__(self, max_iter: int, window_size: int = 20) -> None:
        self.logger = logging.getLogger(__name__)
        self._max_iter = max_iter
        self._window_size = window_size

    def write(self) -> None:
        storage = get_event_storage()
        iteration = storage.iter
        if iteration == self._max_iter:
            return
        histories = storage.histories()
        hints = storage.smoothing_hints()
        parts: List[str] = []
        if "time" in histories:
            eta = histories["time"].median(self._ETA_WINDOW) * (self._max_iter - iteration - 1)
            parts.append(f"eta: {datetime.timedelta(seconds=int(eta))}")
        parts.append(f"iter: {iteration}")
        loss_names = sorted((n for n in histories if "loss" in n and hints[n]),
                            key=lambda n: (n != "total_loss", n))
        parts += [f"{n}: {histories[n].median(self._window_size):.4g}" for n in loss_names]
        if "time" in histories:
            parts.append(f"time: {histories['time'].median(self._window_size):.4f}")
            parts.append(f"last_time: {histories['time'].latest():.4f}")
        if "data_time" in histories:
            parts.append(f"data_time: {histories['data_time'].median(self._window_size):.4f}")
        if "lr" in histories:
            parts.append(f"lr: {histories['lr'].latest():.5g}")
        if torch.cuda.is_available():
            parts.append(f"max_mem: {torch.cuda.max_memory_allocated() / 1024 / 1024:.0f}M")
        self.logger.info("  ".join(parts))
