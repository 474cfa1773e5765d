"""Injected faults: processes killed mid-write and mid-training, corrupt checkpoints, malicious
pickles, unwritable output folders, full disks, non-finite losses, bad samples, dying workers."""
import errno
import itertools
import json
import logging
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from seg_research.checkpoint import Checkpointer, CheckpointError
from seg_research.config import get_cfg
from seg_research.data.build import build_detection_test_loader, build_detection_train_loader
from seg_research.data.detection_utils import read_image
from seg_research.data.samplers import TrainingSampler
from seg_research.engine import default_setup
from seg_research.engine.train_loop import HookBase, SimpleTrainer
from seg_research.utils.events import EventStorage, JSONWriter
from seg_research.utils.file_io import atomic_write_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# Saves a 16 MB checkpoint forever; version k has every weight equal to k and iteration=k.
_WRITER = """
    import sys, torch
    from seg_research.checkpoint import Checkpointer
    model = torch.nn.Linear(2048, 2048)
    checkpointer = Checkpointer(model, sys.argv[1])
    for k in range(1000):
        torch.nn.init.constant_(model.weight, k); torch.nn.init.constant_(model.bias, k)
        checkpointer.save("model_final", iteration=k)
        print(k, flush=True)
"""


@pytest.mark.slow
def test_kill_during_checkpoint_write_keeps_previous_checkpoint(tmp_path):
    writer = _python(_WRITER, tmp_path)
    try:
        assert writer.stdout.readline().strip() == "0"  # version 0 complete
        deadline = time.time() + 60
        while not any(n.endswith(".tmp") for n in os.listdir(tmp_path)):  # version >= 1 being written
            assert time.time() < deadline and writer.poll() is None
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    finally:
        writer.kill()
    assert writer.returncode == -signal.SIGKILL
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    model = nn.Linear(2048, 2048)
    extra = Checkpointer(model).load(str(tmp_path / "model_final.pth"))
    k = extra["iteration"]  # the last complete version, all of it
    assert torch.all(model.weight == k) and torch.all(model.bias == k)


# A small training run (linear regression, batches seeded by iteration, a checkpoint per step)
# resumable like tools/train_net.py --resume: Checkpointer.resume_or_load + start at iteration + 1.
# With pause_at, the run says "paused" after that iteration's step, before its checkpoint, and waits
# on its stdin: the test kills it there, at a point it knows, whatever the machine's speed.
_TRAIN = """
    import sys, torch
    from seg_research.checkpoint import Checkpointer
    from seg_research.engine import hooks
    from seg_research.engine.train_loop import HookBase, SimpleTrainer

    def batches(start):
        for it in range(start, 10**9):
            g = torch.Generator().manual_seed(it)
            x = torch.randn(8, 3, generator=g)
            yield x, x.sum(dim=1, keepdim=True)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(3, 1)
        def forward(self, batch):
            x, y = batch
            return {"loss_mse": (self.fc(x) - y).square().mean()}

    def pause(trainer, at):
        if trainer.iter == at:
            print("paused", flush=True)
            sys.stdin.readline()

    def train(out, resume, max_iter=12, pause_at=-1):
        model = Model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        checkpointer = Checkpointer(model, out, optimizer=optimizer)
        start = checkpointer.resume_or_load("", resume=resume).get("iteration", -1) + 1
        print("Resuming at iteration", start, flush=True)
        trainer = SimpleTrainer(model, batches(start), optimizer)
        trainer.register_hooks([hooks.CallbackHook(after_step=lambda t: pause(t, pause_at)),
                                hooks.PeriodicCheckpointer(checkpointer, 1)])
        trainer.train(start, max_iter)
        return model

    if __name__ == "__main__":
        train(sys.argv[1], sys.argv[2] == "resume", pause_at=int(sys.argv[3]))
"""


def _final_weights(out):
    return torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]


@pytest.mark.slow
def test_kill_training_then_resume_and_fall_back_over_a_truncated_checkpoint(tmp_path):
    reference = {}
    exec(compile(textwrap.dedent(_TRAIN), "train", "exec"), reference)
    expected = reference["train"](str(tmp_path / "uninterrupted"), resume=False).state_dict()

    out = tmp_path / "killed"
    run = _python(_TRAIN, out, "fresh", 5, stdin=subprocess.PIPE)
    lines = []
    while "paused" not in lines:  # iteration 5 stepped, its checkpoint not written
        line = run.stdout.readline()
        assert line, f"the run ended before pausing: {lines} {run.stderr.read()[-3000:]}"
        lines.append(line.strip())
    run.send_signal(signal.SIGKILL)
    run.wait(30)
    assert run.returncode == -signal.SIGKILL and not (out / "model_final.pth").exists()
    last = (out / "last_checkpoint").read_text()
    assert last == "model_0000004.pth"
    data = (out / last).read_bytes()
    (out / last).write_bytes(data[: len(data) // 3])  # and the newest checkpoint is truncated

    resumed = _python(_TRAIN, out, "resume", -1)
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr[-3000:]
    newest_complete = int(last[len("model_"):-len(".pth")]) - 1
    assert f"Resuming at iteration {newest_complete + 1}" in stdout
    assert f"Cannot resume from '{out / last}'" in stderr and "falling back to" in stderr
    assert "truncated or corrupt" in stderr
    final = _final_weights(out)
    for key, value in expected.items():
        assert torch.allclose(final[key], value, atol=0, rtol=0), key


@settings(max_examples=40, deadline=None)
@given(cut=st.floats(0, 0.999), flips=st.lists(st.tuples(st.floats(0, 0.999), st.integers(0, 255)), max_size=3),
       suffix=st.sampled_from([".pth", ".pkl"]))
def test_corrupt_checkpoints_give_checkpoint_error(cut, flips, suffix, outcomes, tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt")
    model = nn.Linear(3, 2)
    path = str(folder / f"model{suffix}")
    if suffix == ".pth":
        torch.save({"model": model.state_dict(), "iteration": 3}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"model": {k: v.numpy() for k, v in model.state_dict().items()}}, f, protocol=2)
    raw = bytearray(open(path, "rb").read())
    raw = raw[: int(len(raw) * cut)] if flips == [] else raw
    for where, value in flips:
        raw[int(where * len(raw))] = value
    with open(path, "wb") as f:
        f.write(bytes(raw))
    try:
        Checkpointer(nn.Linear(3, 2)).load(path)
    except CheckpointError as e:
        outcomes.record("corrupt checkpoint", e)
        assert path in str(e)
        return
    except ValueError as e:  # fvcore: a damaged key left an entry that is not an array
        outcomes.record("corrupt checkpoint", e)
        assert "Unsupported type found in checkpoint" in str(e)
        return
    outcomes.record("corrupt checkpoint")
    assert flips, "a truncated checkpoint loaded"  # a flipped byte inside tensor data is not detectable


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_malicious_pickle_is_refused(tmp_path, suffix, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps({"model": {"w": np.zeros(2)}, "x": _RunsCode()}))
        match = "Refusing to load global 'posix.system'"
    else:
        torch.save({"model": {"w": torch.zeros(2)}, "x": _RunsCode()}, path)
        match = "truncated or corrupt, or holds objects other than tensors"
    with pytest.raises(CheckpointError, match=match):
        Checkpointer(nn.Linear(2, 1)).load(str(path))
    assert not (tmp_path / "pwned").exists()


def test_output_dir_not_writable_fails_before_training_with_the_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(blocker / "out")  # a folder under a regular file: ENOTDIR, even for root
    with pytest.raises(OSError, match=f"OUTPUT_DIR '{blocker / 'out'}' is not writable") as e:
        default_setup(cfg)
    assert e.value.errno in (errno.ENOTDIR, errno.EEXIST)


def test_disk_full_errors_name_the_file(tmp_path, monkeypatch):
    atomic_write_json(str(tmp_path / "config.json"), {"a": 1})
    checkpointer = Checkpointer(nn.Linear(2, 1), str(tmp_path))
    checkpointer.save("model_final")
    before = (tmp_path / "model_final.pth").read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match=f"Failed writing '{tmp_path / 'config.json'}': No space left on device"):
        atomic_write_json(str(tmp_path / "config.json"), {"a": 2})
    with pytest.raises(OSError, match="model_final.pth': No space left on device. Nothing was overwritten"):
        checkpointer.save("model_final")
    monkeypatch.undo()
    assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}
    assert (tmp_path / "model_final.pth").read_bytes() == before

    # metrics.json on a full disk: /dev/full fails every write with ENOSPC
    writer = JSONWriter("/dev/full")
    with EventStorage() as storage:
        storage.put_scalar("loss", 1.0)
        with pytest.raises(OSError, match="Failed writing metrics to '/dev/full': No space left on device"):
            writer.write()


class _NaNAt(nn.Module):
    """Linear regression whose loss is NaN at the iterations in ``bad``."""

    def __init__(self, bad):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.bad, self.calls = nn.Linear(3, 1), bad, 0

    def forward(self, x):
        loss = (self.fc(x) - 1).square().mean()
        self.calls += 1
        return {"loss_a": loss * float("nan") if self.calls - 1 in self.bad else loss, "loss_b": loss.detach() * 0}


def _nan_trainer(skip, tmp_path):
    model = _NaNAt(bad={2, 3})
    data = iter(lambda: torch.ones(4, 3), None)
    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1), skip_nonfinite_steps=skip)
    return trainer, model


def test_nonfinite_loss_raises_with_iteration_and_loss_dict(tmp_path):
    trainer, model = _nan_trainer(False, tmp_path)
    with pytest.raises(FloatingPointError, match=r"iteration 2! loss_dict = \{'loss_a': nan, 'loss_b': 0.0\}"):
        trainer.train(0, 5)


def test_nonfinite_loss_steps_skipped_and_counted(tmp_path):
    trainer, model = _nan_trainer(True, tmp_path)
    weights = []
    trainer.register_hooks([_Recorder(weights)])
    trainer.train(0, 5)
    # steps 2 and 3 are skipped: the weights after them equal those after step 1
    assert torch.equal(weights[1], weights[2]) and torch.equal(weights[2], weights[3])
    assert not torch.equal(weights[3], weights[4])
    history = trainer.storage.history("nonfinite_steps_skipped").values()
    assert [(v, it) for v, it in history] == [(1, 2), (2, 3)]
    assert [it for _, it in trainer.storage.history("loss_a").values()] == [0, 1, 4]
    assert get_cfg().SOLVER.SKIP_NONFINITE_STEPS is False


class _Recorder(HookBase):
    """Keeps the weights after each step."""

    def __init__(self, weights):
        self.weights = weights

    def after_step(self):
        self.weights.append(self.trainer.model.fc.weight.detach().clone())


def _records(tmp_path, bad=(2,)):
    """8 records of 4x5 images whose pixels all equal the record's index; those in ``bad`` are empty files."""
    records = []
    for i in range(8):
        path = tmp_path / f"img{i}.png"
        if i in bad:
            path.write_bytes(b"")
        else:
            Image.fromarray(np.full((4, 5, 3), i, np.uint8)).save(path)
        records.append({"file_name": str(path), "image_id": i, "height": 4, "width": 5})
    return records


def _read(record):
    return {"image_id": record["image_id"], "pixel": int(read_image(record["file_name"])[0, 0, 0])}


def _take(loader, n):
    iterator = iter(loader)
    return [next(iterator) for _ in range(n)]


def test_on_bad_sample_error_and_skip(tmp_path, caplog):
    records = _records(tmp_path)
    loader = build_detection_train_loader(records, mapper=_read, sampler=TrainingSampler(8, seed=1),
                                          total_batch_size=2, aspect_ratio_grouping=False)
    with pytest.raises(Exception, match=r"is empty \(0 bytes\).*img2.png"):
        _take(loader, 8)

    def skipping(num_workers):
        return build_detection_train_loader(records, mapper=_read, sampler=TrainingSampler(8, seed=1),
                                            total_batch_size=2, aspect_ratio_grouping=False,
                                            num_workers=num_workers, on_bad_sample="skip")

    with caplog.at_level(logging.WARNING, logger="seg_research.data.common"):
        batches = _take(skipping(0), 12)  # 3 epochs: image 2 drawn 3 times, replaced each time
    assert all(d["image_id"] != 2 and d["pixel"] == d["image_id"] for b in batches for d in b)
    # expected skips by the documented rule: replacement k of the draw at stream position p is
    # dataset index random.Random(f"{seed}:{p}:{k}").randrange(len(dataset))
    stream = itertools.islice(TrainingSampler(8, seed=1).iter_with_positions(), 24)
    expected = []
    for position, index in stream:
        attempt = 0
        while index == 2:
            attempt += 1
            index = random.Random(f"1:{position}:{attempt}").randrange(8)
        expected.append((index, attempt))
    assert [(d["image_id"]) for b in batches for d in b] == [index for index, _ in expected]
    assert [b.skipped_samples for b in batches] == [expected[i][1] + expected[i + 1][1] for i in range(0, 24, 2)]
    assert sum(b.skipped_samples for b in batches) == 5  # image 2 drawn 3 times; 2 replacements drew it again
    assert all("_skipped_samples" not in d for b in batches for d in b)
    warnings = [r.getMessage() for r in caplog.records if "img2.png" in r.getMessage()]
    assert len(warnings) == 1 and "ON_BAD_SAMPLE=skip" in warnings[0]
    # the replacements are part of the seeded stream: identical with worker processes
    with_workers = _take(skipping(2), 12)
    assert [[d["image_id"] for d in b] for b in with_workers] == [[d["image_id"] for d in b] for b in batches]
    assert [b.skipped_samples for b in with_workers] == [b.skipped_samples for b in batches]

    # the trainer puts the running count into the metrics
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, batch):
            return {"loss": self.w * 0 + len(batch)}

    model = Model()
    trainer = SimpleTrainer(model, skipping(0), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.train(0, 12)
    skipped = trainer.storage.history("data/skipped_samples").values()
    per_batch = [b.skipped_samples for b in batches]
    running = [sum(per_batch[: i + 1]) for i in range(12) if per_batch[i]]
    assert [v for v, _ in skipped] == running and running[-1] == 5
    assert [it for _, it in skipped] == [i for i in range(12) if per_batch[i]]


def _die_on_image_5(record):
    if record["image_id"] == 5:
        os.kill(os.getpid(), signal.SIGKILL)  # a crash in native code, or the OOM killer
    return record


def test_dead_worker_is_reported_with_its_sample(tmp_path):
    records = _records(tmp_path, bad=())
    loader = build_detection_test_loader(records, mapper=_die_on_image_5, num_workers=1)
    with pytest.raises(RuntimeError, match=r"(?s)DataLoader worker \(pid.*mapping dataset index 5 "
                                           r"\(file_name '.*img5.png', image_id 5\)"):
        list(loader)
