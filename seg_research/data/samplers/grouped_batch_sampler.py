"""Batch samplers over a training sampler's stream (detectron2's ``data.samplers.grouped_batch_sampler``)."""
from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Dict, Iterator, List, Sequence, Tuple

from .distributed_sampler import EpochStreamSampler

__all__ = ["GroupedBatchSampler", "PlainBatchSampler"]


class PlainBatchSampler:
    """Infinite batches of ``batch_size`` consecutive ``(position, index)`` items from a
    training sampler."""

    def __init__(self, sampler: EpochStreamSampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        stream = self.sampler.iter_with_positions()
        while True:
            yield list(itertools.islice(stream, self.batch_size))


class GroupedBatchSampler(PlainBatchSampler):
    """Batches whose images share an aspect-ratio group (landscape vs portrait), so padding
    wastes little. Batch composition depends only on the stream, so it is reproducible.

    Args:
        group_ids: group of each dataset index (e.g. 0 for w >= h, 1 otherwise).
    """

    def __init__(self, sampler: EpochStreamSampler, group_ids: Sequence[int], batch_size: int) -> None:
        super().__init__(sampler, batch_size)
        self.group_ids = list(group_ids)

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        buckets: Dict[int, List[Tuple[int, int]]] = defaultdict(list)
        for item in self.sampler.iter_with_positions():
            bucket = buckets[self.group_ids[item[1]]]
            bucket.append(item)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                del bucket[:]
