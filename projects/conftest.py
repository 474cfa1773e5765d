"""Project tests: the library's test-session settings (small generated Shapes in a private
``$SEG_DATASETS``, see ``tests/conftest.py``), and every ``projects/<Name>/`` on ``sys.path``
so that its tests ``import <package>`` without installing it."""
import os
import runpy
import sys

import pytest

_PROJECTS = os.path.dirname(os.path.abspath(__file__))
runpy.run_path(os.path.join(os.path.dirname(_PROJECTS), "tests", "conftest.py"))
for _name in sorted(os.listdir(_PROJECTS)):
    _project = os.path.join(_PROJECTS, _name)
    if os.path.isdir(_project) and not _name.startswith((".", "_")) and _project not in sys.path:
        sys.path.insert(0, _project)


def _train_project_on_shapes(project: str, instant_config: str, output_dir: str) -> dict:
    """Runs ``projects/<project>/train_net.py`` on its ``configs/Shapes/<instant_config>`` into
    ``output_dir`` in a subprocess, checks the OUTPUT_DIR files and returns the ``sem_seg`` results
    of ``shapes_val_sem_seg``."""
    import json
    import subprocess

    root = os.path.join(_PROJECTS, project)
    proc = subprocess.run(
        [sys.executable, os.path.join(root, "train_net.py"), "--config-file",
         os.path.join(root, "configs", "Shapes", instant_config), "OUTPUT_DIR", str(output_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"model_final.pth", "metrics.json", "config.yaml"} <= set(os.listdir(output_dir))
    with open(os.path.join(output_dir, "inference", "shapes_val_sem_seg", "results.json")) as f:
        results = json.load(f)["sem_seg"]
    assert 0.0 <= results["mIoU"] <= 100.0 and "IoU-circle" in results
    return results


@pytest.fixture
def train_project_on_shapes():
    """The function above: ``train_project_on_shapes(project, instant_config, output_dir) -> results``."""
    return _train_project_on_shapes
