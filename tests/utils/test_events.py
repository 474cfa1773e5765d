import json
import logging

import pytest
import torch

from seg_research.utils.events import (
    CommonMetricPrinter,
    EventStorage,
    JSONWriter,
    TensorboardXWriter,
    flatten_results_dict,
    get_event_storage,
)


def test_get_event_storage_outside_context_raises():
    with pytest.raises(RuntimeError, match="outside an EventStorage"):
        get_event_storage()


def test_nested_storages_and_iter():
    with EventStorage(5) as outer:
        assert get_event_storage() is outer and outer.iter == 5
        with EventStorage() as inner:
            assert get_event_storage() is inner
        assert get_event_storage() is outer
        outer.step()
        assert outer.iter == 6
        outer.iter = 10
        assert outer.iter == 10


def test_put_scalar_history_latest_and_smoothing():
    with EventStorage(0) as s:
        for i, v in enumerate([4.0, 1.0, 3.0, 2.0]):
            s.iter = i
            s.put_scalar("loss", v)
            s.put_scalar("lr", 0.1 * (i + 1), smoothing_hint=False)
        s.put_scalars(loss_a=torch.tensor(2.5), loss_b=1, cur_iter=7)
        assert s.history("loss").values() == [(4.0, 0), (1.0, 1), (3.0, 2), (2.0, 3)]
        assert s.latest()["loss"] == (2.0, 3)
        assert s.latest()["loss_a"] == (2.5, 7)
        smoothed = s.latest_with_smoothing_hint(window_size=3)
        assert smoothed["loss"] == (2.0, 3)  # median of 1, 3, 2
        assert smoothed["lr"] == pytest.approx((0.4, 3))  # no smoothing
        assert set(s.histories()) == {"loss", "lr", "loss_a", "loss_b"}
        with pytest.raises(KeyError, match="No history recorded for 'nope'"):
            s.history("nope")
        with pytest.raises(ValueError, match="smoothing_hint"):
            s.put_scalar("lr", 1.0, smoothing_hint=True)
        with pytest.raises(TypeError, match="'bad'"):
            s.put_scalar("bad", "x")


def test_flatten_results_dict():
    results = {"segm": {"AP": 50.1, "AP-cat": 3.0}, "sem_seg": {"mIoU": 1.0}, "top": 2, "a": {"b": {"c": 1}}}
    assert flatten_results_dict(results) == {
        "segm/AP": 50.1, "segm/AP-cat": 3.0, "sem_seg/mIoU": 1.0, "top": 2, "a/b/c": 1,
    }


def test_json_writer_writes_new_entries_once_per_iteration(tmp_path):
    path = tmp_path / "metrics.json"
    with EventStorage(0) as s:
        writer = JSONWriter(str(path), window_size=2)
        s.put_scalar("loss", 3.0)
        s.put_scalar("lr", 0.5, smoothing_hint=False)
        writer.write()
        s.step()
        s.put_scalar("loss", 1.0)
        s.put_scalar("lr", 0.25, smoothing_hint=False)
        s.put_scalar("segm/AP", 42.0, smoothing_hint=False)
        writer.write()
        writer.write()  # nothing new: no extra line
        s.step()
        s.put_scalar("segm/AP", 43.0, smoothing_hint=False, cur_iter=1)  # not newer than last write
        writer.write()
        writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"iteration": 0, "loss": 3.0, "lr": 0.5},
        {"iteration": 1, "loss": 2.0, "lr": 0.25, "segm/AP": 42.0},  # loss: median of (3, 1)
    ]


def test_json_writer_appends(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 0}\n')
    with EventStorage(3) as s:
        writer = JSONWriter(str(path))
        s.put_scalar("x", 1.0)
        writer.write()
        writer.close()
    assert path.read_text().splitlines() == ['{"iteration": 0}', '{"iteration": 3, "x": 1.0}']


def test_common_metric_printer_line(caplog):
    with EventStorage(0) as s:
        for i, t in enumerate([0.5, 0.1, 0.2]):
            s.iter = i
            s.put_scalars(total_loss=1.5, loss_cls=1.0, loss_box=0.5, time=t, data_time=0.01)
            s.put_scalar("lr", 0.02, smoothing_hint=False)
        printer = CommonMetricPrinter(max_iter=103)
        with caplog.at_level(logging.INFO, logger="seg_research.utils.events"):
            printer.write()
            s.iter = 103  # training finished: nothing printed
            printer.write()
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    # eta = median time 0.2 s x (103 - 2 - 1) remaining iterations = 20 s
    expected = ("eta: 0:00:20  iter: 2  total_loss: 1.5  loss_box: 0.5  loss_cls: 1  time: 0.2000  "
                "last_time: 0.2000  data_time: 0.0100  lr: 0.02")
    if torch.cuda.is_available():
        assert line.startswith(expected + "  max_mem: ")
    else:
        assert line == expected


def test_tensorboard_writer(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with EventStorage(0) as s:
        writer = TensorboardXWriter(str(tmp_path))
        s.put_scalar("lr", 0.5, smoothing_hint=False)
        writer.write()
        s.step()
        s.put_scalar("lr", 0.25, smoothing_hint=False)
        writer.write()
        writer.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("lr")] == [(0, 0.5), (1, 0.25)]
