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


#: Training iterations of the projects' end-to-end tests, and how far the trained model must beat
#: the same model untrained (same seed, no training) on shapes_val_sem_seg, in points of mIoU and
#: of pixel accuracy. Measured at 20 iterations (12 train images of 64 px, 2-core AVX2/AVX-512 CPU):
#: FCN-8s 22.5 vs 5.6 mIoU (pACC 81.3 vs 17.3), U-Net 18.1 vs 4.9 (70.5 vs 27.5), DeepLabV3+
#: 20.9 vs 0.6 (77.7 vs 2.5).
PROJECT_TRAIN_ITERS = 20
MIN_GAIN_MIOU = 8.0
MIN_GAIN_PACC = 30.0


def _run_train_net(root: str, instant_config: str, output_dir: str, *args: str) -> dict:
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, os.path.join(root, "train_net.py"), "--config-file",
         os.path.join(root, "configs", "Shapes", instant_config), *args, "OUTPUT_DIR", str(output_dir)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(output_dir, "inference", "shapes_val_sem_seg", "results.json")) as f:
        return json.load(f)["sem_seg"]


def _train_project_on_shapes(project: str, instant_config: str, output_dir: str) -> dict:
    """Runs ``projects/<project>/train_net.py`` on its ``configs/Shapes/<instant_config>`` for
    PROJECT_TRAIN_ITERS iterations into ``output_dir`` in a subprocess, checks the OUTPUT_DIR files
    and that the trained model beats the untrained one (``--eval-only`` without weights, into
    ``output_dir/untrained``) by the margins above; returns the trained ``sem_seg`` results of
    ``shapes_val_sem_seg``."""
    root = os.path.join(_PROJECTS, project)
    trained = _run_train_net(root, instant_config, output_dir, "SOLVER.MAX_ITER", str(PROJECT_TRAIN_ITERS),
                             "TEST.EVAL_PERIOD", "0", "SOLVER.CHECKPOINT_PERIOD", str(PROJECT_TRAIN_ITERS))
    assert {"model_final.pth", "metrics.json", "config.yaml"} <= set(os.listdir(output_dir))
    assert "IoU-circle" in trained
    untrained = _run_train_net(root, instant_config, os.path.join(output_dir, "untrained"), "--eval-only")
    assert trained["mIoU"] >= untrained["mIoU"] + MIN_GAIN_MIOU, (trained["mIoU"], untrained["mIoU"])
    assert trained["pACC"] >= untrained["pACC"] + MIN_GAIN_PACC, (trained["pACC"], untrained["pACC"])
    return trained


@pytest.fixture
def train_project_on_shapes():
    """The function above: ``train_project_on_shapes(project, instant_config, output_dir) -> results``."""
    return _train_project_on_shapes


class _ReferenceLosses:
    """The semantic losses written out from their formulas with plain torch ops, independently of
    seg_research.modeling.losses and of the heads: what the heads' losses must equal. Logits are
    bilinearly resized to the targets first, as every head does (align_corners False)."""

    @staticmethod
    def resize(logits, targets):
        import torch.nn.functional as F

        return F.interpolate(logits, size=targets.shape[-2:], mode="bilinear", align_corners=False)

    def bce_dice(self, logits, targets, smooth=1.0):
        """(N, 1, h, w) foreground logits, 0/1 targets: mean BCE + 1 - soft Dice of the foreground."""
        import torch.nn.functional as F

        x = self.resize(logits, targets)[:, 0].flatten().double()
        t = targets.flatten().double()
        p = x.sigmoid()
        bce = -(t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x)).mean()
        return bce + 1 - (2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)

    def cross_entropy(self, logits, targets, ignore=255):
        """Mean over non-ignored pixels of -log softmax at the target class."""
        x = self.resize(logits, targets).double().permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        t = targets.flatten()
        keep = t != ignore
        return -(x[keep].log_softmax(dim=1).gather(1, t[keep, None])).mean()

    def dice(self, logits, targets, ignore=255, smooth=1.0):
        """1 - mean over the classes present in the non-ignored targets of their soft Dice (softmax)."""
        x = self.resize(logits, targets).double().permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        t = targets.flatten()
        keep = t != ignore
        p, t = x[keep].softmax(dim=1), t[keep]
        scores = []
        for c in t.unique().tolist():
            pc, tc = p[:, c], (t == c).double()
            scores.append((2 * (pc * tc).sum() + smooth) / (pc.sum() + tc.sum() + smooth))
        return 1 - sum(scores) / len(scores)


@pytest.fixture
def reference_losses():
    """:class:`_ReferenceLosses`: the expected values of the heads' loss tests."""
    return _ReferenceLosses()
