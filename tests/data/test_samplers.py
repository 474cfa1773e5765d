import itertools

import pytest
import torch

from seg_research.data import samplers
from seg_research.data.samplers import (
    GroupedBatchSampler,
    InferenceSampler,
    PlainBatchSampler,
    RepeatFactorTrainingSampler,
    TrainingSampler,
)


def _as_rank(monkeypatch, rank, world):
    monkeypatch.setattr(samplers.comm, "get_rank", lambda: rank)
    monkeypatch.setattr(samplers.comm, "get_world_size", lambda: world)


def test_training_sampler_is_seeded_and_covers_each_epoch():
    a = list(itertools.islice(TrainingSampler(10, seed=3), 30))
    b = list(itertools.islice(TrainingSampler(10, seed=3), 30))
    c = list(itertools.islice(TrainingSampler(10, seed=4), 30))
    assert a == b and a != c
    for e in range(3):
        assert sorted(a[10 * e: 10 * e + 10]) == list(range(10))
    assert list(itertools.islice(TrainingSampler(4, shuffle=False, seed=0), 6)) == [0, 1, 2, 3, 0, 1]


def test_rank_shards_partition_the_stream(monkeypatch):
    single = list(itertools.islice(TrainingSampler(7, seed=5).iter_with_positions(), 21))
    shards = []
    for rank in range(3):
        _as_rank(monkeypatch, rank, 3)
        shards.append(list(itertools.islice(TrainingSampler(7, seed=5).iter_with_positions(), 7)))
    merged = sorted(sum(shards, []))
    assert merged == single  # every (position, index) of 3 epochs exactly once
    assert [p for p, _ in shards[1]] == list(range(1, 21, 3))


def test_inference_sampler_shards(monkeypatch):
    parts = []
    for rank in range(3):
        _as_rank(monkeypatch, rank, 3)
        parts.append(list(InferenceSampler(10)))
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_repeat_factors_hand_computed():
    dicts = [
        {"annotations": [{"category_id": 0}]},
        {"annotations": [{"category_id": 0}]},
        {"annotations": [{"category_id": 0}, {"category_id": 1}]},
        {"annotations": [{"category_id": 0}]},
    ]
    # f_0 = 1, f_1 = 0.25; t = 0.5 -> r_0 = 1, r_1 = sqrt(0.5 / 0.25) = sqrt(2)
    r = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, 0.5)
    assert torch.allclose(r, torch.tensor([1.0, 1.0, 2 ** 0.5, 1.0]))
    counts = torch.zeros(4)
    stream = list(itertools.islice(RepeatFactorTrainingSampler(r, seed=0), 8000))
    for i in stream:
        counts[i] += 1
    assert abs(counts[2] / counts[0] - 2 ** 0.5) < 0.1


def test_grouped_batches_share_group_and_are_reproducible():
    group_ids = [0, 1, 0, 1, 0, 1, 0, 0]
    batches = list(itertools.islice(GroupedBatchSampler(TrainingSampler(8, seed=1), group_ids, 2), 12))
    again = list(itertools.islice(GroupedBatchSampler(TrainingSampler(8, seed=1), group_ids, 2), 12))
    assert batches == again
    for batch in batches:
        assert len(batch) == 2 and len({group_ids[i] for _, i in batch}) == 1
    plain = list(itertools.islice(PlainBatchSampler(TrainingSampler(8, seed=1), 3), 2))
    assert [i for b in plain for _, i in b] == list(itertools.islice(TrainingSampler(8, seed=1), 6))


def test_bad_size():
    with pytest.raises(ValueError, match="positive"):
        TrainingSampler(0)
