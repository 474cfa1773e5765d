"""Dataset wrappers used by the loaders."""
from __future__ import annotations

import contextlib
import copy
import random
from typing import Any, Callable, Iterator, List, Sequence, Tuple, Union

import numpy as np
import torch
import torch.utils.data as torchdata

__all__ = ["DatasetFromList", "MapDataset", "seeded_rng"]


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


class MapDataset(torchdata.Dataset):
    """Apply ``map_func`` (a mapper) to items of ``dataset``.

    Items are requested either by dataset index (test loaders) or by
    ``(stream_position, dataset_index)`` (training loaders). In the latter case the random
    augmentations of that draw are seeded by ``(seed, stream_position)``: the data of an
    iteration does not depend on the number of workers, and a resumed run sees exactly
    the data an uninterrupted one would.
    """

    def __init__(self, dataset: Sequence, map_func: Callable[[Any], Any], seed: int = 0) -> None:
        self._dataset = dataset
        self._map_func = map_func
        self._seed = int(seed)

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, item: Union[int, Tuple[int, int]]) -> Any:
        if isinstance(item, tuple):
            position, index = item
            with seeded_rng((self._seed * 1_000_003 + position) % 2**63):
                return self._map_func(self._dataset[index])
        return self._map_func(self._dataset[item])
