"""Prediction shard files and gather_predictions (comm faked in-process, ranks run one after the other)."""
import json
import logging
import os

import pytest

from seg_research.evaluation import evaluator as evaluator_module
from seg_research.evaluation.evaluator import gather_predictions
from seg_research.evaluation.prediction_shards import read_shards, shard_path, write_shard
from seg_research.utils import comm

RECORDS = [[{"image_id": 1, "instances": [{"score": 0.1 + 1e-9, "bbox": [1.5, 2.0, 3.25, 4.0]}]},
            {"image_id": "b", "instances": []}],
           [{"image_id": 7, "instances": [{"segmentation": {"size": [4, 5], "counts": "a0b1"}}]}]]


def test_shards_round_trip_in_order_and_are_deleted(tmp_path):
    paths = [shard_path(str(tmp_path), "x", rank, 2) for rank in range(2)]
    assert os.path.basename(paths[1]) == "x.rank-00001-of-00002.jsonl"
    for path, records in zip(paths, RECORDS, strict=True):
        write_shard(path, records)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)  # no temporary left over
    assert len((tmp_path / "x.rank-00000-of-00002.jsonl").read_text().splitlines()) == 2
    assert list(read_shards(paths)) == RECORDS[0] + RECORDS[1]  # floats exact, str and int ids kept
    assert list(read_shards(paths, delete=True)) == RECORDS[0] + RECORDS[1]
    assert os.listdir(tmp_path) == []


def test_missing_shard_names_the_file_and_the_fix(tmp_path):
    write_shard(shard_path(str(tmp_path), "x", 0, 2), RECORDS[0])
    with pytest.raises(FileNotFoundError, match=r"1 of 2 .*rank-00001-of-00002.*every machine sees"):
        list(read_shards([shard_path(str(tmp_path), "x", rank, 2) for rank in range(2)]))


def _fake_world(monkeypatch, local_size):
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "get_local_size", lambda: local_size)
    monkeypatch.setattr(comm, "synchronize", lambda: None)


def _as_rank(monkeypatch, rank):
    monkeypatch.setattr(comm, "get_rank", lambda: rank)
    monkeypatch.setattr(comm, "is_main_process", lambda: rank == 0)


def test_one_process_returns_its_records():
    assert gather_predictions(RECORDS[0], None, "x") is RECORDS[0]


def test_without_output_dir_one_machine_uses_a_temporary_folder(tmp_path, monkeypatch):
    _fake_world(monkeypatch, local_size=2)
    folder = tmp_path / "eval_shards_0"
    made = []

    def mkdtemp(prefix):  # rank 0's folder; in a real run all_gather hands its path to every rank
        made.append(prefix)
        folder.mkdir(exist_ok=True)
        return str(folder)

    monkeypatch.setattr(evaluator_module.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(comm, "all_gather", lambda data: [mkdtemp("eval_shards_") if data is None else data])
    _as_rank(monkeypatch, 1)
    assert gather_predictions(RECORDS[1], None, "x") is None
    assert os.listdir(folder) == ["x.rank-00001-of-00002.jsonl"]
    _as_rank(monkeypatch, 0)
    assert gather_predictions(RECORDS[0], None, "x") == RECORDS[0] + RECORDS[1]
    assert made == ["eval_shards_"] * 2 and not folder.exists()  # removed by the main process


def test_several_machines_without_output_dir_fall_back_to_gather(monkeypatch, caplog):
    _fake_world(monkeypatch, local_size=1)
    _as_rank(monkeypatch, 0)
    monkeypatch.setattr(comm, "gather", lambda data, dst=0: [data, RECORDS[1]])
    with caplog.at_level(logging.WARNING):
        assert gather_predictions(RECORDS[0], None, "x") == RECORDS[0] + RECORDS[1]
    assert "shared filesystem" in caplog.text


def test_shard_is_valid_json_lines(tmp_path):
    path = shard_path(str(tmp_path), "x", 0, 1)
    write_shard(path, RECORDS[1])
    assert [json.loads(line) for line in open(path)] == RECORDS[1]


def test_main_process_keeps_its_own_records_and_reads_the_others_shards(tmp_path, monkeypatch):
    _fake_world(monkeypatch, local_size=2)
    written = []
    monkeypatch.setattr(evaluator_module, "write_shard", lambda path, records: written.append(path) or
                        write_shard(path, records))
    _as_rank(monkeypatch, 1)
    assert gather_predictions(RECORDS[1], str(tmp_path), "x") is None
    _as_rank(monkeypatch, 0)
    gathered = gather_predictions(RECORDS[0], str(tmp_path), "x")
    assert gathered == RECORDS[0] + RECORDS[1] and gathered[0] is RECORDS[0][0]  # not a parsed copy
    assert [os.path.basename(p) for p in written] == ["x.rank-00001-of-00002.jsonl"] and os.listdir(tmp_path) == []
