"""Samplers. Training samplers are infinite, seeded and sharded by rank.

The training stream is a concatenation of "epochs" (each a seeded permutation of the
dataset, or of repeat-factor-expanded indices). Global position ``p`` of the stream goes
to rank ``p % world_size``, so the ranks together consume every epoch exactly once.
Because epoch ``e`` depends only on ``(seed, e)``, a sampler can start at any position
cheaply, which is how ``--resume`` continues the data stream exactly.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch.utils.data.sampler import Sampler

from ...utils import comm

__all__ = [
    "TrainingSampler",
    "RepeatFactorTrainingSampler",
    "InferenceSampler",
    "RandomSubsetTrainingSampler",
]


class EpochStreamSampler(Sampler):
    """Infinite sampler over seeded epochs; yields ``(global_position, dataset_index)``
    from :meth:`iter_with_positions` and plain indices from ``__iter__``."""

    def __init__(self, seed: Optional[int] = None) -> None:
        if seed is None:
            seed = comm.shared_random_seed()
        self._seed = int(seed)
        self._rank = comm.get_rank()
        self._world_size = comm.get_world_size()

    @property
    def seed(self) -> int:
        return self._seed

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        raise NotImplementedError

    def _generator(self, epoch: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self._seed * 100_003 + epoch)
        return g

    def iter_with_positions(self) -> Iterator[Tuple[int, int]]:
        """Yield ``(global stream position, dataset index)`` for this rank: rank r's k-th
        item is at global position ``k * world_size + r``."""
        position = self._rank
        epoch_begin = 0
        for epoch in itertools.count():
            indices = self._epoch_indices(epoch)
            epoch_end = epoch_begin + len(indices)
            while position < epoch_end:
                yield position, int(indices[position - epoch_begin])
                position += self._world_size
            epoch_begin = epoch_end

    def __iter__(self) -> Iterator[int]:
        for _, index in self.iter_with_positions():
            yield index


class TrainingSampler(EpochStreamSampler):
    """Infinite stream of shuffled (or sequential) dataset indices, sharded by rank.

    Args:
        size: dataset length.
        shuffle: shuffle each epoch.
        seed: shared by all ranks (``None``: a random seed agreed between ranks).
    """

    def __init__(self, size: int, shuffle: bool = True, seed: Optional[int] = None) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"TrainingSampler(size={size}) needs a positive dataset size.")
        super().__init__(seed)
        self._size = size
        self._shuffle = shuffle

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        if self._shuffle:
            return torch.randperm(self._size, generator=self._generator(epoch))
        return torch.arange(self._size)


class RandomSubsetTrainingSampler(TrainingSampler):
    """Like :class:`TrainingSampler`, but over one fixed random subset of the dataset, e.g. to
    study training on a fraction of the data.

    Args:
        size: dataset length.
        subset_ratio: fraction of the dataset kept, in (0, 1]; ``int(size * subset_ratio)`` images.
        shuffle: shuffle the subset each epoch.
        seed_shuffle: seed of the epochs' shuffling (``None``: a random seed agreed between ranks).
        seed_subset: seed choosing the subset (``None``: a random seed agreed between ranks).
    """

    def __init__(self, size: int, subset_ratio: float, shuffle: bool = True, seed_shuffle: Optional[int] = None,
                 seed_subset: Optional[int] = None) -> None:
        if not 0.0 < subset_ratio <= 1.0:
            raise ValueError(f"RandomSubsetTrainingSampler: subset_ratio must be in (0, 1], got {subset_ratio}.")
        super().__init__(size, shuffle, seed_shuffle)
        subset_size = int(size * subset_ratio)
        if subset_size == 0:
            raise ValueError(f"RandomSubsetTrainingSampler: subset_ratio {subset_ratio} of {size} images keeps none; "
                             "raise subset_ratio.")
        generator = torch.Generator()
        generator.manual_seed(int(comm.shared_random_seed() if seed_subset is None else seed_subset))
        self._subset = torch.randperm(size, generator=generator)[:subset_size]
        self._size = subset_size  # the epochs permute positions in the subset

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        return self._subset[super()._epoch_indices(epoch)]


class RepeatFactorTrainingSampler(EpochStreamSampler):
    """Like :class:`TrainingSampler`, but image ``i`` appears ``repeat_factors[i]`` times per
    epoch on average (stochastic rounding each epoch), for class-imbalanced datasets (LVIS).

    Args:
        repeat_factors: float tensor (N,), each >= 1.
    """

    def __init__(self, repeat_factors: torch.Tensor, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        self._int_part = torch.trunc(repeat_factors)
        self._frac_part = repeat_factors - self._int_part

    @staticmethod
    def repeat_factors_from_category_frequency(dataset_dicts: Sequence[dict], repeat_thresh: float) -> torch.Tensor:
        """Per image ``r = max over its categories c of max(1, sqrt(t / f_c))`` where ``f_c`` is
        the fraction of images containing ``c`` and ``t`` is ``repeat_thresh``."""
        image_count: Dict[int, int] = defaultdict(int)
        for d in dataset_dicts:
            for cat in {a["category_id"] for a in d.get("annotations", [])}:
                image_count[cat] += 1
        n = len(dataset_dicts)
        cat_rep = {c: max(1.0, math.sqrt(repeat_thresh / (cnt / n))) for c, cnt in image_count.items()}
        factors = [
            max((cat_rep[a["category_id"]] for a in d.get("annotations", [])), default=1.0) for d in dataset_dicts
        ]
        return torch.tensor(factors, dtype=torch.float32)

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        g = self._generator(epoch)
        rands = torch.rand(len(self._frac_part), generator=g)
        reps = (self._int_part + (rands < self._frac_part).float()).long()
        indices = torch.repeat_interleave(torch.arange(len(reps)), reps)
        return indices[torch.randperm(len(indices), generator=g)]


class InferenceSampler(Sampler):
    """Each rank gets a contiguous, ordered shard of ``range(size)``; shards cover it exactly once."""

    def __init__(self, size: int) -> None:
        self._size = size
        rank, world = comm.get_rank(), comm.get_world_size()
        shard = [size // world + int(r < size % world) for r in range(world)]
        begin = sum(shard[:rank])
        self._local_indices = range(begin, begin + shard[rank])

    def __iter__(self) -> Iterator[int]:
        yield from self._local_indices

    def __len__(self) -> int:
        return len(self._local_indices)
