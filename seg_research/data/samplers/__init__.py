"""Samplers. Training samplers are infinite, seeded and sharded by rank (``distributed_sampler``);
batch samplers group their stream into batches (``grouped_batch_sampler``)."""
from ...utils import comm  # noqa: F401  (the samplers read rank and world size from it)
from .distributed_sampler import (
    InferenceSampler,
    RandomSubsetTrainingSampler,
    RepeatFactorTrainingSampler,
    TrainingSampler,
)
from .grouped_batch_sampler import GroupedBatchSampler, PlainBatchSampler

__all__ = [
    "TrainingSampler", "RepeatFactorTrainingSampler", "RandomSubsetTrainingSampler", "InferenceSampler",
    "GroupedBatchSampler", "PlainBatchSampler",
]
