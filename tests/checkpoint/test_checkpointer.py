import logging
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from fvcore.common.param_scheduler import MultiStepParamScheduler
from torch import nn

from seg_research.checkpoint import Checkpointer, CheckpointError, PeriodicCheckpointer, restricted_load
from seg_research.solver import LRMultiplier


def _setup(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = LRMultiplier(optimizer, MultiStepParamScheduler([1.0, 0.1], milestones=[2], num_updates=10), 10)
    return model, optimizer, scheduler


def _train(model, optimizer, scheduler, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).square().mean().backward()
        optimizer.step()
        scheduler.step()


def _assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _assert_same_tensors(a[k], b[k])
        elif isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def test_save_load_round_trip_restores_model_optimizer_scheduler(tmp_path):
    model, optimizer, scheduler = _setup(0)
    _train(model, optimizer, scheduler, 3)
    ckpt = Checkpointer(model, str(tmp_path), optimizer=optimizer, scheduler=scheduler)
    ckpt.save("model_0000002", iteration=2)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"

    model2, optimizer2, scheduler2 = _setup(1)
    extra = Checkpointer(model2, str(tmp_path), optimizer=optimizer2, scheduler=scheduler2).load(
        str(tmp_path / "model_0000002.pth"))
    assert extra == {"iteration": 2}
    _assert_same_tensors(model.state_dict(), model2.state_dict())
    _assert_same_tensors(optimizer.state_dict()["state"], optimizer2.state_dict()["state"])
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(0.05)
    assert scheduler2.state_dict() == scheduler.state_dict() == {"base_lrs": [0.5], "last_epoch": 3}


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, optimizer, scheduler = _setup(0)
    ckpt = Checkpointer(model, str(tmp_path), optimizer=optimizer)
    ckpt.save("model_final", iteration=1)
    before = (tmp_path / "model_final.pth").read_bytes()
    _train(model, optimizer, scheduler, 1)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="model_final.pth"):
        ckpt.save("model_final", iteration=2)
    monkeypatch.undo()
    assert (tmp_path / "model_final.pth").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_final.pth"]  # no temp files left
    assert Checkpointer(_setup(2)[0], str(tmp_path)).load(str(tmp_path / "model_final.pth"))["iteration"] == 1


def test_resume_or_load(tmp_path):
    model, optimizer, scheduler = _setup(0)
    _train(model, optimizer, scheduler, 2)
    Checkpointer(model, str(tmp_path), optimizer=optimizer, scheduler=scheduler).save("model_0000001", iteration=1)
    weights = tmp_path / "weights.pth"
    torch.save(_setup(5)[0].state_dict(), weights)  # a bare state_dict, like torchvision weights

    model2, optimizer2, scheduler2 = _setup(1)
    ckpt2 = Checkpointer(model2, str(tmp_path), optimizer=optimizer2, scheduler=scheduler2)
    assert ckpt2.resume_or_load(str(weights), resume=True) == {"iteration": 1}
    _assert_same_tensors(model.state_dict(), model2.state_dict())
    assert scheduler2.last_epoch == 2 and optimizer2.param_groups[0]["lr"] == pytest.approx(0.05)

    # Not resuming: model only, from the given weights; the optimizer keeps its state.
    model3, optimizer3, scheduler3 = _setup(1)
    ckpt3 = Checkpointer(model3, str(tmp_path), optimizer=optimizer3, scheduler=scheduler3)
    assert ckpt3.resume_or_load(str(weights), resume=False) == {}
    _assert_same_tensors(_setup(5)[0].state_dict(), model3.state_dict())
    assert optimizer3.state_dict()["state"] == {} and scheduler3.last_epoch == 0

    # Resuming in a folder without last_checkpoint also loads the given weights.
    model4 = _setup(1)[0]
    assert Checkpointer(model4, str(tmp_path / "empty")).resume_or_load(str(weights), resume=True) == {}
    _assert_same_tensors(_setup(5)[0].state_dict(), model4.state_dict())


def test_corrupt_last_checkpoint_falls_back_with_warning(tmp_path, caplog):
    model, optimizer, scheduler = _setup(0)
    ckpt = Checkpointer(model, str(tmp_path), optimizer=optimizer)
    ckpt.save("model_0000001", iteration=1)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, optimizer, scheduler, 1)
    ckpt.save("model_0000003", iteration=3)
    ckpt.save("model_0000005", iteration=5)
    for name in ("model_0000005.pth", "model_0000003.pth"):  # truncated copies
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])

    model2 = _setup(1)[0]
    with caplog.at_level(logging.WARNING, logger="seg_research.checkpoint.checkpointer"):
        extra = Checkpointer(model2, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 1
    _assert_same_tensors(good, model2.state_dict())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "model_0000005.pth" in warnings[0] and "falling back to" in warnings[0] and "model_0000003" in warnings[0]
    assert warnings[1].endswith(f"falling back to '{tmp_path / 'model_0000001.pth'}'.")


def test_resume_fails_clearly_when_nothing_loads(tmp_path):
    model = _setup(0)[0]
    ckpt = Checkpointer(model, str(tmp_path))
    ckpt.save("model_final")
    (tmp_path / "model_final.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="delete last_checkpoint"):
        ckpt.resume_or_load("", resume=True)


def test_corrupt_or_missing_file_error_names_it(tmp_path):
    path = tmp_path / "broken.pth"
    torch.save(_setup(0)[0].state_dict(), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="(?s)broken.pth.*truncated or corrupt"):
        Checkpointer(_setup(0)[0]).load(str(path))
    with pytest.raises(FileNotFoundError, match="nope.pth.*MODEL.WEIGHTS"):
        Checkpointer(_setup(0)[0]).load(str(tmp_path / "nope.pth"))


class _Arbitrary:
    pass


def test_torch_file_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "unsafe.pth"
    torch.save({"model": {}, "extra": _Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="unsafe.pth"):
        Checkpointer(_setup(0)[0]).load(str(path))


class _Malicious:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {"weight": _Malicious(marker)}}, f)
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match=r"'posix\.system'"):
        restricted_load(f)
    with pytest.raises(CheckpointError, match="model_final.pkl"):
        Checkpointer(nn.Linear(1, 1)).load(str(path))
    assert not marker.exists()
    with open(path, "rb") as f:  # control: the plain unpickler does run it
        pickle.load(f)
    assert marker.exists()


def test_restricted_load_refuses_harmless_looking_globals():
    data = pickle.dumps(OrderedDict(a=1))
    with pytest.raises(pickle.UnpicklingError, match="'collections.OrderedDict'"):
        restricted_load(__import__("io").BytesIO(data))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_detectron2_pkl_weights_load(tmp_path, protocol):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    bias = np.array([0.5, -1.0], dtype=np.float32)
    path = tmp_path / "model_final_abc.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {"weight": weight, "bias": bias}, "__author__": "Detectron2 Model Zoo",
                     "scale": np.float32(2.0)}, f, protocol=protocol)
    model = nn.Linear(3, 2)
    extra = Checkpointer(model).load(str(path))
    assert extra == {"scale": 2.0}  # the model-zoo file's own tags (__author__) are dropped
    assert torch.equal(model.weight.data, torch.from_numpy(weight))
    assert torch.equal(model.bias.data, torch.from_numpy(bias))


def test_incompatible_keys_report_is_plain_text(tmp_path, caplog):
    src = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5))
    state = src.state_dict()
    state["extra.head.weight"] = torch.zeros(1)
    del state["0.bias"]
    torch.save({"model": state}, tmp_path / "w.pth")
    dst = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with caplog.at_level(logging.WARNING, logger="seg_research.checkpoint.checkpointer"):
        Checkpointer(dst).load(str(tmp_path / "w.pth"))
    messages = [r.getMessage() for r in caplog.records]
    assert "\x1b[" not in caplog.text  # no terminal colour codes in log files
    assert messages == [
        "Skipped '1.weight': shape (5, 4) in the checkpoint but (2, 4) in the model (e.g. a different "
        "NUM_CLASSES); it keeps its initial value.",
        "Skipped '1.bias': shape (5,) in the checkpoint but (2,) in the model (e.g. a different NUM_CLASSES); "
        "it keeps its initial value.",
        "1 model parameters/buffers are not in the checkpoint and keep their initial values:\n  0.bias",
        "1 checkpoint entries are not used by the model:\n  extra.head.weight",
    ]
    assert torch.equal(dst[0].weight, src[0].weight)


def test_periodic_checkpointer_is_fvcores_with_our_save(tmp_path):
    ckpt = Checkpointer(nn.Linear(1, 1), str(tmp_path))
    periodic = PeriodicCheckpointer(ckpt, period=2, max_iter=4)
    for it in range(4):
        periodic.step(it)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth", "model_0000003.pth",
                                            "model_final.pth"]
    assert torch.load(tmp_path / "model_final.pth", weights_only=True)["iteration"] == 3
