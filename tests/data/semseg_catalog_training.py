"""A few Semantic FPN iterations on a builtin catalog whose files are a test's fixture tree: the
instant-test config through ``tools/train_net.py`` with ``$SEG_DATASETS`` at the fixture root."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "Shapes", "semantic_fpn_R_18_instant_test.yaml")


def train_semantic_fpn(datasets_root: str, output_dir: str, train: str, test: str, num_classes: int,
                       iterations: int = 2) -> List[Dict[str, float]]:
    """Train ``iterations`` steps on ``train`` (evaluating on ``test`` at the end when given).

    Returns:
        the lines of ``metrics.json``; raises AssertionError with the log tail on failure.
    """
    env = dict(os.environ, SEG_DATASETS=datasets_root)
    opts = ["DATASETS.TRAIN", f"('{train}',)", "DATASETS.TEST", f"('{test}',)" if test else "()",
            "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(num_classes), "SOLVER.MAX_ITER", str(iterations),
            "SOLVER.IMS_PER_BATCH", "2", "SOLVER.CHECKPOINT_PERIOD", str(iterations),
            "TEST.EVAL_PERIOD", str(iterations if test else 0), "OUTPUT_DIR", output_dir]
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", CONFIG, *opts],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(output_dir, "metrics.json"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
