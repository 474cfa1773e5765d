"""End-to-end runs of tools/train_net.py on the instant-test config (subprocesses, CPU)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

# Subprocess / end-to-end runs: not in `make test-fast`.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# tools/train_net.py, run by tests/helpers/train_net.py, which registers the test model of CONFIG first.
TRAIN_NET = os.path.join(REPO, "tests", "helpers", "train_net.py")
CONFIG = os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml")


def _run(args, **kwargs):
    proc = subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO, timeout=300, **kwargs)
    return proc


def _metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f]


def _final_state(output_dir):
    return torch.load(os.path.join(output_dir, "model_final.pth"), weights_only=True)["model"]


def test_help_shows_detectron2_flags():
    from seg_research.engine import default_argument_parser

    out = default_argument_parser().format_help()
    for flag in ("--config-file", "--resume", "--eval-only", "--num-gpus", "--num-machines", "--machine-rank",
                 "--dist-url"):
        assert flag in out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("full"))
    proc = _run([TRAIN_NET, "--config-file", CONFIG, "OUTPUT_DIR", out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_training_writes_output_dir(uninterrupted):
    files = set(os.listdir(uninterrupted))
    for name in ("config.yaml", "log.txt", "metrics.json", "last_checkpoint", "model_final.pth",
                 "model_0000002.pth", "model_0000005.pth"):
        assert name in files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert open(os.path.join(uninterrupted, "last_checkpoint")).read().strip() == "model_final.pth"
    lines = _metrics(uninterrupted)
    # evaluation results are flattened and recorded at the iteration they were computed
    evals = {line["iteration"]: line for line in lines if "sem_seg/mIoU" in line}
    assert sorted(evals) == [2, 5]
    assert 0.0 <= evals[5]["sem_seg/mIoU"] <= 100.0
    assert all("total_loss" in line and "lr" in line for line in lines if line["iteration"] in (1, 3, 5))
    results = json.load(open(os.path.join(uninterrupted, "inference", "shapes_val_sem_seg", "results.json")))
    assert results["sem_seg"]["mIoU"] == pytest.approx(evals[5]["sem_seg/mIoU"])
    from seg_research.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(uninterrupted, "config.yaml"))
    assert cfg.SOLVER.MAX_ITER == 6 and cfg.OUTPUT_DIR == uninterrupted


def test_eval_only_reproduces_final_results(uninterrupted, tmp_path):
    proc = _run([TRAIN_NET, "--config-file", CONFIG, "--eval-only", "MODEL.WEIGHTS",
                 os.path.join(uninterrupted, "model_final.pth"), "OUTPUT_DIR", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours = json.load(open(tmp_path / "inference" / "shapes_val_sem_seg" / "results.json"))
    ref = json.load(open(os.path.join(uninterrupted, "inference", "shapes_val_sem_seg", "results.json")))
    assert ours["sem_seg"]["mIoU"] == pytest.approx(ref["sem_seg"]["mIoU"], abs=1e-9)


# Kills the process (SIGKILL, no clean-up) right after the checkpoint of iteration 2 is on disk.
_KILLED_RUN = textwrap.dedent("""
    import os, runpy, signal, sys
    from seg_research.engine import hooks

    _after_step = hooks.PeriodicCheckpointer.after_step

    def after_step(self):
        _after_step(self)
        if self.trainer.iter == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    hooks.PeriodicCheckpointer.after_step = after_step
    sys.argv = [sys.argv[1]] + sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


def test_resume_after_kill_matches_uninterrupted_run(uninterrupted, tmp_path):
    out = str(tmp_path / "resumed")
    killed = _run(["-c", _KILLED_RUN, TRAIN_NET, "--config-file", CONFIG, "OUTPUT_DIR", out])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert open(os.path.join(out, "last_checkpoint")).read().strip() == "model_0000002.pth"
    assert not os.path.exists(os.path.join(out, "model_final.pth"))

    resumed = _run([TRAIN_NET, "--config-file", CONFIG, "--resume", "OUTPUT_DIR", out])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming at iteration 3" in resumed.stdout

    full, ours = _final_state(uninterrupted), _final_state(out)
    assert full.keys() == ours.keys()
    for k in full:
        assert torch.equal(full[k], ours[k]), k
    # same LR at the iterations logged after resuming
    lr_full = {m["iteration"]: m["lr"] for m in _metrics(uninterrupted) if "lr" in m}
    lr_resumed = {m["iteration"]: m["lr"] for m in _metrics(out) if "lr" in m and m["iteration"] >= 3}
    assert lr_resumed and all(lr_resumed[i] == lr_full[i] for i in lr_resumed)
