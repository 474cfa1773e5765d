"""Dataset wrappers used by the loaders."""
from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing
import os
import random
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch
import torch.utils.data as torchdata

from ..utils.absent import absent_names
from .errors import DataError

__all__ = ["DatasetFromList", "MapDataset", "Batch", "seeded_rng", "ON_BAD_SAMPLE_MODES"]

logger = logging.getLogger(__name__)

#: values of DATALOADER.ON_BAD_SAMPLE
ON_BAD_SAMPLE_MODES = ("error", "skip")
#: key under which a mapped dict carries how many bad samples its draw replaced; the batch
#: collator moves it to :attr:`Batch.skipped_samples`, so models never see it
SKIPPED_SAMPLES_KEY = "_skipped_samples"
#: a draw gives up (raising the last DataError) after this many bad samples in a row
MAX_CONSECUTIVE_BAD_SAMPLES = 50


class Batch(list):
    """A batch of mapped dicts (a plain ``list`` for models) that also says how many bad
    samples were replaced while drawing it (``DATALOADER.ON_BAD_SAMPLE skip``)."""

    def __init__(self, items: Sequence[Any] = (), skipped_samples: int = 0) -> None:
        super().__init__(items)
        self.skipped_samples = skipped_samples


class DatasetFromList(torchdata.Dataset):
    """A list of dataset dicts as a map-style Dataset. ``copy=True`` hands out deep copies
    so a mapper cannot corrupt the registered records."""

    def __init__(self, lst: List[dict], copy: bool = True) -> None:
        self._lst = lst
        self._copy = copy

    def __len__(self) -> int:
        return len(self._lst)

    def __getitem__(self, idx: int) -> dict:
        return copy.deepcopy(self._lst[idx]) if self._copy else self._lst[idx]


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed python/numpy/torch global RNGs inside the block, restoring their states after."""
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class _WorkerSlots:
    """Which dataset index each DataLoader worker is mapping, in shared memory, so that the
    main process can name the sample a worker was mapping when it died."""

    def __init__(self, num_workers: int) -> None:
        self._slots = multiprocessing.Array("q", [-1] * (2 * num_workers), lock=False)  # (pid, index) per worker

    def set(self, worker_id: int, index: int) -> None:
        self._slots[2 * worker_id] = os.getpid()
        self._slots[2 * worker_id + 1] = index

    def in_flight(self) -> Dict[int, int]:
        """``{worker pid: dataset index it is mapping}`` (index -1: between samples)."""
        return {self._slots[i]: self._slots[i + 1] for i in range(0, len(self._slots), 2) if self._slots[i] >= 0}


class MapDataset(torchdata.Dataset):
    """Apply ``map_func`` (a mapper) to items of ``dataset``.

    Items are requested either by dataset index (test loaders) or by
    ``(stream_position, dataset_index)`` (training loaders). In the latter case the random
    augmentations of that draw are seeded by ``(seed, stream_position)``: the data of an
    iteration does not depend on the number of workers, and a resumed run sees exactly
    the data an uninterrupted one would.

    ``on_bad_sample`` (``DATALOADER.ON_BAD_SAMPLE``) decides what a training draw does when
    ``map_func`` raises :class:`DataError`: ``"error"`` raises it; ``"skip"`` logs the file
    (once per file and process) and maps a replacement drawn from ``(seed, position,
    attempt)``, so the replacement, like the rest of the stream, is the same for any number
    of workers and after a resume. A dict output then carries the number of skipped samples
    under :data:`SKIPPED_SAMPLES_KEY` for the batch collator. Test items (plain indices)
    always raise: an evaluation must see every image.
    """

    def __init__(self, dataset: Sequence, map_func: Callable[[Any], Any], seed: int = 0,
                 on_bad_sample: str = "error") -> None:
        if on_bad_sample not in ON_BAD_SAMPLE_MODES:
            raise ValueError(f"DATALOADER.ON_BAD_SAMPLE must be one of {ON_BAD_SAMPLE_MODES}, got {on_bad_sample!r}.")
        self._dataset = dataset
        self._map_func = map_func
        self._seed = int(seed)
        self._on_bad_sample = on_bad_sample
        self._logged_files: Set[str] = set()
        self._worker_slots: Optional[_WorkerSlots] = None

    def __len__(self) -> int:
        return len(self._dataset)

    def track_workers(self, num_workers: int) -> None:
        """Record in shared memory what each of ``num_workers`` DataLoader workers maps (call
        before the workers start), for :meth:`describe_in_flight`."""
        self._worker_slots = _WorkerSlots(num_workers) if num_workers > 0 else None

    def describe_in_flight(self, pids: Sequence[int] = ()) -> str:
        """The samples being mapped by the workers ``pids`` (all workers when empty), for an error message."""
        in_flight = self._worker_slots.in_flight() if self._worker_slots is not None else {}
        chosen = {pid: index for pid, index in in_flight.items() if index >= 0 and (not pids or pid in pids)}
        if not chosen:
            return "no worker was mapping a sample"
        return "; ".join(f"worker pid {pid} was mapping dataset index {index} ({_describe(self._dataset[index])})"
                         for pid, index in sorted(chosen.items()))

    def _map(self, index: int) -> Any:
        worker = torchdata.get_worker_info()
        if self._worker_slots is None or worker is None:
            return self._map_func(self._dataset[index])
        self._worker_slots.set(worker.id, index)
        try:
            return self._map_func(self._dataset[index])
        finally:
            self._worker_slots.set(worker.id, -1)

    def _replacement(self, position: int, attempt: int) -> Tuple[int, int]:
        """(dataset index, RNG seed) of replacement number ``attempt`` (>= 1) of the draw at ``position``."""
        rng = random.Random(f"{self._seed}:{position}:{attempt}")
        return rng.randrange(len(self._dataset)), rng.getrandbits(63)

    def _skip(self, index: int, error: DataError) -> None:
        name = error.file_name or _describe(self._dataset[index])
        if name not in self._logged_files:
            self._logged_files.add(name)
            logger.warning(f"Skipping a bad sample (DATALOADER.ON_BAD_SAMPLE=skip; logged once per file), a "
                           f"replacement is drawn: {error}")

    def _map_draw(self, position: int, index: int) -> Any:
        seed, attempt = (self._seed * 1_000_003 + position) % 2**63, 0
        while True:
            with seeded_rng(seed):
                try:
                    mapped = self._map(index)
                    break
                except DataError as e:
                    if self._on_bad_sample == "error" or attempt == MAX_CONSECUTIVE_BAD_SAMPLES:
                        raise
                    self._skip(index, e)
            attempt += 1
            index, seed = self._replacement(position, attempt)
        if attempt and isinstance(mapped, dict):
            mapped[SKIPPED_SAMPLES_KEY] = attempt
        return mapped

    def __getitem__(self, item: Union[int, Tuple[int, int]]) -> Any:
        if isinstance(item, tuple):
            return self._map_draw(*item)
        return self._map(item)


def _describe(record: Any) -> str:
    if isinstance(record, dict):
        return f"file_name {record.get('file_name')!r}, image_id {record.get('image_id')!r}"
    return f"a {type(record).__name__}"


ABSENT_NAMES = {
    "ToIterableDataset": "not needed: build_detection_train_loader takes the list of dicts (or DatasetFromList) and "
                         "a sampler from data.samplers directly.",
    "AspectRatioGroupedDataset": "batches are grouped by aspect ratio by data.samplers.GroupedBatchSampler "
                                 "(DATALOADER.ASPECT_RATIO_GROUPING) inside build_batch_data_loader.",
}
__getattr__ = absent_names(__name__, ABSENT_NAMES)
