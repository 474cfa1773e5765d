"""Multi-process training and evaluation on gloo (CPU), through tools/train_net.py and launch()."""
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from seg_research.engine.launch import first_host_of_slurm_nodelist

# Subprocess / end-to-end runs: not in `make test-fast`.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# tools/train_net.py, run by tests/helpers/train_net.py, which registers the test model of CONFIG first.
TRAIN_NET = os.path.join(REPO, "tests", "helpers", "train_net.py")
CONFIG = os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml")
# The reference trains 1 process x batch 2 with BatchNorm; the distributed runs train
# 2 processes x batch 1 with SyncBN, whose statistics cover the same global batch of 2.
BN = ["MODEL.SEM_SEG_HEAD.NORM", "BN"]
SYNC_BN = ["MODEL.SEM_SEG_HEAD.NORM", "SyncBN"]


def _run(args, timeout=240):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID")}
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env)


def _train(out, *extra, launcher=(TRAIN_NET,), norm=SYNC_BN):
    proc = _run(list(launcher) + ["--config-file", CONFIG] + list(extra) + ["OUTPUT_DIR", out] + norm)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    weights = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]
    results = json.load(open(os.path.join(out, "inference", "shapes_val_sem_seg", "results.json")))
    return weights, results


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """1 process x batch 2: the reference."""
    return _train(str(tmp_path_factory.mktemp("single")), norm=BN)


def _assert_same(a, b):
    (wa, ra), (wb, rb) = a, b
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    assert ra["sem_seg"] == rb["sem_seg"]  # distributed evaluation is exactly the single-process one


def test_two_processes_match_one_process(single, tmp_path):
    out = str(tmp_path)
    _assert_same(single, _train(out, "--num-gpus", "2"))
    assert os.path.exists(os.path.join(out, "log.txt.rank1"))
    log0 = open(os.path.join(out, "log.txt")).read()
    assert "World size: 2" in log0


def test_torchrun(single, tmp_path):
    launcher = ("-m", "torch.distributed.run", "--nproc_per_node", "2", TRAIN_NET)
    _assert_same(single, _train(str(tmp_path), launcher=launcher))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_one_host(single, tmp_path):
    url = f"tcp://127.0.0.1:{_free_port()}"
    out = str(tmp_path)
    common = ["--num-machines", "2", "--dist-url", url, "--config-file", CONFIG, "OUTPUT_DIR", out] + SYNC_BN
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    second = subprocess.Popen([sys.executable, TRAIN_NET, "--machine-rank", "1"] + common, cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = _run([TRAIN_NET, "--machine-rank", "0"] + common)
    _, err = second.communicate(timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, err[-3000:]
    weights = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]
    results = json.load(open(os.path.join(out, "inference", "shapes_val_sem_seg", "results.json")))
    _assert_same(single, (weights, results))


_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    import torch.distributed as dist
    from seg_research.data import DatasetCatalog
    from seg_research.engine import launch
    from seg_research.utils import comm

    def load_user_dataset():
        return [{"file_name": "user.png", "image_id": 0, "height": 1, "width": 1}]

    def main(mode):
        if mode == "catalog":
            assert DatasetCatalog.get("user_ds")[0]["file_name"] == "user.png"
            try:
                DatasetCatalog.get("user_lambda_ds")
            except KeyError as e:
                assert "launching process only" in str(e), str(e)
            print(f"rank {comm.get_rank()} ok", flush=True)
            return
        if comm.get_rank() == 1:
            time.sleep(1)
            if mode == "raise":
                raise ValueError("boom from rank 1")
            os.kill(os.getpid(), signal.SIGKILL)
        dist.barrier()  # rank 0 would wait here forever
        time.sleep(600)

    if __name__ == "__main__":
        DatasetCatalog.register("user_ds", load_user_dataset)
        DatasetCatalog.register("user_lambda_ds", lambda: [])
        launch(main, 2, args=(sys.argv[1],))
""")


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("launch") / "job.py"
    path.write_text(_SCRIPT)
    return str(path)


def test_spawned_workers_see_user_registered_datasets(script):
    proc = _run([script, "catalog"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 ok" in proc.stdout and "rank 1 ok" in proc.stdout


@pytest.mark.parametrize("mode", ["raise", "kill"])
def test_failing_worker_stops_the_job(script, mode):
    start = time.time()
    proc = _run([script, mode], timeout=120)
    assert proc.returncode != 0
    assert time.time() - start < 60
    if mode == "raise":
        assert "boom from rank 1" in proc.stderr
    else:
        assert "signal SIGKILL" in proc.stderr or "exited with exit code -9" in proc.stderr or "SIGKILL" in proc.stderr


def test_slurm_nodelist():
    assert first_host_of_slurm_nodelist("gpu[03-05,09],cpu1") == "gpu03"
    assert first_host_of_slurm_nodelist("node7") == "node7"
